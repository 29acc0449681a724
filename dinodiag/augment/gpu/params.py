"""Per-view random parameters of a whole batch, drawn at once (vectorised), and their records.

The on-device backend (:mod:`dinodiag.augment.gpu.multicrop`) draws every view's parameters for
a batch here, on the CPU with a ``torch.Generator``, with the same distributions as
:class:`dinodiag.augment.pipeline.MultiCropPipeline` (which draws one view at a time from
Python's ``random``): the 10-try RandomResizedCrop box with its centre-crop fallback
(all tries drawn at once), flip, jitter (applied, order, factors), grayscale, blur and
its sigma, solarize. Rows are view-major: row ``v * B + b`` is view ``v`` of sample
``b``, as :func:`dinodiag.augment.records.collate_views` stacks views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import ViewRecord

JITTER_ORDER = ("brightness", "contrast", "saturation", "hue")  # op index -> name


@dataclass
class ViewParams:
    """Per-view random parameters of a batch; row ``v * B + b`` is view ``v`` of sample ``b``."""

    sample: torch.Tensor  # (N,) int64: source image of the row
    slot: torch.Tensor  # (N,) int64: view index, globals first (0..G+L-1)
    box: torch.Tensor  # (N, 4) float64: left, top, width, height in source pixels
    fallback: torch.Tensor  # (N,) bool: no try fitted; centre crop
    flip: torch.Tensor  # (N,) bool
    jitter: torch.Tensor  # (N,) bool: colour jitter applied at all
    order: torch.Tensor  # (N, 4) int64: jitter op indices (JITTER_ORDER) in order
    factors: torch.Tensor  # (N, 4) float64: brightness, contrast, saturation, hue
    grayscale: torch.Tensor  # (N,) bool
    blur: torch.Tensor  # (N,) bool
    sigma: torch.Tensor  # (N,) float64: blur sigma (0 where no blur)
    solarize: torch.Tensor  # (N,) bool


def _uniform(
    generator: torch.Generator, shape: tuple[int, ...], low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Uniform draws in ``[low, high)`` (float64), ``low``/``high`` broadcast against ``shape``."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)


def sample_boxes(
    generator: torch.Generator,
    sizes: torch.Tensor,
    scale: torch.Tensor,
    ratio: tuple[float, float],
    tries: int = 10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RandomResizedCrop boxes for N rows at once -> ``(box (N, 4) float64, fallback (N,) bool)``.

    ``sizes`` (N, 2): source (width, height); ``scale`` (N, 2): area-fraction range per
    row. All ``tries`` (area, aspect) pairs are drawn at once; the first that fits is
    kept (as the CPU path's loop), its position drawn uniformly; rows where none fits
    take the centre crop with the aspect ratio clamped into ``ratio``.
    """
    count = sizes.shape[0]
    width, height = sizes[:, 0:1].to(torch.float64), sizes[:, 1:2].to(torch.float64)
    target = width * height * _uniform(generator, (count, tries), scale[:, 0:1], scale[:, 1:2])
    log_ratio = torch.tensor([math.log(ratio[0]), math.log(ratio[1])], dtype=torch.float64)
    aspect = torch.exp(_uniform(generator, (count, tries), log_ratio[0], log_ratio[1]))
    w = torch.round(torch.sqrt(target * aspect))  # round half to even, as Python's round
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(fits.to(torch.int8), dim=1, keepdim=True)  # first fitting try
    found = fits.any(dim=1)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    width, height = width.squeeze(1), height.squeeze(1)
    position = torch.rand((count, 2), generator=generator, dtype=torch.float64)
    top = torch.floor(position[:, 0] * (height - h + 1))
    left = torch.floor(position[:, 1] * (width - w + 1))
    # Fallback: the largest centre crop whose aspect ratio lies in the range; the batched
    # twin of dinodiag.augment.pipeline.fallback_crop_box (a test holds them equal).
    in_ratio = width / height
    fb_w = torch.where(in_ratio > ratio[1], torch.round(height * ratio[1]), width)
    fb_h = torch.where(in_ratio < ratio[0], torch.round(width / ratio[0]), height)
    fb_w, fb_h = fb_w.clamp(min=1), fb_h.clamp(min=1)
    w, h = torch.where(found, w, fb_w), torch.where(found, h, fb_h)
    left = torch.where(found, left, torch.div(width - fb_w, 2, rounding_mode="floor"))
    top = torch.where(found, top, torch.div(height - fb_h, 2, rounding_mode="floor"))
    return torch.stack([left, top, w, h], dim=1), ~found


def sample_params(
    generator: torch.Generator, cfg: PipelineConfig, sizes: list[tuple[int, int]]
) -> ViewParams:
    """Draw every view's parameters of a batch (on CPU; rows view-major)."""
    batch = len(sizes)
    views = cfg.num_views
    slot = torch.arange(views).repeat_interleave(batch)
    sample = torch.arange(batch).repeat(views)
    kinds = [cfg.augment_for(*group_index(cfg, v)) for v in range(views)]

    def per_row(values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)[slot]

    scale = per_row(
        [cfg.global_crops_scale[0]] * cfg.global_crops_number
        + [cfg.local_crops_scale[0]] * cfg.local_crops_number
    )
    scale_hi = per_row(
        [cfg.global_crops_scale[1]] * cfg.global_crops_number
        + [cfg.local_crops_scale[1]] * cfg.local_crops_number
    )
    size_rows = torch.tensor(sizes, dtype=torch.float64)[sample]
    box, fallback = sample_boxes(
        generator, size_rows, torch.stack([scale, scale_hi], 1), cfg.crop_ratio
    )
    count = len(slot)

    def chance(name: str) -> torch.Tensor:
        return torch.rand(count, generator=generator, dtype=torch.float64) < per_row(
            [getattr(k, name) for k in kinds]
        )

    flip, jitter = chance("flip_p"), chance("jitter_p")
    order = torch.argsort(torch.rand((count, 4), generator=generator), dim=1)  # uniform permutation
    low = torch.stack(
        [
            per_row([max(0.0, 1 - getattr(k, n)) for k in kinds])
            for n in ("brightness", "contrast", "saturation")
        ]
        + [per_row([-k.hue for k in kinds])],
        1,
    )
    high = torch.stack(
        [
            per_row([1 + getattr(k, n) for k in kinds])
            for n in ("brightness", "contrast", "saturation")
        ]
        + [per_row([k.hue for k in kinds])],
        1,
    )
    factors = _uniform(generator, (count, 4), low, high)
    grayscale, blur = chance("grayscale_p"), chance("blur_p")
    sigma = _uniform(
        generator,
        (count,),
        per_row([k.blur_sigma[0] for k in kinds]),
        per_row([k.blur_sigma[1] for k in kinds]),
    )
    solarize = chance("solarize_p")
    return ViewParams(
        sample=sample,
        slot=slot,
        box=box,
        fallback=fallback,
        flip=flip,
        jitter=jitter,
        order=order,
        factors=factors,
        grayscale=grayscale,
        blur=blur,
        sigma=torch.where(blur, sigma, 0.0),
        solarize=solarize,
    )


def group_index(cfg: PipelineConfig, slot: int) -> tuple[str, int]:
    if slot < cfg.global_crops_number:
        return "global", slot
    return "local", slot - cfg.global_crops_number


def params_from_records(cfg: PipelineConfig, records: list[list[ViewRecord]]) -> ViewParams:
    """The :class:`ViewParams` of CPU-pipeline records (one list per sample, globals first).

    Lets this backend render exactly the views the CPU pipeline sampled (for
    comparisons, or to replay a recorded batch).
    """
    batch = len(records)
    rows = [records[b][v] for v in range(cfg.num_views) for b in range(batch)]
    names = JITTER_ORDER

    def column(values: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype)

    return ViewParams(
        sample=torch.arange(batch).repeat(cfg.num_views),
        slot=torch.arange(cfg.num_views).repeat_interleave(batch),
        box=column([list(r.box) for r in rows], torch.float64),
        fallback=column([bool(r.fallback) for r in rows], torch.bool),
        flip=column([bool(r.flip) for r in rows], torch.bool),
        jitter=column([bool(r.jitter) for r in rows], torch.bool),
        order=column(
            [[names.index(op) for op in (r.jitter_order or names)] for r in rows], torch.int64
        ),
        factors=column(
            [
                [r.brightness or 1.0, r.contrast or 1.0, r.saturation or 1.0, r.hue or 0.0]
                for r in rows
            ],
            torch.float64,
        ),
        grayscale=column([bool(r.grayscale) for r in rows], torch.bool),
        blur=column([bool(r.blur) for r in rows], torch.bool),
        sigma=column([r.blur_sigma or 0.0 for r in rows], torch.float64),
        solarize=column([bool(r.solarize) for r in rows], torch.bool),
    )


def records_from_params(
    cfg: PipelineConfig, params: ViewParams, sizes: list[tuple[int, int]]
) -> list[list[ViewRecord]]:
    """One :class:`ViewRecord` list per sample (globals first), as the CPU pipeline records."""
    batch = len(sizes)
    per_sample: list[list[ViewRecord]] = [[] for _ in range(batch)]
    columns = {name: getattr(params, name).tolist() for name in ViewParams.__dataclass_fields__}
    for row in range(len(columns["sample"])):
        slot, sample = columns["slot"][row], columns["sample"][row]
        group, index = group_index(cfg, slot)
        size = cfg.global_crops_size if group == "global" else cfg.local_crops_size
        scale = cfg.global_crops_scale if group == "global" else cfg.local_crops_scale
        width, height = sizes[sample]
        left, top, w, h = columns["box"][row]
        jitter = columns["jitter"][row]
        factors = columns["factors"][row]
        blur = columns["blur"][row]
        per_sample[sample].append(
            ViewRecord(
                group=group,
                index=index,
                source_size=(width, height),
                out_size=(size, size),
                box=(left, top, w, h),
                scale=(w * h) / (width * height),
                ratio=w / h,
                fallback=columns["fallback"][row],
                configured_size=(size, size),
                configured_scale=tuple(scale),
                configured_ratio=tuple(cfg.crop_ratio),
                flip=columns["flip"][row],
                jitter=jitter,
                brightness=factors[0] if jitter else None,
                contrast=factors[1] if jitter else None,
                saturation=factors[2] if jitter else None,
                hue=factors[3] if jitter else None,
                jitter_order=tuple(JITTER_ORDER[i] for i in columns["order"][row])
                if jitter
                else None,
                grayscale=columns["grayscale"][row],
                blur=blur,
                blur_sigma=columns["sigma"][row] if blur else None,
                solarize=columns["solarize"][row],
            )
        )
    return per_sample
