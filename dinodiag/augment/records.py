"""What a multi-crop pipeline returns: the views of one image in named groups, one
:class:`ViewRecord` per view with every random parameter it used, and their batching.

Built pipelines (:mod:`dinodiag.augment.pipeline`), the on-device backend
(:mod:`dinodiag.augment.gpu`) and own pipelines (:mod:`dinodiag.probe`) all
return these, so the statistics and the checks treat them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

# What an operation does, as the statistics and the checks count it. The photometric kinds are
# the ones whose rate per view the recipe fixes (REFERENCE.md); the rest are named for display.
PHOTOMETRIC_KINDS = ("flip", "jitter", "grayscale", "blur", "solarize")
OP_KINDS = (
    "crop",  # RandomResizedCrop, RandomCrop, CenterCrop, FiveCrop ...
    "resize",
    *PHOTOMETRIC_KINDS,
    "to_tensor",  # ToTensor, PILToTensor, ToImage, ToDtype, ConvertImageDtype
    "normalize",
    "apply",  # RandomApply that did not apply (what it wraps is in params["wraps"])
    "other",  # a known transform outside the recipe (RandomRotation, RandomInvert, ...)
    "unknown",  # a step whose effect could not be told
)


@dataclass
class OpRecord:
    """One operation a view went through: what ran, whether it applied, what it drew.

    Your own pipeline's views carry these in order (:attr:`ViewRecord.operations`):
    torchvision transforms are read from their drawn parameters; a step of a ``Compose``
    whose class dinodiag does not know is judged from the change it made to the image
    (``source="measured"``), and ``applied`` is ``None`` when that could not be told.
    """

    name: str  # the class, e.g. "RandomResizedCrop", "GaussianBlur"
    kind: str  # one of OP_KINDS
    applied: bool | None  # None: could not be told
    params: dict[str, Any] = field(default_factory=dict)  # drawn / configured values
    source: str = "dinodiag"  # "torchvision v1", "torchvision v2", "measured" or "dinodiag"
    note: str = ""  # e.g. "in RandomApply(p=0.8)", "no visible change", "looks like a blur"


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
    # How the view was resampled (own pipelines): the interpolations its crop / resize
    # steps used, in order ("bicubic"; "bilinear, bicubic" for two steps that differ), and each
    # step with its own ("RandomResizedCrop: bicubic; MyCrop (PIL Image.resize): bilinear").
    # None: no resampling step was recorded.
    interpolation: str | None = None
    resampled_by: str | None = None
    flip: bool | None = None
    jitter: bool | None = None  # colour jitter applied at all
    brightness: float | None = None  # factors actually used (None when jitter not applied)
    contrast: float | None = None
    saturation: float | None = None
    hue: float | None = None
    jitter_order: tuple[str, ...] | None = None
    # A hand-written jitter's factors estimated from its effect (own pipelines; the drawn
    # factors above are torchvision's): brightness, contrast, saturation, hue shift.
    brightness_estimate: float | None = None
    contrast_estimate: float | None = None
    saturation_estimate: float | None = None
    hue_estimate: float | None = None
    grayscale: bool | None = None
    blur: bool | None = None
    blur_sigma: float | None = None
    solarize: bool | None = None
    solarize_threshold: float | None = None  # in the units of the image it ran on (128 on uint8)
    mean: tuple[float, ...] | None = None  # Normalize's mean / std (None: no Normalize recorded)
    std: tuple[float, ...] | None = None
    unknown_steps: int | None = None  # steps whose effect could not be told (own pipelines)
    recorded_by: str = (
        "dinodiag"  # or "RandomResizedCrop" (v1) / "RandomResizedCrop(v2)" for own code
    )
    # Every operation of your own pipeline's view, in order (None for built pipelines, whose
    # recipe is fixed: see :func:`recipe_operations`).
    operations: tuple[OpRecord, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_operations(record: ViewRecord) -> tuple[OpRecord, ...]:
    """The operations of a view in order: your own pipeline's recorded ones, or for a
    built pipeline its recipe (crop, flip, jitter, grayscale, blur, solarize, normalise)
    with what each drew, so both kinds of pipeline show the same way."""
    if record.operations is not None:
        return record.operations
    crop = {"box": record.box, "scale": record.scale, "ratio": record.ratio}
    jitter = {
        name: getattr(record, name)
        for name in ("brightness", "contrast", "saturation", "hue")
        if getattr(record, name) is not None
    }
    if record.jitter_order:
        jitter["order"] = record.jitter_order
    steps = [
        OpRecord("RandomResizedCrop", "crop", True, crop),
        OpRecord("RandomHorizontalFlip", "flip", record.flip),
        OpRecord("ColorJitter", "jitter", record.jitter, jitter),
        OpRecord("RandomGrayscale", "grayscale", record.grayscale),
        OpRecord("GaussianBlur", "blur", record.blur, {"sigma": record.blur_sigma}),
        OpRecord("RandomSolarize", "solarize", record.solarize),
        OpRecord("Normalize", "normalize", True),  # the config's mean / std
    ]
    return tuple(steps)


@dataclass
class MultiCropSample:
    """The views of one image, grouped as DINOv2 does, with their records (globals first)."""

    global_crops: list[torch.Tensor]  # each (3, Hg, Wg), float, normalised
    local_crops: list[torch.Tensor]  # each (3, Hl, Wl)
    records: list[ViewRecord]  # len == len(global_crops) + len(local_crops) for built pipelines
    source_size: tuple[int, int]  # (width, height)
    notes: list[str] = field(default_factory=list)  # e.g. "outputs were PIL images" for own code

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
