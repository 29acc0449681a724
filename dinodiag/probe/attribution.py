"""One call's recorded events as one :class:`~dinodiag.augment.records.ViewRecord` per view.

Which operations made which view is read from the objects: each view the pipeline
returned is the output of its last operation, whose input is the output of the one before,
and so on back to the source image (:func:`chain_of`). That holds however the pipeline
interleaves its views (DINOv2 crops a view, colours it, then crops the next; others crop
every view first). An operation that did not apply returns its input, so it is placed by
its position next to the operations of the same view. Views whose objects were not made
by a recorded transform (converted by the user's code after the last transform) are
matched by order instead, each crop starting a view, and a note says so.

Each operation becomes an :class:`~dinodiag.augment.records.OpRecord` (:func:`describe`);
the flat fields of the record (flip, jitter factors, blur sigma, ...) are read from them,
so the statistics and the checks count a brought pipeline like a built one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from PIL import Image

from dinodiag.augment.pipeline import fallback_crop_box
from dinodiag.augment.records import PHOTOMETRIC_KINDS, OpRecord, ViewRecord
from dinodiag.probe.effects import judge_step, name_hint
from dinodiag.probe.recorder import Event, Recording

# torchvision class name -> operation kind (anything else known: "other").
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


def chain_of(view: Any, leaves: list[Event], source: Any = None) -> list[Event]:
    """The operations that made ``view``, in order (empty when no recorded one made it).

    Walk back from the view: the operation right before the last one found is taken when
    its output is the current object (that covers operations that did not apply); else the
    latest operation that made the current object, with the skipped operations right after
    it that passed the object on. Where the walk stops at an object that no recorded
    operation made and that is not ``source`` (the pipeline's input), the user's own code
    ran between two transforms: when the operation just before made an image of the same
    type and size, the walk goes on from it through a ``gap`` event, judged later by its
    effect. A step that drew its parameters with ``get_params`` brings those draws along.
    """
    chain: list[Event] = []
    current, bound = view, len(leaves)
    while bound > 0:
        if leaves[bound - 1].out is current:
            found = [bound - 1]
        else:
            made = next(
                (
                    i
                    for i in range(bound - 1, -1, -1)
                    if leaves[i].out is current and leaves[i].inp is not current
                ),
                None,
            )
            if made is None:
                gap = _gap(leaves[bound - 1], current, source) if chain else None
                if gap is None:
                    break
                chain.insert(0, gap)
                current = gap.inp
                continue
            found = [made]
            j = made + 1
            while j < bound and leaves[j].inp is current and leaves[j].out is current:
                found.append(j)
                j += 1
        for i in reversed(found):
            chain[0:0] = [*leaves[i].drawn_inside, leaves[i]]
        bound = found[0]
        if leaves[found[0]].inp is not current:
            current = leaves[found[0]].inp
    return chain


def _gap(before: Event, current: Any, source: Any) -> Event | None:
    """An event for the user's own code that turned ``before``'s output into ``current``,
    when that is plausible (an image of the same type and size), else None."""
    if current is source or before.out is None or type(before.out) is not type(current):
        return None
    if image_size(before.out) is None or image_size(before.out) != image_size(current):
        return None
    return Event(-1, None, "user", "gap", before.out, None, out=current)


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
        h, w = _pair(event.transform.size)
        return (size[0] - w) // 2, (size[1] - h) // 2, w, h
    return None


def _pair(size: Any) -> tuple[int, int]:
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
        notes = "; ".join(n for n in (effect.note, note) if n)
        return OpRecord(name, effect.kind, effect.applied, effect.params, "measured", notes)
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
    return OpRecord(name, kind, applied, params, source, note)


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
        params["size"] = _pair(transform.size)
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


def view_record(
    group: str, index: int, view: torch.Tensor, chain: list[Event], source: Image.Image
) -> ViewRecord:
    """The record of one view from the operations that made it."""
    ops = [describe(e) for e in chain]
    record = ViewRecord(group=group, index=index, source_size=source.size, operations=tuple(ops))
    record.out_size = (int(view.shape[-2]), int(view.shape[-1])) if view.ndim >= 2 else None
    record.recorded_by = "probe (no crop recorded)"
    crop = next((op for op in ops if op.kind == "crop" and "box" in op.params), None)
    if crop is not None:
        p = crop.params
        record.box, record.scale = p["box"], p["scale"]
        record.ratio = p["box"][2] / p["box"][3]
        record.source_size = p["source_size"]
        record.fallback = p.get("fallback")
        record.configured_size = p.get("size")
        record.configured_scale = p.get("configured_scale")
        record.configured_ratio = p.get("configured_ratio")
        record.recorded_by = f"{crop.name}({crop.source.removeprefix('torchvision ')})"
        if p["source_size"] != source.size:
            record.recorded_by += " (on a resized input)"
    flags: dict[str, bool] = dict.fromkeys(PHOTOMETRIC_KINDS, False)
    unknown = 0
    for op in ops:
        kinds = op.params.get("wraps_kinds", ()) if op.kind == "apply" else (op.kind,)
        for kind in kinds:
            if kind in flags and op.applied:
                flags[kind] = True
        unknown += op.kind == "unknown" and op.applied is not False
        if op.applied and op.kind == "jitter" and op.source != "measured" and record.jitter is None:
            record.jitter = True
            for name in JITTER_NAMES:
                setattr(record, name, op.params.get(name))
            record.jitter_order = op.params.get("order")
        elif op.applied and op.kind == "blur" and record.blur_sigma is None:
            record.blur_sigma = op.params.get("sigma") if op.source != "measured" else None
        elif op.applied and op.kind == "solarize" and record.solarize_threshold is None:
            record.solarize_threshold = op.params.get("threshold")
        elif op.kind == "normalize" and "mean" in op.params:
            record.mean, record.std = op.params["mean"], op.params["std"]
    record.flip, record.jitter = flags["flip"], flags["jitter"]
    record.grayscale, record.blur, record.solarize = (
        flags["grayscale"],
        flags["blur"],
        flags["solarize"],
    )
    record.unknown_steps = unknown
    return record


def view_records(
    recording: Recording,
    views: list[tuple[str, int, torch.Tensor, Any]],
    source: Image.Image,
    notes: list[str],
) -> list[ViewRecord]:
    """One record per view: ``views`` are ``(group, index, tensor, object returned)``."""
    leaves = recording.leaves
    chains = [chain_of(raw, leaves, source) for _, _, _, raw in views]
    unmatched = [i for i, chain in enumerate(chains) if not chain]
    if unmatched and leaves:
        used = {id(e) for chain in chains for e in chain}
        by_order = _by_order(
            [e for e in leaves if id(e) not in used], [views[i] for i in unmatched]
        )
        for i, chain in zip(unmatched, by_order, strict=True):
            chains[i] = chain
        if any(by_order):
            notes.append(
                "some views are not the objects the pipeline's transforms returned (converted "
                "after the last transform): their operations were matched to them by order"
            )
    return [
        view_record(group, index, tensor, chain, source)
        for (group, index, tensor, _), chain in zip(views, chains, strict=True)
    ]


def _by_order(
    leaves: list[Event], views: list[tuple[str, int, torch.Tensor, Any]]
) -> list[list[Event]]:
    """Operations cut into runs that each start with a crop, given to ``views`` in order
    (by the crop's configured size when there are not as many runs as views)."""
    starts = [i for i, e in enumerate(leaves) if KINDS.get(torchvision_base(e) or "") == "crop"]
    if not starts:
        return [[] for _ in views]
    runs = [leaves[a:b] for a, b in zip(starts, [*starts[1:], len(leaves)], strict=True)]
    if len(runs) == len(views):
        return runs
    out: list[list[Event]] = []
    pending = list(runs)
    for _, _, tensor, _ in views:
        side = (int(tensor.shape[-2]), int(tensor.shape[-1])) if tensor.ndim >= 2 else None
        pick = next(
            (r for r in pending if _pair(getattr(r[0].transform, "size", -1) or -1) == side), None
        )
        if pick is None:
            out.append([])
            continue
        pending.remove(pick)
        out.append(pick)
    return out
