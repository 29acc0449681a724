"""The DINOv2 multi-crop recipe written for the GPU pipelines users pick instead of dinodiag's
on-device backend: kornia (batched torch ops) and NVIDIA DALI (GPU JPEG decoding + ops).

Both are anchors for speed (REFERENCE.md, "Anchors for speed"); neither keeps per-view records
of what it sampled. Each follows the dinodiag :class:`PipelineConfig` it is given: per view
group its RandomResizedCrop scale / ratio, flip, colour jitter (probability, strengths),
grayscale, Gaussian blur (probability, sigma range) and solarize, then normalisation. Where a
library cannot express the recipe exactly, the difference is named in ``DIFFERENCES``.

Import this module only where the library is installed; ``kornia_available()`` /
``dali_available()`` say why not otherwise.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from dinodiag.augment.config import PipelineConfig, ViewAugment

DIFFERENCES = {
    "kornia": (
        "colour jitter in one fixed random order per batch (kornia's ColorJitter draws the order "
        "once per call); Gaussian blur with a 9 px kernel (as torchvision's GaussianBlur in "
        "DINOv2), not Pillow's box passes"
    ),
    "dali": (
        "colour jitter in a fixed order (brightness, contrast, then hue / saturation in one HSV "
        "op); blur and solarize applied to every view and blended by a per-view coin (the cost "
        "of a view does not depend on its coin); DALI's own RandomResizedCrop sampling"
    ),
}


def why_not(module: str) -> str | None:
    """None when ``module`` imports, else the reason (recorded in the results)."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a CUDA library it could not load
        return f"{module} is not importable here: {type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------- kornia


class KorniaMultiCrop:
    """``views(batch)``: (B, 3, H, W) uint8 on the device -> (globals (G*B, 3, S, S), locals)."""

    def __init__(self, cfg: PipelineConfig, device: torch.device) -> None:
        import kornia.augmentation as K
        from torch import nn

        def view(size: int, scale: tuple[float, float], aug: ViewAugment) -> nn.Module:
            steps: list[nn.Module] = [
                K.RandomResizedCrop(
                    (size, size), scale=scale, ratio=cfg.crop_ratio, resample="BICUBIC"
                ),
                K.RandomHorizontalFlip(p=aug.flip_p),
                K.ColorJitter(
                    aug.brightness, aug.contrast, aug.saturation, aug.hue, p=aug.jitter_p
                ),
                K.RandomGrayscale(p=aug.grayscale_p),
            ]
            if aug.blur_p > 0:
                steps.append(K.RandomGaussianBlur((9, 9), aug.blur_sigma, p=aug.blur_p))
            if aug.solarize_p > 0:
                threshold = aug.solarize_threshold / 255.0
                steps.append(
                    K.RandomSolarize(
                        thresholds=(threshold, threshold), additions=0.0, p=aug.solarize_p
                    )
                )
            steps.append(K.Normalize(torch.tensor(cfg.mean), torch.tensor(cfg.std)))
            return nn.Sequential(*steps).to(device)

        self.cfg = cfg
        self.globals = [
            view(cfg.global_crops_size, cfg.global_crops_scale, cfg.augment_for("global", v))
            for v in range(cfg.global_crops_number)
        ]
        self.local = view(cfg.local_crops_size, cfg.local_crops_scale, cfg.local)

    @torch.no_grad()
    def views(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = batch.float().div_(255.0)
        globals_ = torch.cat([module(images) for module in self.globals])
        locals_ = self.local(images.repeat(self.cfg.local_crops_number, 1, 1, 1))
        return globals_, locals_


# --------------------------------------------------------------------------- DALI


def dali_pipeline(
    cfg: PipelineConfig,
    files: list[str],
    batch: int,
    *,
    gpu: bool,
    threads: int = 8,
    seed: int = 0,
) -> Any:
    """A DALI pipeline: JPEG files -> decode (nvJPEG on the GPU when ``gpu``) -> every view of
    the recipe -> normalised CHW float; outputs the G global then the L local views."""
    from nvidia.dali import fn, pipeline_def, types

    mean = [255.0 * m for m in cfg.mean]
    std = [255.0 * s for s in cfg.std]

    def coin(p: float) -> Any:  # 0. or 1. per sample
        return fn.cast(fn.random.coin_flip(probability=p), dtype=types.FLOAT)

    def uniform(low: float, high: float) -> Any:
        return fn.random.uniform(range=[low, high])

    def view(images: Any, size: int, scale: tuple[float, float], aug: ViewAugment) -> Any:
        out = fn.random_resized_crop(
            images,
            size=(size, size),
            random_area=list(scale),
            random_aspect_ratio=list(cfg.crop_ratio),
            interp_type=types.INTERP_CUBIC,
            antialias=True,
        )
        jitter = coin(aug.jitter_p)
        keep = 1.0 - jitter  # factor 1 (no change) where the jitter coin says no

        def factor(strength: float) -> Any:
            return jitter * uniform(max(0.0, 1 - strength), 1 + strength) + keep

        out = fn.brightness_contrast(
            out, brightness=factor(aug.brightness), contrast=factor(aug.contrast)
        )
        gray = coin(aug.grayscale_p)
        saturation = factor(aug.saturation) * (1.0 - gray)
        hue = jitter * uniform(-aug.hue, aug.hue) * 360.0  # degrees
        out = fn.hsv(out, hue=hue, saturation=saturation)
        if aug.blur_p > 0:
            blurred = fn.gaussian_blur(out, sigma=uniform(*aug.blur_sigma))
            blur = coin(aug.blur_p)
            out = fn.cast(blur * blurred + (1.0 - blur) * out, dtype=types.UINT8)
        if aug.solarize_p > 0:
            solar = coin(aug.solarize_p)
            flipped = 255.0 - out
            above = out >= aug.solarize_threshold
            out = fn.cast(out + solar * above * (flipped - out), dtype=types.UINT8)
        return fn.crop_mirror_normalize(
            out,
            mirror=fn.random.coin_flip(probability=aug.flip_p),
            mean=mean,
            std=std,
            output_layout="CHW",
            dtype=types.FLOAT,
        )

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=0 if gpu else None, seed=seed)
    def multicrop() -> tuple:
        jpegs, _labels = fn.readers.file(files=files, name="reader", random_shuffle=False)
        images = fn.decoders.image(jpegs, device="mixed" if gpu else "cpu", output_type=types.RGB)
        outputs = [
            view(
                images, cfg.global_crops_size, cfg.global_crops_scale, cfg.augment_for("global", v)
            )
            for v in range(cfg.global_crops_number)
        ]
        outputs += [
            view(images, cfg.local_crops_size, cfg.local_crops_scale, cfg.local)
            for _ in range(cfg.local_crops_number)
        ]
        return tuple(outputs)

    pipe = multicrop()
    pipe.build()
    return pipe
