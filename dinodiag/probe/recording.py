"""The records of one recorded pipeline call: an :class:`Event` per transform call (or step
of a container), gathered in a :class:`Recording` in the order the calls started.

:func:`dinodiag.probe.recorder.record_operations` opens a recording and sets it as the
:data:`ACTIVE_RECORDING` of its thread / context; the patched transforms
(:mod:`dinodiag.probe.torchvision_patches`, :mod:`dinodiag.probe.resampling`) look it up there
and open and close their events on it. :mod:`dinodiag.probe.attribution` turns one call's events
into one record per view.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Event:
    """One transform call (or one step of a container) inside a recorded pipeline call."""

    seq: int  # the order in which calls started
    transform: Any  # the transform object (a step: whatever callable the container held)
    family: str  # "v1", "v2" (torchvision) or "user" (a step whose class dinodiag does not know)
    role: str  # "leaf", "container", "step" (any step of a container) or "params" (bare get_params)
    inp: Any  # the image that went in (first input of a multi-input v2 call)
    parent: Event | None
    out: Any = None
    children: int = 0  # operations started inside this one (bare get_params calls aside)
    drawn_inside: list[Event] = field(default_factory=list)  # bare get_params calls inside
    drawn: Any = None  # what get_params / make_params returned inside this call
    choice: dict[str, Any] = field(default_factory=dict)  # a container's own draws
    failed: bool = False
    # (call, interpolation) of each resampling call made inside, e.g. ("PIL Image.resize",
    # "bilinear"): what a hand-written crop resized with
    resamples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        """No operation was recorded inside: this event is one operation of a view's chain
        (a step that only drew parameters with ``get_params`` is one, the draws beside it)."""
        return self.children == 0 and not self.failed

    def within(self) -> list[Event]:
        """The enclosing events, innermost first."""
        out, parent = [], self.parent
        while parent is not None:
            out.append(parent)
            parent = parent.parent
        return out


class Recording:
    """The events of one pipeline call, in the order they started."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._stack: list[Event] = []
        self.resampling = False  # inside a recorded resampling call (its inner calls are not)

    def open(self, transform: Any, inp: Any, family: str, role: str) -> Event:
        parent = self._stack[-1] if self._stack else None
        event = Event(len(self.events), transform, family, role, inp, parent)
        if parent is not None and role == "params":
            parent.drawn_inside.append(event)
        elif parent is not None:
            parent.children += 1
        self.events.append(event)
        self._stack.append(event)
        return event

    def close(self, event: Event, out: Any, failed: bool = False) -> None:
        event.out, event.failed = out, failed
        if self._stack and self._stack[-1] is event:
            self._stack.pop()

    def run(self, event: Event, call: Callable[[], Any]) -> Any:
        """``call()`` inside the open ``event``, closed with its output (or as failed)."""
        try:
            out = call()
        except BaseException:
            self.close(event, None, failed=True)
            raise
        self.close(event, out)
        return out

    def owner(self, transform_type: type | None = None, transform: Any = None) -> Event | None:
        """The innermost open call of ``transform`` (or of an instance of ``transform_type``)."""
        for event in reversed(self._stack):
            if transform is not None and event.transform is transform:
                return event
            if transform_type is not None and isinstance(event.transform, transform_type):
                return event
        return None

    @property
    def leaves(self) -> list[Event]:
        return [e for e in self.events if e.is_leaf]

    @property
    def innermost(self) -> Event | None:
        """The innermost open event (None outside any transform)."""
        return self._stack[-1] if self._stack else None


# The recording of this thread / context (None outside a ``record_operations`` block): a patched
# call made elsewhere runs the original.
ACTIVE_RECORDING: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "dinodiag_recording", default=None
)


def run_step(recording: Recording, step: Any, *inputs: Any) -> Any:
    """Call one step of a container as an event of its own (a known transform records itself
    inside it, so the step event is then not a leaf)."""
    event = recording.open(step, first_input(inputs), "user", "step")
    return recording.run(event, lambda: step(*inputs))


def first_input(inputs: tuple[Any, ...]) -> Any:
    """The image an event records as its input: the only input, or all of them as a tuple."""
    return inputs[0] if len(inputs) == 1 else inputs
