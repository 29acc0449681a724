"""Resampling calls recorded: PIL's ``Image.resize``, torchvision's ``functional.resize`` /
``resized_crop`` and ``torch.nn.functional.interpolate`` note their interpolation on the
innermost open event (a hand-written crop class's step), or, called outside any transform, are
an event of their own (:attr:`~dinodiag.probe.recording.Event.resamples`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from dinodiag.probe.recording import ACTIVE_RECORDING

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
        recording = ACTIVE_RECORDING.get()
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


def patch_resamplers(patch: Callable[[Any, str, Any], None]) -> None:
    """``patch(owner, name, wrapper)`` for each resampling function (see :func:`_resamplers`)."""
    for owner, name, label, argument, image_argument in _resamplers():
        patch(owner, name, _resampler(owner.__dict__[name], label, argument, image_argument))
