"""One call's recorded events as one :class:`~dinodiag.augment.records.ViewRecord` per view.

Which operations made which view is read from the objects: each view the pipeline
returned is the output of its last operation, whose input is the output of the one before,
and so on back to the source image (:func:`chain_of`). That holds however the pipeline
interleaves its views (DINOv2 crops a view, colours it, then crops the next; others crop
every view first). An operation that did not apply returns its input, so it is placed by
its position next to the operations of the same view. Views whose objects were not made
by a recorded transform (converted by the user's code after the last transform) are
matched by order instead, each crop starting a view, and a note says so.

Each operation becomes an :class:`~dinodiag.augment.records.OpRecord`
(:func:`dinodiag.probe.operations.describe`);
the flat fields of the record (flip, jitter factors, blur sigma, ...) are read from them,
so the statistics and the checks count your own pipeline like a built one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from PIL import Image

from dinodiag.augment.records import PHOTOMETRIC_KINDS, OpRecord, ViewRecord
from dinodiag.probe.operations import (
    JITTER_NAMES,
    KINDS,
    describe,
    image_size,
    pair,
    torchvision_base,
)
from dinodiag.probe.recording import Event, Recording


def chain_of(view: Any, leaves: list[Event], source: Any = None) -> list[Event]:
    """The operations that made ``view``, in order (empty when no recorded one made it).

    Walk back from the view: at each object, the latest operation that made it, then every
    operation after it (before the one that used the object) that passed it on unchanged,
    each of which did not apply to this view. Where other operations also changed the same
    object (the source image, or one resized image cropped for every view), only the
    operations right before the next one that passed it on count: the views' own chains
    interleave there. Where the walk stops at an object that no recorded operation made and
    that is not ``source`` (the pipeline's input), the user's own code ran between two
    transforms: when the operation just before made an image of the same type and size, the
    walk goes on from it through a ``gap`` event, judged later by its effect. A step that drew
    its parameters with ``get_params`` brings those draws along.
    """
    changed_from: dict[int, int] = {}  # id(object) -> operations that changed it
    for event in leaves:
        if event.out is not event.inp:
            changed_from[id(event.inp)] = changed_from.get(id(event.inp), 0) + 1
    chain: list[Event] = []
    current, bound = view, len(leaves)
    while bound > 0:
        made = next(
            (
                i
                for i in range(bound - 1, -1, -1)
                if leaves[i].out is current and leaves[i].inp is not current
            ),
            None,
        )
        start = bound
        if made is not None and changed_from.get(id(current), 0) <= 1:
            start = made + 1  # every pass of this object belongs to this view
        else:  # shared or unmade: only the run of passes right before the next operation
            while (
                start > 0 and leaves[start - 1].inp is current and leaves[start - 1].out is current
            ):
                start -= 1
        passes = [
            j for j in range(start, bound) if leaves[j].inp is current and leaves[j].out is current
        ]
        if made is None and not passes:
            gap = _gap(leaves[bound - 1], current, source) if chain else None
            if gap is None:
                break
            chain.insert(0, gap)
            current = gap.inp
            continue
        found = ([made] if made is not None else []) + passes
        for i in reversed(found):
            chain[0:0] = [*leaves[i].drawn_inside, leaves[i]]
        bound = found[0]
        if made is not None:
            current = leaves[made].inp
    return chain


def per_view(leaves: list[Event]) -> list[Event]:
    """``leaves`` with each operation applied to a whole list of views at once (VISSL's way:
    ``[transform(img) for img in images]`` in a hand-written step, or a v2 transform called on
    a list) split into one event per view: a view's chain then holds the step, applied or
    not (an element returned unchanged did not apply)."""
    out: list[Event] = []
    for event in leaves:
        pairs = _elements(event.inp, event.out)
        if pairs is None:
            out.append(event)
            continue
        step = _wrapped(event.transform)
        out += [
            dataclasses.replace(event, transform=step, inp=a, out=b, drawn_inside=[])
            for a, b in pairs
        ]
    return out


def _wrapped(step: Any) -> Any:
    """The per-image transform a list-wide wrapper holds (VISSL's ``SSLTransformsWrapper``
    keeps it as ``.transform``), so the view's operation is named after it; else ``step``."""
    inner = getattr(step, "transform", None)
    return inner if callable(inner) and not isinstance(inner, type) else step


def _elements(inp: Any, out: Any) -> list[tuple[Any, Any]] | None:
    """``(input, output)`` of each view of a list-wide call, or None if it was not one."""
    if not isinstance(inp, (list, tuple)) or type(out) is not type(inp) or not inp:
        return None
    if len(inp) != len(out) or not all(_is_image(v) for v in (*inp, *out)):
        return None
    return list(zip(inp, out, strict=True))


def _is_image(value: Any) -> bool:
    return isinstance(value, Image.Image) or (isinstance(value, torch.Tensor) and value.ndim == 3)


def _gap(before: Event, current: Any, source: Any) -> Event | None:
    """An event for the user's own code that turned ``before``'s output into ``current``,
    when that is plausible (an image of the same type and size), else None."""
    if current is source or before.out is None or type(before.out) is not type(current):
        return None
    if image_size(before.out) is None or image_size(before.out) != image_size(current):
        return None
    return Event(-1, None, "user", "gap", before.out, None, out=current)


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
        elif op.applied and op.kind == "jitter" and record.brightness_estimate is None:
            for name in JITTER_NAMES:  # a hand-written jitter: factors estimated from its effect
                setattr(record, f"{name}_estimate", op.params.get(name))
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
    resampled = [
        (_resampler_name(op), op.params["interpolation"])
        for op in ops
        if op.applied is not False and op.params.get("interpolation")
    ]
    if resampled:
        record.interpolation = ", ".join(dict.fromkeys(mode for _, mode in resampled))
        record.resampled_by = "; ".join(f"{step}: {mode}" for step, mode in resampled)
    return record


def _resampler_name(op: OpRecord) -> str:
    """``RandomResizedCrop`` / ``MyCrop (PIL Image.resize)``: the step that resampled."""
    call = op.params.get("resampled_with")
    return f"{op.name} ({call})" if call else op.name


def view_records(
    recording: Recording,
    views: list[tuple[str, int, torch.Tensor, Any]],
    source: Image.Image,
    notes: list[str],
) -> list[ViewRecord]:
    """One record per view: ``views`` are ``(group, index, tensor, object returned)``."""
    leaves = per_view(recording.leaves)
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
            (r for r in pending if pair(getattr(r[0].transform, "size", -1) or -1) == side), None
        )
        if pick is None:
            out.append([])
            continue
        pending.remove(pick)
        out.append(pick)
    return out
