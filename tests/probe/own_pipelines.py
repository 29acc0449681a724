"""Own pipelines written the ways DINO code is written, small enough for fast tests.

- :func:`dinov2_style`: DINOv2's structure (a geometric ``Compose`` per view, then a colour
  ``Compose``; a dict with extra keys like dinov3's), with a choice of blur: torchvision's
  ``GaussianBlur`` in a ``RandomApply`` (the published recipe), :class:`InvertedBlur` (a
  ``RandomApply`` subclass that passes ``1 - p``, as DINOv2's and DINOv3's released
  ``GaussianBlur`` does) or :class:`PlainBlur` (DINO v1's kind of hand-written class);
- :func:`dino_v1_style`: DINO v1's structure (one ``Compose`` per view, hand-written blur
  and solarize classes drawing with ``random.random()``), a list of views;
- :func:`v2_style`: the recipe with ``torchvision.transforms.v2`` on tensors;
- :func:`without_jitter`: the recipe minus colour jitter.

Sizes: 32 px globals and 16 px locals by default (:data:`EXPECT` is the dinov2 recipe at
those sizes).
"""

from __future__ import annotations

import random
from typing import Any

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps
from torchvision.transforms import v2

from dinodiag.augment.presets import PRESETS

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GLOBAL, LOCAL, N_LOCAL = 32, 16, 4
# The dinov2 recipe at the test sizes: what your own pipelines are checked against.
EXPECT = PRESETS["dinov2"].config.replace(
    global_crops_size=GLOBAL, local_crops_size=LOCAL, local_crops_number=N_LOCAL, patch_size=8
)
RELEASED = PRESETS["dinov2-released"].config.replace(
    global_crops_size=GLOBAL, local_crops_size=LOCAL, local_crops_number=N_LOCAL, patch_size=8
)
BICUBIC = T.InterpolationMode.BICUBIC


class InvertedBlur(T.RandomApply):
    """A Gaussian blur that hands ``1 - p`` to ``RandomApply``: ``p=1.0`` never blurs."""

    def __init__(self, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0)) -> None:
        super().__init__([T.GaussianBlur(kernel_size=9, sigma=sigma)], p=1 - p)


class PlainBlur:
    """DINO v1's kind of blur: a plain class, ``random.random() <= p``, PIL's filter."""

    def __init__(self, p: float = 0.5, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() > self.prob:
            return img
        radius = random.uniform(self.radius_min, self.radius_max)
        return img.filter(ImageFilter.GaussianBlur(radius=radius))


class Solarization:
    """DINO v1's kind of solarize: a plain class around ``ImageOps.solarize``."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() < self.p:
            return ImageOps.solarize(img)
        return img


def torchvision_blur(p: float) -> T.RandomApply:
    return T.RandomApply([T.GaussianBlur(kernel_size=9, sigma=(0.1, 2.0))], p=p)


BLURS = {"torchvision": torchvision_blur, "inverted": InvertedBlur, "plain": PlainBlur}


class DinoV2Style:
    """Crop and flip, then colour, blur (and solarize on global 2), then normalise."""

    def __init__(self, blur: str = "torchvision", jitter: float = 0.4) -> None:
        make_blur = BLURS[blur]
        self.geometric_global = T.Compose(
            [
                T.RandomResizedCrop(GLOBAL, scale=(0.32, 1.0), interpolation=BICUBIC),
                T.RandomHorizontalFlip(p=0.5),
            ]
        )
        self.geometric_local = T.Compose(
            [
                T.RandomResizedCrop(LOCAL, scale=(0.05, 0.32), interpolation=BICUBIC),
                T.RandomHorizontalFlip(p=0.5),
            ]
        )
        colour = T.Compose(
            [
                T.RandomApply([T.ColorJitter(jitter, jitter, 0.2, 0.1)], p=0.8),
                T.RandomGrayscale(p=0.2),
            ]
        )
        normalise = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
        self.global1 = T.Compose([colour, make_blur(p=1.0), normalise])
        self.global2 = T.Compose(
            [colour, T.Compose([make_blur(p=0.1), T.RandomSolarize(128, p=0.2)]), normalise]
        )
        self.local = T.Compose([colour, make_blur(p=0.5), normalise])

    def __call__(self, image: Image.Image) -> dict[str, Any]:
        first = self.global1(self.geometric_global(image))
        second = self.global2(self.geometric_global(image))
        locals_ = [self.local(self.geometric_local(image)) for _ in range(N_LOCAL)]
        return {
            "global_crops": [first, second],
            "global_crops_teacher": [first, second],  # dinov3 adds keys like these
            "local_crops": locals_,
            "weak_flag": False,
            "offsets": (),
        }


def dinov2_style(blur: str = "torchvision", jitter: float = 0.4) -> DinoV2Style:
    return DinoV2Style(blur, jitter)


class DinoV1Style:
    """One Compose per view with hand-written blur and solarize, returning a list."""

    def __init__(self, with_jitter: bool = True) -> None:
        colour = [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8)] if with_jitter else []
        flip_and_colour = T.Compose(
            [T.RandomHorizontalFlip(p=0.5), *colour, T.RandomGrayscale(0.2)]
        )
        normalise = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])

        def view(size: int, scale: tuple[float, float], extra: list[Any]) -> T.Compose:
            crop = T.RandomResizedCrop(size, scale=scale, interpolation=BICUBIC)
            return T.Compose([crop, flip_and_colour, *extra, normalise])

        self.global1 = view(GLOBAL, (0.32, 1.0), [PlainBlur(1.0)])
        self.global2 = view(GLOBAL, (0.32, 1.0), [PlainBlur(0.1), Solarization(0.2)])
        self.local = view(LOCAL, (0.05, 0.32), [PlainBlur(p=0.5)])

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        return [self.global1(image), self.global2(image)] + [
            self.local(image) for _ in range(N_LOCAL)
        ]


def dino_v1_style() -> DinoV1Style:
    return DinoV1Style()


def without_jitter() -> DinoV1Style:
    return DinoV1Style(with_jitter=False)


def v2_style() -> Any:
    """The recipe with transforms v2 on uint8 tensors, returning a dict."""

    def view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> Any:
        return v2.Compose(
            [
                v2.PILToTensor(),
                v2.RandomResizedCrop(size, scale=scale, interpolation=BICUBIC, antialias=True),
                v2.RandomHorizontalFlip(),
                v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
                v2.RandomGrayscale(p=0.2),
                v2.RandomApply([v2.GaussianBlur(9, (0.1, 2.0))], p=blur_p),
                v2.RandomSolarize(128, p=solarize_p),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        )

    first = view(GLOBAL, (0.32, 1.0), 1.0, 0.0)
    second = view(GLOBAL, (0.32, 1.0), 0.1, 0.2)
    local = view(LOCAL, (0.05, 0.32), 0.5, 0.0)
    return lambda im: {
        "global_crops": [first(im), second(im)],
        "local_crops": [local(im) for _ in range(N_LOCAL)],
    }
