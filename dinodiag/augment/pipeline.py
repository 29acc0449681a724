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

How it runs (about 2x the images/s per core of the same recipe written with
torchvision on PIL images; ``python bench/bench_augment.py``): the crop is cut
then resized, as torchvision's RandomResizedCrop does, by torch's antialiased
uint8 resize (bicubic / bilinear, in Pillow's pass order; other filters use PIL),
which gives Pillow's bytes on ~99.7 % of pixels and never more than 2 grey levels
apart in the tests; the photometric operations run on one float32 ``(3, H, W)``
array with :mod:`dinodiag.augment.photometric`, which reproduces torchvision's PIL operations
bit for bit; the flip and ``ToTensor + Normalize`` are one fused multiply-add.

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

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dinodiag.augment import photometric
from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.records import MultiCropSample, ViewRecord

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
# Filters torch resizes with PIL's antialiasing (same filter, same support); others go through PIL.
_TORCH_MODES = {"bicubic": "bicubic", "bilinear": "bilinear"}
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
_JITTER_FUNCTIONS = {
    "brightness": photometric.adjust_brightness,
    "contrast": photometric.adjust_contrast,
    "saturation": photometric.adjust_saturation,
    "hue": photometric.adjust_hue,
}


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
    return (*fallback_crop_box(width, height, ratio), True)


def fallback_crop_box(
    width: int, height: int, ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box when none of its ten tries fits: ``(left, top, w, h)``.

    The largest centre crop of a ``width x height`` source whose aspect ratio ``w / h`` is
    clamped into ``ratio``: the whole image when its own ratio is in range, else the full
    width (too tall) or the full height (too wide). The same box as torchvision's
    ``RandomResizedCrop.get_params``, which returns it as ``(top, left, h, w)``. A side never
    drops below one pixel (torchvision would return an empty box there and fail to crop).
    """
    low, high = min(ratio), max(ratio)
    in_ratio = width / height
    if in_ratio < low:
        w, h = width, int(round(width / low))
    elif in_ratio > high:
        w, h = int(round(height * high)), height
    else:
        w, h = width, height
    w, h = max(1, w), max(1, h)
    return (width - w) // 2, (height - h) // 2, w, h


def _jitter_factor(rng: random.Random, strength: float) -> float:
    return rng.uniform(max(0.0, 1.0 - strength), 1.0 + strength)


# --------------------------------------------------------------------------- the pipeline


class MultiCropPipeline:
    """The DINO/DINOv2 multi-crop augmentation, recording what it samples.

    ``pipeline(image, seed=None)`` -> :class:`MultiCropSample`. With a seed the
    call is reproducible; without, the pipeline's own generator advances
    (itself seeded by ``seed`` at construction when given).
    ``record=False`` skips building records (the training loop's fast path);
    ``render=False`` skips the pixels and returns records only (the statistics'
    fast path: no views in the sample). The random draws are identical either way.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        seed: int | None = None,
        record: bool = True,
        render: bool = True,
    ):
        if not (record or render):
            raise ValueError("a pipeline with record=False and render=False would produce nothing")
        self.config = config
        self.record = record
        self.render = render
        self._rng = random.Random(seed)
        self._resample = _RESAMPLE[config.interpolation]
        self._torch_mode = _TORCH_MODES.get(config.interpolation)
        mean = np.asarray(config.mean, dtype=np.float32).reshape(3, 1, 1)
        std = np.asarray(config.std, dtype=np.float32).reshape(3, 1, 1)
        # ToTensor divides by 255 then normalises: fold both into one scale and shift.
        self._scale = np.float32(1.0) / (np.float32(255.0) * std)
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
        # (1, 3, H, W) uint8 in channels-last memory: torch's fast uint8 resize layout.
        source = (
            torch.from_numpy(np.array(image)).unsqueeze(0).permute(0, 3, 1, 2)
            if self.render
            else None
        )
        cfg = self.config
        globals_: list[torch.Tensor] = []
        locals_: list[torch.Tensor] = []
        records: list[ViewRecord] = []
        groups = (
            (
                "global",
                cfg.global_crops_number,
                cfg.global_crops_size,
                cfg.global_crops_scale,
                globals_,
            ),
            ("local", cfg.local_crops_number, cfg.local_crops_size, cfg.local_crops_scale, locals_),
        )
        for group, count, size, scale, out in groups:
            for index in range(count):
                tensor, rec = self._view(image, source, rng, group, index, size, scale)
                if tensor is not None:
                    out.append(tensor)
                if rec is not None:
                    records.append(rec)
        return MultiCropSample(globals_, locals_, records, image.size)

    def _view(
        self,
        image: Image.Image,
        source: torch.Tensor | None,
        rng: random.Random,
        group: str,
        index: int,
        size: int,
        scale: tuple[float, float],
    ) -> tuple[torch.Tensor | None, ViewRecord | None]:
        cfg = self.config
        aug: ViewAugment = cfg.augment_for(group, index)
        width, height = image.size
        # The random draws, in the recipe's order (the pixels never change them).
        left, top, w, h, fallback = sample_crop_box(rng, width, height, scale, cfg.crop_ratio)
        flip = rng.random() < aug.flip_p
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
        grayscale = rng.random() < aug.grayscale_p
        blur = rng.random() < aug.blur_p
        sigma = rng.uniform(*aug.blur_sigma) if blur else None
        solarize = rng.random() < aug.solarize_p

        tensor = None
        if self.render:
            planes = self._crop_resize(image, source, (left, top, w, h), size)  # (3, S, S)
            for op in order or ():
                if (
                    getattr(aug, op) > 0
                ):  # a zero strength turns the operation off, as in ColorJitter
                    planes = _JITTER_FUNCTIONS[op](planes, factors[op])
            if grayscale:
                planes = photometric.to_grayscale(planes)
            if sigma is not None:
                planes = photometric.gaussian_blur(planes, sigma)
            if solarize:
                planes = photometric.solarize(planes, aug.solarize_threshold)
            # Every operation above commutes with a horizontal flip: flip while normalising.
            tensor = self._normalise(planes[:, :, ::-1] if flip else planes)
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

    def _crop_resize(
        self, image: Image.Image, source: torch.Tensor, box: tuple[int, int, int, int], size: int
    ) -> np.ndarray:
        """Crop ``box`` (left, top, w, h) then resize to ``size`` -> ``(3, size, size)`` float32.

        Crop-then-resize, as torchvision's RandomResizedCrop: the filter never reads
        pixels outside the box.
        """
        left, top, w, h = box
        if self._torch_mode is None:
            view = image.crop((left, top, left + w, top + h)).resize((size, size), self._resample)
            return photometric.from_uint8(np.asarray(view))
        resized = source[:, :, top : top + h, left : left + w]  # (1, 3, h, w) uint8 view
        # Two separable passes rounded to bytes in between, in Pillow's order: torch runs
        # the horizontal pass first; Pillow (>= 13) runs the vertical one first when the
        # height shrinks by more than twice as many pixels as the width.
        if h > size and h - size > 2 * (w - size):
            resized = self._resize(resized, (size, w))
        resized = self._resize(resized, (size, size))
        return resized[0].to(torch.float32, memory_format=torch.contiguous_format).numpy()

    def _resize(self, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Antialiased uint8 resize of ``(1, 3, h, w)`` to ``size`` (PIL's filter and support)."""
        if tuple(images.shape[-2:]) == size:
            return images
        return F.interpolate(
            images, size=size, mode=self._torch_mode, antialias=True, align_corners=False
        )

    def _normalise(self, planes: np.ndarray) -> torch.Tensor:
        """``(3, H, W)`` float32 of 0..255 -> ``ToTensor + Normalize`` as one multiply-add."""
        tensor = torch.empty(planes.shape, dtype=torch.float32)
        out = tensor.numpy()
        np.multiply(planes, self._scale, out=out)
        out += self._shift
        return tensor


def build_pipeline(
    config: PipelineConfig, *, seed: int | None = None, record: bool = True, render: bool = True
) -> MultiCropPipeline:
    """The multi-crop transform described by ``config`` (see :class:`MultiCropPipeline`)."""
    return MultiCropPipeline(config, seed=seed, record=record, render=render)
