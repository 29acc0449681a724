"""What a multi-crop pipeline returns: the views of one image in named groups, one
:class:`ViewRecord` per view with every random parameter it used, and their batching.

Built pipelines (:mod:`dinodiag.augment.pipeline`), the on-device backend
(:mod:`dinodiag.augment.gpu`) and brought pipelines (:mod:`dinodiag.probe`) all
return these, so the statistics and the checks treat them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class ViewRecord:
    """Every random parameter one view actually used. ``None`` = not known / not applicable.

    Boxes are in source pixels ``(left, top, width, height)``; ``scale`` is box
    area / source area; ``ratio`` is box width / height.
    """

    group: str  # "global" or "local"
    index: int  # index of the view within its group
    source_size: tuple[int, int]  # (width, height) of the source image
    out_size: tuple[int, int] | None = None  # (height, width) of the output view
    box: tuple[float, float, float, float] | None = None
    scale: float | None = None
    ratio: float | None = None
    fallback: bool | None = None  # RandomResizedCrop gave up after 10 tries and centre-cropped
    configured_size: tuple[int, int] | None = None  # (height, width) the crop was asked to produce
    configured_scale: tuple[float, float] | None = None
    configured_ratio: tuple[float, float] | None = None
    flip: bool | None = None
    jitter: bool | None = None  # colour jitter applied at all
    brightness: float | None = None  # factors actually used (None when jitter not applied)
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    jitter_order: tuple[str, ...] | None = None
    grayscale: bool | None = None
    blur: bool | None = None
    blur_sigma: float | None = None
    solarize: bool | None = None
    recorded_by: str = "dinodiag"  # or "RandomResizedCrop" (v1) / "RandomResizedCrop(v2)" for BYO

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MultiCropSample:
    """The views of one image, grouped as DINOv2 does, with their records (globals first)."""

    global_crops: list[torch.Tensor]  # each (3, Hg, Wg), float, normalised
    local_crops: list[torch.Tensor]  # each (3, Hl, Wl)
    records: list[ViewRecord]  # len == len(global_crops) + len(local_crops) for built pipelines
    source_size: tuple[int, int]  # (width, height)
    notes: list[str] = field(default_factory=list)  # e.g. "outputs were PIL images" for BYO

    @property
    def views(self) -> list[torch.Tensor]:
        return [*self.global_crops, *self.local_crops]


def collate_views(samples: list[MultiCropSample]) -> dict[str, torch.Tensor]:
    """Stack a batch of samples into per-group tensors, view-major as DINOv2 does.

    Returns ``{"global_crops": (G*B, 3, Hg, Wg), "local_crops": (L*B, 3, Hl, Wl)}``
    with rows ``[view0 of every sample, view1 of every sample, ...]``. Raises
    ``ValueError`` naming the group, sample and shape when views do not stack.
    """
    if not samples:
        raise ValueError("collate_views needs at least one sample")
    out: dict[str, torch.Tensor] = {}
    for group in ("global_crops", "local_crops"):
        per_sample = [getattr(s, group) for s in samples]
        counts = {len(v) for v in per_sample}
        if len(counts) != 1:
            raise ValueError(f"{group}: samples have different view counts {sorted(counts)}")
        count = counts.pop()
        if count == 0:
            out[group] = torch.empty(0)
            continue
        shape = tuple(per_sample[0][0].shape)
        for s_idx, views in enumerate(per_sample):
            for v_idx, view in enumerate(views):
                if tuple(view.shape) != shape:
                    raise ValueError(
                        f"{group}: view {v_idx} of sample {s_idx} has shape {tuple(view.shape)}, "
                        f"expected {shape} like the first view; all views of a group must have "
                        "one size"
                    )
        out[group] = torch.stack([views[v] for v in range(count) for views in per_sample])
    return out
