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
so the statistics and the checks count a brought pipeline like a built one.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image

from dinodiag.augment.records import PHOTOMETRIC_KINDS, ViewRecord
from dinodiag.probe.operations import (
    JITTER_NAMES,
    KINDS,
    describe,
    image_size,
    pair,
    torchvision_base,
)
from dinodiag.probe.recorder import Event, Recording


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
            (r for r in pending if pair(getattr(r[0].transform, "size", -1) or -1) == side), None
        )
        if pick is None:
            out.append([])
            continue
        pending.remove(pick)
        out.append(pick)
    return out
