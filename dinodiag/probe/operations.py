"""One recorded event as an :class:`~dinodiag.augment.records.OpRecord`: what kind of
operation it was, whether it applied, and the parameters it drew.

torchvision's transforms are read from their class (or the torchvision class they derive
from: DINOv2's ``GaussianBlur`` is a ``RandomApply``), their attributes and what their
``get_params`` / ``make_params`` returned; a ``Random*`` transform applied when it returned a
new object. A step dinodiag does not know is judged from its effect
(:func:`dinodiag.probe.effects.judge_step`). Every operation that resampled the image
carries its ``interpolation`` (a crop / resize transform's own setting, or what the
resampling calls made inside a hand-written step used, :func:`resampling`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from PIL import Image

from dinodiag.augment.pipeline import fallback_crop_box
from dinodiag.augment.records import OpRecord
from dinodiag.probe.effects import judge_step, name_hint
from dinodiag.probe.recording import Event
from dinodiag.probe.resampling import interpolation_name

KINDS = {
    "RandomResizedCrop": "crop",
    "RandomCrop": "crop",
    "CenterCrop": "crop",
    "FiveCrop": "crop",
    "TenCrop": "crop",
    "RandomIoUCrop": "crop",
    "Resize": "resize",
    "RandomResize": "resize",
    "RandomShortestSize": "resize",
    "ScaleJitter": "resize",
    "RandomHorizontalFlip": "flip",
    "ColorJitter": "jitter",
    "RandomGrayscale": "grayscale",
    "Grayscale": "grayscale",
    "GaussianBlur": "blur",
    "RandomSolarize": "solarize",
    "ToTensor": "to_tensor",
    "PILToTensor": "to_tensor",
    "ConvertImageDtype": "to_tensor",
    "ToImage": "to_tensor",
    "ToImageTensor": "to_tensor",
    "ToDtype": "to_tensor",
    "ToPureTensor": "to_tensor",
    "Normalize": "normalize",
    "RandomApply": "apply",
}
# Transforms that apply with probability p and return their input object when they skip.
RANDOM_APPLY_CLASSES = {
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomGrayscale",
    "RandomSolarize",
    "RandomInvert",
    "RandomPosterize",
    "RandomAdjustSharpness",
    "RandomAutocontrast",
    "RandomEqualize",
    "RandomPerspective",
    "RandomErasing",
    "RandomZoomOut",
}
JITTER_NAMES = ("brightness", "contrast", "saturation", "hue")


def image_size(image: Any) -> tuple[int, int] | None:
    """``(width, height)`` of a PIL image or a ``(..., H, W)`` tensor."""
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, torch.Tensor) and image.ndim >= 2:
        return int(image.shape[-1]), int(image.shape[-2])
    return None


def step_name(event: Event) -> str:
    """The class of the event's transform (a function's own name for a plain function)."""
    if event.role == "gap":
        return "your code"
    obj = event.transform
    if isinstance(obj, type):  # a bare get_params call records its class
        return obj.__name__
    name = type(obj).__name__
    if name in ("function", "method", "builtin_function_or_method", "partial"):
        return getattr(obj, "__name__", None) or getattr(
            getattr(obj, "func", None), "__name__", name
        )
    return name


def torchvision_base(event: Event) -> str | None:
    """The torchvision class the transform is or derives from (DINOv2's ``GaussianBlur``
    derives from ``RandomApply``), or None for a step dinodiag does not know."""
    cls = event.transform if isinstance(event.transform, type) else type(event.transform)
    for base in cls.__mro__:
        if base.__module__.startswith("torchvision."):
            return base.__name__
    return None


def _crop_box(event: Event, base: str) -> tuple[int, int, int, int] | None:
    """``(left, top, w, h)`` a crop event cut, from what it drew (or its size, centre crops)."""
    drawn = event.drawn
    if isinstance(drawn, dict) and "top" in drawn and "left" in drawn:
        return int(drawn["left"]), int(drawn["top"]), int(drawn["width"]), int(drawn["height"])
    if isinstance(drawn, (tuple, list)) and len(drawn) == 4:
        top, left, h, w = (int(v) for v in drawn)
        return left, top, w, h
    size = image_size(event.inp)
    if base == "CenterCrop" and size is not None:
        h, w = pair(event.transform.size)
        return (size[0] - w) // 2, (size[1] - h) // 2, w, h
    return None


def pair(size: Any) -> tuple[int, int]:
    if isinstance(size, int):
        return (size, size)
    size = list(size)
    return (int(size[0]), int(size[0] if len(size) == 1 else size[1]))


def _floats(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return tuple(float(v) for v in value.flatten())
    if isinstance(value, (int, float)):
        return (float(value),)
    return tuple(float(v) for v in value)


def _containers_note(event: Event) -> str:
    """Where the operation sat: "in RandomApply(p=0.8)", "picked by RandomChoice", ..."""
    parts = []
    for outer in event.within():
        if outer.role == "step":  # a container's step: its transform records its own event
            continue
        base = torchvision_base(outer)
        name = step_name(outer)
        label = name if name == base else f"{name} (a {base})"
        if base == "RandomApply":
            parts.append(f"in {label}(p={float(outer.transform.p):g})")
        elif base == "RandomChoice":
            parts.append(f"picked by {label}")
        elif base == "RandomOrder":
            parts.append(f"in {label}")
    return "; ".join(parts)


def describe(event: Event) -> OpRecord:
    """One leaf event as an operation record (kind, applied, parameters)."""
    name, base = step_name(event), torchvision_base(event)
    source = f"torchvision {event.family}" if event.family in ("v1", "v2") else "measured"
    note = _containers_note(event)
    if event.role == "gap":
        note = "between two transforms, outside any Compose"
    if base is None or event.role in ("step", "gap") or base == "Lambda":
        effect = judge_step(name, event.inp, event.out)
        kind, params = effect.kind, dict(effect.params)
        calls = resampling(event)
        if calls:
            if kind in ("unknown", "to_tensor", "other"):
                kind = "resize"  # it called a resampling function: it resized, at least
            params.update(calls)
        notes = "; ".join(n for n in (effect.note, note) if n)
        return OpRecord(name, kind, effect.applied, params, "measured", notes)
    transform = event.transform
    kind = KINDS.get(base, "other")
    params: dict[str, Any] = {}
    applied: bool | None = True
    if event.role == "params":  # the user's code called get_params itself
        note = "parameters drawn by your code with get_params"
    if base == "RandomApply":  # a RandomApply that did not apply (one that did has children)
        wraps = [type(t).__name__ for t in transform.transforms]
        kinds = sorted({KINDS.get(w) or name_hint(w) or "other" for w in wraps})
        params = {"p": float(transform.p), "wraps": wraps, "wraps_kinds": kinds}
        applied = False
        note = f"did not apply (p={float(transform.p):g})" + (f"; {note}" if note else "")
    elif base in RANDOM_APPLY_CLASSES or _v2_random_apply(transform):
        applied = event.out is not event.inp
        params["p"] = float(getattr(transform, "p", math.nan))
    if kind == "crop":
        params.update(_crop_params(event, base))
    elif kind == "jitter":
        params.update(_jitter_params(event))
    elif kind == "blur":
        drawn = event.drawn
        sigma = drawn.get("sigma") if isinstance(drawn, dict) else drawn
        if isinstance(sigma, (list, tuple)):
            sigma = sigma[0]
        params["sigma"] = None if sigma is None else float(sigma)
        params["sigma_range"] = _floats(getattr(transform, "sigma", None))
        params["kernel_size"] = _floats(getattr(transform, "kernel_size", None))
    elif kind == "solarize":
        params["threshold"] = float(transform.threshold)
    elif kind == "normalize":
        params["mean"] = _floats(transform.mean)
        params["std"] = _floats(transform.std)
    elif kind == "resize":
        params["size"] = getattr(transform, "size", None)
    if kind in ("crop", "resize"):
        params.update(resampling(event))
    return OpRecord(name, kind, applied, params, source, note)


def resampling(event: Event) -> dict[str, str]:
    """``{"interpolation": "bicubic", "resampled_with": ...}`` of an operation that resampled:
    a torchvision crop / resize transform's own ``interpolation``, else the resampling calls
    noted inside it (``"PIL Image.resize"``, ...); empty when it did not resample (a plain
    ``RandomCrop``, a step that called no resampling function)."""
    transform = event.transform
    setting = None if isinstance(transform, type) else getattr(transform, "interpolation", None)
    if setting is not None and torchvision_base(event) is not None:
        return {"interpolation": interpolation_name(setting)}
    if not event.resamples:
        return {}
    modes = list(dict.fromkeys(mode for _, mode in event.resamples))
    calls = list(dict.fromkeys(call for call, _ in event.resamples))
    return {"interpolation": ", ".join(modes), "resampled_with": ", ".join(calls)}


def _v2_random_apply(transform: Any) -> bool:
    try:
        from torchvision.transforms.v2._transform import _RandomApplyTransform
    except ImportError:  # pragma: no cover
        return False
    return isinstance(transform, _RandomApplyTransform)


def _crop_params(event: Event, base: str) -> dict[str, Any]:
    box = _crop_box(event, base)
    size = image_size(event.inp)
    params: dict[str, Any] = {"source_size": size}
    transform = event.transform if not isinstance(event.transform, type) else None
    if transform is not None and hasattr(transform, "size"):
        params["size"] = pair(transform.size)
    if box is None or size is None:
        return params
    left, top, w, h = box
    params.update(
        box=(float(left), float(top), float(w), float(h)), scale=w * h / (size[0] * size[1])
    )
    scale_ratio = None
    if base == "RandomResizedCrop" and transform is not None:
        scale_ratio = transform.scale, transform.ratio
    elif base == "RandomResizedCrop" and len(event.choice.get("args", ())) >= 2:
        scale_ratio = event.choice["args"][:2]  # get_params(img, scale, ratio) by the user
    if scale_ratio is not None:
        ratio = tuple(float(r) for r in scale_ratio[1])
        params.update(
            configured_scale=tuple(float(s) for s in scale_ratio[0]),
            configured_ratio=ratio,
            fallback=box == fallback_crop_box(size[0], size[1], ratio),
        )
    return params


def _jitter_params(event: Event) -> dict[str, Any]:
    drawn, transform = event.drawn, event.transform
    if isinstance(drawn, dict):
        order = drawn.get("fn_idx")
        factors = [drawn.get(f"{n}_factor") for n in JITTER_NAMES]
    elif isinstance(drawn, (tuple, list)) and len(drawn) == 5:
        order, factors = drawn[0], list(drawn[1:])
    else:
        return {}
    params: dict[str, Any] = {
        n: None if f is None else float(f) for n, f in zip(JITTER_NAMES, factors, strict=True)
    }
    if order is not None:
        params["order"] = tuple(JITTER_NAMES[int(i)] for i in order)
    for n in JITTER_NAMES:
        params[f"{n}_range"] = _floats(getattr(transform, n, None))
    return params
