"""torchvision's transforms (v1 and v2) patched to record themselves: each call is an
:class:`~dinodiag.probe.recording.Event` with its input, its output and the parameters it drew
(``get_params`` / ``make_params``); a container's call is re-run by its loop
(:mod:`dinodiag.probe.container_loops`) so that each of its steps is an event too.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from dinodiag.probe.container_loops import container_loops
from dinodiag.probe.recording import ACTIVE_RECORDING, first_input


def _leaf(original: Callable[..., Any], family: str) -> Callable[..., Any]:
    """A transform's ``forward`` / ``__call__`` that records one event around the original."""

    @functools.wraps(original)
    def wrapper(self: Any, *inputs: Any, **kwargs: Any) -> Any:
        recording = ACTIVE_RECORDING.get()
        if recording is None or not inputs:
            return original(self, *inputs, **kwargs)
        event = recording.open(self, first_input(inputs), family, "leaf")
        return recording.run(event, lambda: original(self, *inputs, **kwargs))

    return wrapper


def _container(
    original: Callable[..., Any], family: str, loop: Callable[..., Any]
) -> Callable[..., Any]:
    """A container's call re-run by ``loop(self, recording, event, *inputs)`` when recording."""

    @functools.wraps(original)
    def wrapper(self: Any, *inputs: Any) -> Any:
        recording = ACTIVE_RECORDING.get()
        if recording is None:
            return original(self, *inputs)
        event = recording.open(self, first_input(inputs), family, "container")
        return recording.run(event, lambda: loop(self, recording, event, *inputs))

    return wrapper


# ------------------------------------------------------------------ parameter draws


def _v1_params(original: Callable[..., Any], owner_type: type) -> staticmethod:
    """A v1 ``get_params`` (a staticmethod) that hands what it drew to the calling transform."""

    @functools.wraps(original)
    def get_params(*args: Any, **kwargs: Any) -> Any:
        drawn = original(*args, **kwargs)
        recording = ACTIVE_RECORDING.get()
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
        recording = ACTIVE_RECORDING.get()
        if recording is not None:
            event = recording.owner(transform=self)
            if event is not None:
                event.drawn = drawn
        return drawn

    return make_params


def patch_torchvision(patch: Callable[[Any, str, Any], None]) -> None:
    """``patch(owner, name, wrapper)`` for each container's call, each transform's ``forward``
    / ``__call__`` and each ``get_params`` / ``make_params`` of torchvision v1 and v2."""
    for cls, method, loop, family in container_loops():
        patch(cls, method, _container(cls.__dict__[method], family, loop))
    containers = {cls for cls, *_ in container_loops()}
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


def known_transform(obj: Any) -> bool:
    """Whether ``obj`` is a torchvision transform (which records itself when called)."""
    return isinstance(obj, _v1_classes() + _v2_classes())
