"""DINO-family augmentations written three common ways, for dinodiag to measure.

    # the recipe as DINOv2's released code runs it: fails photometric_rates (blur 0 / 0.9 / 0.5)
    python -m dinodiag check --pipeline examples/dino_pipelines.py:released_dinov2
    # the same structure with the published probabilities: passes
    python -m dinodiag check --pipeline examples/dino_pipelines.py:published_dinov2
    # DINO v1's style: hand-written blur and solarize classes drawing with random.random()
    python -m dinodiag check --pipeline examples/dino_pipelines.py:dino_v1 --expect dino

Each factory takes ``global_size``, ``local_size`` and ``local_crops`` (JSON with
``--pipeline-kwargs``). The blur class of ``released_dinov2`` subclasses ``RandomApply``
and hands it ``1 - p``, the way DINOv2's and DINOv3's own ``GaussianBlur`` does (dinov2
PR #411, dinov3 issue #286): ``p=1.0`` on the first global view then never blurs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
BICUBIC = T.InterpolationMode.BICUBIC


class OneMinusPBlur(T.RandomApply):
    """A Gaussian blur that hands ``1 - p`` to ``RandomApply`` (the released code's bug)."""

    def __init__(self, p: float) -> None:
        super().__init__([T.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))], p=1 - p)


def published_blur(p: float) -> T.RandomApply:
    """A Gaussian blur applied with probability ``p``, as the papers describe it."""
    return T.RandomApply([T.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))], p=p)


class TwoStepMultiCrop:
    """DINOv2's structure: crop and flip, then colour, blur (solarize on global 2), normalise."""

    def __init__(
        self, blur: Callable[[float], Any], global_size: int, local_size: int, local_crops: int
    ) -> None:
        def geometric(size: int, scale: tuple[float, float]) -> T.Compose:
            crop = T.RandomResizedCrop(size, scale=scale, interpolation=BICUBIC)
            return T.Compose([crop, T.RandomHorizontalFlip(p=0.5)])

        jitter = T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)
        colour = T.Compose([jitter, T.RandomGrayscale(p=0.2)])
        normalise = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
        self.crop_global = geometric(global_size, (0.32, 1.0))
        self.crop_local = geometric(local_size, (0.05, 0.32))
        self.first = T.Compose([colour, blur(1.0), normalise])
        self.second = T.Compose([colour, blur(0.1), T.RandomSolarize(128, p=0.2), normalise])
        self.local = T.Compose([colour, blur(0.5), normalise])
        self.local_crops = local_crops

    def __call__(self, image: Image.Image) -> dict[str, Any]:
        first = self.first(self.crop_global(image))
        second = self.second(self.crop_global(image))
        return {
            "global_crops": [first, second],
            "global_crops_teacher": [first, second],
            "local_crops": [self.local(self.crop_local(image)) for _ in range(self.local_crops)],
        }


def released_dinov2(
    global_size: int = 224, local_size: int = 96, local_crops: int = 8
) -> TwoStepMultiCrop:
    """The recipe as DINOv2's released code runs it (blur 0 / ~0.9 / 0.5)."""
    return TwoStepMultiCrop(OneMinusPBlur, global_size, local_size, local_crops)


def published_dinov2(
    global_size: int = 224, local_size: int = 96, local_crops: int = 8
) -> TwoStepMultiCrop:
    """The same structure with the published probabilities (blur 1.0 / 0.1 / 0.5)."""
    return TwoStepMultiCrop(published_blur, global_size, local_size, local_crops)


class PilBlur:
    """DINO v1's kind of blur: a plain class, ``random.random() <= p``, PIL's own filter."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() > self.p:
            return image
        return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))


class PilSolarize:
    """DINO v1's kind of solarize: ``ImageOps.solarize`` with probability ``p``."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        return ImageOps.solarize(image) if random.random() < self.p else image


class OneComposePerView:
    """DINO v1's structure: one Compose per view, returning a list (globals first)."""

    def __init__(self, global_size: int, local_size: int, local_crops: int) -> None:
        flip_and_colour = T.Compose(
            [
                T.RandomHorizontalFlip(p=0.5),
                T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                T.RandomGrayscale(p=0.2),
            ]
        )
        normalise = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])

        def view(size: int, scale: tuple[float, float], *extra: Any) -> T.Compose:
            crop = T.RandomResizedCrop(size, scale=scale, interpolation=BICUBIC)
            return T.Compose([crop, flip_and_colour, *extra, normalise])

        self.first = view(global_size, (0.4, 1.0), PilBlur(1.0))
        self.second = view(global_size, (0.4, 1.0), PilBlur(0.1), PilSolarize(0.2))
        self.local = view(local_size, (0.05, 0.4), PilBlur(0.5))
        self.local_crops = local_crops

    def __call__(self, image: Image.Image) -> list[Any]:
        locals_ = [self.local(image) for _ in range(self.local_crops)]
        return [self.first(image), self.second(image), *locals_]


def dino_v1(
    global_size: int = 224, local_size: int = 96, local_crops: int = 8
) -> OneComposePerView:
    """DINO v1's recipe with hand-written blur / solarize classes (check with --expect dino)."""
    return OneComposePerView(global_size, local_size, local_crops)
