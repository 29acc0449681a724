"""The instrumented multi-crop pipeline (DINO / DINOv2 recipe) built from one config.

Calling the pipeline on a PIL image returns the views as named groups **and**
one :class:`ViewRecord` per view holding every random parameter actually used
(crop box, area scale, aspect ratio, fallback, flip, jitter factors and order,
grayscale, blur sigma, solarize). That record is what the statistics and the
checks measure: errors such as a wrong crop scale live in the sampled
parameters, not in the output tensors.

Per view (REFERENCE.md): RandomResizedCrop (bicubic) -> horizontal flip ->
colour jitter (random order, with probability) -> grayscale -> Gaussian blur
-> solarize -> ToTensor + normalise.

Example::

    import dinodiag
    pipe = dinodiag.build_pipeline(dinodiag.load_config("dinov2"))
    sample = pipe(image, seed=0)
    sample.global_crops[0].shape   # torch.Size([3, 224, 224])
    sample.records[0].scale        # area fraction of the source kept by the first global crop
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from dinodiag.config import PipelineConfig, ViewAugment

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")


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


# --------------------------------------------------------------------------- sampling


def sample_crop_box(
    rng: random.Random,
    width: int,
    height: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
) -> tuple[int, int, int, int, bool]:
    """RandomResizedCrop's parameter draw: ``(left, top, w, h, fallback)`` in source pixels.

    Ten tries of (area fraction uniform in ``scale``, aspect ratio log-uniform in
    ``ratio``); a box that fits is placed uniformly. If none fits, fall back to
    the largest centre crop whose aspect ratio is within ``ratio``.
    """
    area = width * height
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = rng.randint(0, height - h)
            left = rng.randint(0, width - w)
            return left, top, w, h, False
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        h, w = height, int(round(height * ratio[1]))
    else:
        w, h = width, height
    w, h = max(1, w), max(1, h)
    return (width - w) // 2, (height - h) // 2, w, h, True


def _jitter_factor(rng: random.Random, strength: float) -> float:
    return rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength)


def shift_hue(img: Image.Image, hue: float) -> Image.Image:
    """Rotate the hue of an RGB image by ``hue`` (fraction of the circle, in [-0.5, 0.5])."""
    if hue == 0:
        return img
    h, s, v = img.convert("HSV").split()
    shifted = (np.asarray(h, dtype=np.int16) + int(round(hue * 255))) % 256
    hsv = Image.merge("HSV", (Image.fromarray(shifted.astype(np.uint8), "L"), s, v))
    return hsv.convert("RGB")


def _apply_jitter(img: Image.Image, op: str, factor: float) -> Image.Image:
    if op == "brightness":
        return ImageEnhance.Brightness(img).enhance(factor)
    if op == "contrast":
        return ImageEnhance.Contrast(img).enhance(factor)
    if op == "saturation":
        return ImageEnhance.Color(img).enhance(factor)
    return shift_hue(img, factor)


# --------------------------------------------------------------------------- the pipeline


class MultiCropPipeline:
    """The DINO/DINOv2 multi-crop augmentation, recording what it samples.

    ``pipeline(image, seed=None)`` -> :class:`MultiCropSample`. With a seed the
    call is reproducible; without, the pipeline's own generator advances
    (itself seeded by ``seed`` at construction when given).
    ``record=False`` skips building records (the training loop's fast path);
    the random draws are identical either way.
    """

    def __init__(self, config: PipelineConfig, *, seed: int | None = None, record: bool = True):
        self.config = config
        self.record = record
        self._rng = random.Random(seed)
        self._resample = _RESAMPLE[config.interpolation]
        mean = torch.tensor(config.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(config.std, dtype=torch.float32).view(3, 1, 1)
        # ToTensor divides by 255 then normalises: fold both into one scale and shift.
        self._scale = 1.0 / (255.0 * std)
        self._shift = -mean / std

    def __repr__(self) -> str:
        c = self.config
        return (
            f"MultiCropPipeline({c.name!r}: {c.global_crops_number} x {c.global_crops_size}px "
            f"{c.global_crops_scale} + {c.local_crops_number} x {c.local_crops_size}px "
            f"{c.local_crops_scale})"
        )

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        rng = random.Random(seed) if seed is not None else self._rng
        if image.mode != "RGB":
            image = image.convert("RGB")
        cfg = self.config
        globals_: list[torch.Tensor] = []
        locals_: list[torch.Tensor] = []
        records: list[ViewRecord] = []
        groups = (
            ("global", cfg.global_crops_number, cfg.global_crops_size, cfg.global_crops_scale, globals_),
            ("local", cfg.local_crops_number, cfg.local_crops_size, cfg.local_crops_scale, locals_),
        )
        for group, count, size, scale, out in groups:
            for index in range(count):
                tensor, rec = self._view(image, rng, group, index, size, scale)
                out.append(tensor)
                if rec is not None:
                    records.append(rec)
        return MultiCropSample(globals_, locals_, records, image.size)

    def _view(
        self,
        image: Image.Image,
        rng: random.Random,
        group: str,
        index: int,
        size: int,
        scale: tuple[float, float],
    ) -> tuple[torch.Tensor, ViewRecord | None]:
        cfg = self.config
        aug: ViewAugment = cfg.augment_for(group, index)
        width, height = image.size
        left, top, w, h, fallback = sample_crop_box(rng, width, height, scale, cfg.crop_ratio)
        # Crop and resize in one resampling pass (same pixels as crop-then-resize).
        view = image.resize((size, size), self._resample, box=(left, top, left + w, top + h))

        flip = rng.random() < aug.flip_p
        if flip:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

        jitter = rng.random() < aug.jitter_p
        factors: dict[str, float] = {}
        order: tuple[str, ...] | None = None
        if jitter:
            perm = list(range(4))
            rng.shuffle(perm)
            order = tuple(JITTER_OPS[i] for i in perm)
            factors = {
                "brightness": _jitter_factor(rng, aug.brightness),
                "contrast": _jitter_factor(rng, aug.contrast),
                "saturation": _jitter_factor(rng, aug.saturation),
                "hue": rng.uniform(-aug.hue, aug.hue),
            }
            for op in order:
                if (op == "hue" and aug.hue > 0) or (op != "hue" and getattr(aug, op) > 0):
                    view = _apply_jitter(view, op, factors[op])

        grayscale = rng.random() < aug.grayscale_p
        if grayscale:
            view = view.convert("L").convert("RGB")

        blur = rng.random() < aug.blur_p
        sigma = rng.uniform(*aug.blur_sigma) if blur else None
        if sigma is not None:
            view = view.filter(ImageFilter.GaussianBlur(radius=sigma))

        solarize = rng.random() < aug.solarize_p
        if solarize:
            view = ImageOps.solarize(view, aug.solarize_threshold)

        tensor = self._to_tensor(view)
        if not self.record:
            return tensor, None
        record = ViewRecord(
            group=group,
            index=index,
            source_size=(width, height),
            out_size=(size, size),
            box=(float(left), float(top), float(w), float(h)),
            scale=(w * h) / (width * height),
            ratio=w / h,
            fallback=fallback,
            configured_size=(size, size),
            configured_scale=tuple(scale),
            configured_ratio=tuple(cfg.crop_ratio),
            flip=flip,
            jitter=jitter,
            brightness=factors.get("brightness"),
            contrast=factors.get("contrast"),
            saturation=factors.get("saturation"),
            hue=factors.get("hue"),
            jitter_order=order,
            grayscale=grayscale,
            blur=blur,
            blur_sigma=sigma,
            solarize=solarize,
        )
        return tensor, record

    def _to_tensor(self, view: Image.Image) -> torch.Tensor:
        """uint8 HWC PIL -> normalised float CHW tensor, (3, H, W)."""
        array = np.array(view, dtype=np.uint8)  # a writable copy: torch refuses read-only buffers
        tensor = torch.from_numpy(array).permute(2, 0, 1).to(torch.float32)
        return tensor.mul_(self._scale).add_(self._shift)


def build_pipeline(
    config: PipelineConfig, *, seed: int | None = None, record: bool = True
) -> MultiCropPipeline:
    """The multi-crop transform described by ``config`` (see :class:`MultiCropPipeline`)."""
    return MultiCropPipeline(config, seed=seed, record=record)


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
                        f"expected {shape} like the first view; all views of a group must have one size"
                    )
        out[group] = torch.stack([views[v] for v in range(count) for views in per_sample])
    return out
