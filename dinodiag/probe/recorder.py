"""Record every transform your own pipeline runs: what went in, what came out, what it drew.

Within :func:`record_operations`, torchvision's transforms (v1 and v2) append an
:class:`Event` each time they run: the transform, its input and output objects and the
parameters it drew (``get_params`` / ``make_params``). The containers (``Compose``,
``RandomApply``, ``RandomChoice``, ``RandomOrder``) also record each of their steps, so a
hand-written step of a ``Compose`` (DINO v1's ``GaussianBlur`` class, a lambda) is an event
too, judged afterwards from the change it made (:mod:`dinodiag.probe.effects`).
Resampling calls (PIL's ``Image.resize``, torchvision's ``functional.resize`` /
``resized_crop``, ``torch.nn.functional.interpolate``) note their interpolation on the
innermost open event (a hand-written crop class's step), or, called outside any transform,
are an event of their own (:attr:`Event.resamples`).
:mod:`dinodiag.probe.attribution` turns one call's events into one record per view.

How it stays out of the way:

- The classes are patched while at least one recording is open anywhere in the process
  (a lock and a count: the first block in patches, the last one out restores the original
  methods), and each wrapper looks up the recording of its own thread / context
  (a ``ContextVar``): a call outside a block, or in another thread, runs the original.
- The containers' loops are re-run by dinodiag (to see each step), drawing exactly what
  torchvision draws (the same ``torch.rand`` / ``random`` calls in the same order), so a
  recorded call returns the same views and leaves the generators where an unrecorded call
  would (``tests/probe/test_recorder.py`` holds both equal).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch


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


_ACTIVE: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "dinodiag_recording", default=None
)
_PATCH_LOCK = threading.Lock()
_PATCH_STATE: dict[str, Any] = {"count": 0, "saved": []}


@contextlib.contextmanager
def record_operations() -> Iterator[Recording]:
    """Within the block, every torchvision transform call of this context is recorded."""
    with _PATCH_LOCK:
        if _PATCH_STATE["count"] == 0:
            _PATCH_STATE["saved"] = _install()
        _PATCH_STATE["count"] += 1
    recording = Recording()
    token = _ACTIVE.set(recording)
    try:
        yield recording
    finally:
        _ACTIVE.reset(token)
        with _PATCH_LOCK:
            _PATCH_STATE["count"] -= 1
            if _PATCH_STATE["count"] == 0:
                for owner, name, original in reversed(_PATCH_STATE["saved"]):
                    setattr(owner, name, original)
                _PATCH_STATE["saved"] = []


def run_step(recording: Recording, step: Any, *inputs: Any) -> Any:
    """Call one step of a container as an event of its own (a known transform records itself
    inside it, so the step event is then not a leaf)."""
    event = recording.open(step, _first(inputs), "user", "step")
    return recording.run(event, lambda: step(*inputs))


def _first(inputs: tuple[Any, ...]) -> Any:
    return inputs[0] if len(inputs) == 1 else inputs


def _leaf(original: Callable[..., Any], family: str) -> Callable[..., Any]:
    """A transform's ``forward`` / ``__call__`` that records one event around the original."""

    @functools.wraps(original)
    def wrapper(self: Any, *inputs: Any, **kwargs: Any) -> Any:
        recording = _ACTIVE.get()
        if recording is None or not inputs:
            return original(self, *inputs, **kwargs)
        event = recording.open(self, _first(inputs), family, "leaf")
        return recording.run(event, lambda: original(self, *inputs, **kwargs))

    return wrapper


def _container(
    original: Callable[..., Any], family: str, loop: Callable[..., Any]
) -> Callable[..., Any]:
    """A container's call re-run by ``loop(self, recording, event, *inputs)`` when recording."""

    @functools.wraps(original)
    def wrapper(self: Any, *inputs: Any) -> Any:
        recording = _ACTIVE.get()
        if recording is None:
            return original(self, *inputs)
        event = recording.open(self, _first(inputs), family, "container")
        return recording.run(event, lambda: loop(self, recording, event, *inputs))

    return wrapper


# ------------------------------------------------------------------ resampling calls

# PIL's resampling filters by number (Image.Resampling's values).
PIL_FILTERS = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def interpolation_name(value: Any, image: Any = None) -> str:
    """``"bicubic"``, ``"bilinear"``, ...: a torchvision ``InterpolationMode``, a PIL filter
    (number or ``Image.Resampling``) or a torch ``interpolate`` mode. ``None`` is PIL's
    default for ``image`` (nearest for modes "1" and "P", else bicubic)."""
    if value is None:
        return "nearest" if getattr(image, "mode", None) in ("1", "P") else "bicubic"
    mode = getattr(value, "value", value)  # InterpolationMode / Image.Resampling
    if isinstance(mode, int) and not isinstance(mode, bool):
        return PIL_FILTERS.get(mode, f"PIL filter {mode}")
    return str(mode).lower()


def _resampler(
    original: Callable[..., Any], label: str, argument: str, image_argument: str
) -> Callable[..., Any]:
    """A resampling function that notes ``(label, interpolation)`` on the innermost open
    event, or records a leaf event of its own when called outside any transform; the
    resampling calls it makes itself (torchvision's resize calls PIL's) are not noted."""
    signature = inspect.signature(original)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        recording = _ACTIVE.get()
        if recording is None or recording.resampling:
            return original(*args, **kwargs)
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:  # let the original raise its own error
            return original(*args, **kwargs)
        bound.apply_defaults()
        image = bound.arguments.get(image_argument)
        note = (label, interpolation_name(bound.arguments.get(argument), image))
        event = recording.innermost
        recording.resampling = True
        try:
            if event is None:
                own = recording.open(original, image, "user", "leaf")
                own.resamples.append(note)
                return recording.run(own, lambda: original(*args, **kwargs))
            event.resamples.append(note)
            return original(*args, **kwargs)
        finally:
            recording.resampling = False

    return wrapper


def _resamplers() -> list[tuple[Any, str, str, str, str]]:
    """``(owner, name, label, interpolation argument, image argument)`` of each patched
    resampling function. transforms v2's functionals are left alone (their kernels are
    looked up by function object); on PIL images they end in ``Image.resize``."""
    import torch.nn.functional as torch_functional
    import torchvision.transforms.functional as v1_functional
    from PIL import Image

    return [
        (Image.Image, "resize", "PIL Image.resize", "resample", "self"),
        (v1_functional, "resize", "torchvision resize", "interpolation", "img"),
        (v1_functional, "resized_crop", "torchvision resized_crop", "interpolation", "img"),
        (torch_functional, "interpolate", "torch interpolate", "mode", "input"),
    ]


# ------------------------------------------------------------------ the containers' loops
# Each draws what torchvision's own method draws, in the same order (see the module doc).


def _v1_compose(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    for step in self.transforms:
        img = run_step(recording, step, img)
    return img


def _v1_random_apply(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    skipped = bool(self.p < torch.rand(1))
    event.choice["applied"] = not skipped
    if skipped:
        return img
    for step in self.transforms:
        img = run_step(recording, step, img)
    return img


def _v1_random_order(self: Any, recording: Recording, event: Event, img: Any) -> Any:
    order = list(range(len(self.transforms)))
    random.shuffle(order)
    event.choice["order"] = order
    for i in order:
        img = run_step(recording, self.transforms[i], img)
    return img


def _v1_random_choice(self: Any, recording: Recording, event: Event, *args: Any) -> Any:
    step = random.choices(self.transforms, weights=self.p)[0]
    event.choice["picked"] = list(self.transforms).index(step)
    return run_step(recording, step, *args)


def _v2_chain(recording: Recording, steps: Any, inputs: tuple[Any, ...]) -> Any:
    needs_unpacking = len(inputs) > 1
    outputs: Any = None
    for step in steps:
        outputs = run_step(recording, step, *inputs)
        inputs = outputs if needs_unpacking else (outputs,)
    return outputs


def _v2_compose(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    return _v2_chain(recording, self.transforms, inputs)


def _v2_random_apply(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    skipped = bool(torch.rand(1) >= self.p)
    event.choice["applied"] = not skipped
    if skipped:
        return inputs if len(inputs) > 1 else inputs[0]
    return _v2_chain(recording, self.transforms, inputs)


def _v2_random_choice(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    idx = int(torch.multinomial(torch.tensor(self.p), 1))
    event.choice["picked"] = idx
    return run_step(recording, self.transforms[idx], *inputs)


def _v2_random_order(self: Any, recording: Recording, event: Event, *inputs: Any) -> Any:
    needs_unpacking = len(inputs) > 1
    order = torch.randperm(len(self.transforms))
    event.choice["order"] = [int(i) for i in order]
    outputs: Any = None
    for idx in order:
        outputs = run_step(recording, self.transforms[idx], *inputs)
        inputs = outputs if needs_unpacking else (outputs,)
    return outputs


# ------------------------------------------------------------------ parameter draws


def _v1_params(original: Callable[..., Any], owner_type: type) -> staticmethod:
    """A v1 ``get_params`` (a staticmethod) that hands what it drew to the calling transform."""

    @functools.wraps(original)
    def get_params(*args: Any, **kwargs: Any) -> Any:
        drawn = original(*args, **kwargs)
        recording = _ACTIVE.get()
        if recording is not None:
            event = recording.owner(transform_type=owner_type)
            if event is None or event.drawn is not None:
                # called from the user's own code (``T.RandomResizedCrop.get_params(img, ...)``):
                # an event without an output, matched to its view by order
                event = recording.open(owner_type, args[0] if args else None, "v1", "params")
                event.drawn = drawn
                event.choice["args"] = args[1:]  # e.g. RandomResizedCrop's (scale, ratio)
                recording.close(event, None)
            else:
                event.drawn = drawn
        return drawn

    return staticmethod(get_params)


def _v2_params(original: Callable[..., Any]) -> Callable[..., Any]:
    """A v2 ``make_params`` that hands its dict to the transform's event."""

    @functools.wraps(original)
    def make_params(self: Any, flat_inputs: list[Any]) -> dict[str, Any]:
        drawn = original(self, flat_inputs)
        recording = _ACTIVE.get()
        if recording is not None:
            event = recording.owner(transform=self)
            if event is not None:
                event.drawn = drawn
        return drawn

    return make_params


# ------------------------------------------------------------------ installing the patches


def _install() -> list[tuple[Any, str, Any]]:
    """Patch torchvision's transform classes; returns ``(owner, name, original)`` to restore."""
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, new: Any) -> None:
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, new)

    for owner, name, label, argument, image_argument in _resamplers():
        patch(owner, name, _resampler(owner.__dict__[name], label, argument, image_argument))
    for cls, method, loop, family in _containers():
        patch(cls, method, _container(cls.__dict__[method], family, loop))
    containers = {cls for cls, *_ in _containers()}
    for cls in _v1_classes():
        if cls in containers:
            continue
        for method in ("forward", "__call__"):
            if method in cls.__dict__ and not (
                cls.__name__ == "RandomTransforms" and method == "__call__"
            ):
                patch(cls, method, _leaf(cls.__dict__[method], "v1"))
        if isinstance(cls.__dict__.get("get_params"), staticmethod):
            patch(cls, "get_params", _v1_params(cls.__dict__["get_params"].__func__, cls))
    for cls in _v2_classes():
        if cls not in containers and "forward" in cls.__dict__:
            patch(cls, "forward", _leaf(cls.__dict__["forward"], "v2"))
        for method in ("make_params", "_get_params"):
            if method in cls.__dict__ and cls.__name__ != "Transform":
                patch(cls, method, _v2_params(cls.__dict__[method]))
    return saved


@functools.lru_cache(maxsize=1)
def _v1_classes() -> tuple[type, ...]:
    import torchvision.transforms.transforms as v1

    return tuple(c for c in vars(v1).values() if inspect.isclass(c) and c.__module__ == v1.__name__)


@functools.lru_cache(maxsize=1)
def _v2_classes() -> tuple[type, ...]:
    try:
        from torchvision.transforms import v2
    except ImportError:  # pragma: no cover - torchvision without transforms v2
        return ()
    found: dict[type, None] = {}
    for value in vars(v2).values():
        if inspect.isclass(value) and issubclass(value, v2.Transform):
            for base in value.__mro__:
                if isinstance(base, type) and issubclass(base, v2.Transform):
                    found.setdefault(base, None)
    return tuple(found)


@functools.lru_cache(maxsize=1)
def _containers() -> tuple[tuple[type, str, Callable[..., Any], str], ...]:
    import torchvision.transforms as v1

    table: list[tuple[type, str, Callable[..., Any], str]] = [
        (v1.Compose, "__call__", _v1_compose, "v1"),
        (v1.RandomApply, "forward", _v1_random_apply, "v1"),
        (v1.RandomOrder, "__call__", _v1_random_order, "v1"),
        (v1.RandomChoice, "__call__", _v1_random_choice, "v1"),
    ]
    try:
        from torchvision.transforms import v2
    except ImportError:  # pragma: no cover
        return tuple(table)
    table += [
        (v2.Compose, "forward", _v2_compose, "v2"),
        (v2.RandomApply, "forward", _v2_random_apply, "v2"),
        (v2.RandomChoice, "forward", _v2_random_choice, "v2"),
        (v2.RandomOrder, "forward", _v2_random_order, "v2"),
    ]
    return tuple(table)


def known_transform(obj: Any) -> bool:
    """Whether ``obj`` is a torchvision transform (which records itself when called)."""
    return isinstance(obj, _v1_classes() + _v2_classes())
