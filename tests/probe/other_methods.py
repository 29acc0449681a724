"""Multi-crop pipelines written the way other self-supervised projects write them.

Written here from their documented defaults (no other repository's files):

- lightly's ``DINOTransform``: one ``Compose`` per view (crop with bicubic, flips, jitter
  in a ``RandomApply``, grayscale, lightly's own blur and solarize classes drawing with
  ``random.random() < p``), a list with the local view transform reused; 6 locals, DINO v1's
  scales (0.4, 1) / (0.05, 0.4);
- iBOT's ViT-S/16 command: 10 locals, (0.25, 1) / (0.05, 0.25), DINO v1's per-view classes;
- VISSL's multi-crop (:class:`VisslMultiCrop`): one transform makes every crop (torchvision's
  ``RandomResizedCrop`` at its bilinear default, as SwAV's code too), then each later step is
  applied to the whole list of views (:class:`OnAllViews`, as VISSL's
  ``SSLTransformsWrapper``), with VISSL's own PIL blur drawing with ``np.random.rand()``;
- a crop class written by hand (:class:`HandCrop`, as VICRegL's keeps the crop's location):
  ``RandomResizedCrop.get_params`` then torchvision's ``functional.resized_crop``;
- a colour jitter written by hand on PIL's ``ImageEnhance`` (:class:`EnhanceJitter`, as
  ports of TF SimCLR / BYOL write it): the four factors in random order, at p = 0.8.

Sizes are small (32 px globals, 16 px locals) to keep the tests fast; :data:`EXPECT` is the
dinov2 recipe at those sizes with its 8 locals.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from dinodiag.augment.presets import PRESETS

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GLOBAL, LOCAL = 32, 16
EXPECT = PRESETS["dinov2"].config.replace(
    global_crops_size=GLOBAL, local_crops_size=LOCAL, patch_size=8
)


class LightlyBlur:
    """lightly's kind of blur: sigma drawn uniformly, PIL's filter, ``prob < self.prob``."""

    def __init__(self, prob: float = 0.5, sigmas: tuple[float, float] = (0.1, 2.0)) -> None:
        self.prob, self.sigmas = prob, sigmas

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() < self.prob:
            return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigmas)))
        return image


class LightlySolarize:
    """lightly's kind of solarize: ``ImageOps.solarize`` at a fixed threshold (128)."""

    def __init__(self, prob: float = 0.5, threshold: int = 128) -> None:
        self.prob, self.threshold = prob, threshold

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() < self.prob:
            return ImageOps.solarize(image, threshold=self.threshold)
        return image


class RandomThresholdSolarize:
    """A hand-written solarize whose threshold is drawn at random in [0, 256]."""

    def __init__(self, prob: float) -> None:
        self.prob = prob

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() < self.prob:
            return ImageOps.solarize(image, threshold=random.uniform(0, 256))
        return image


def view(
    size: int,
    scale: tuple[float, float],
    blur: float,
    solarize: Any,
    interpolation: Any = Image.BICUBIC,
) -> T.Compose:
    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=scale, interpolation=interpolation),
            T.RandomHorizontalFlip(p=0.5),
            T.RandomVerticalFlip(p=0.0),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            LightlyBlur(blur),
            solarize,
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )


class MultiView:
    """lightly's ``MultiViewTransform``: ``[t(image) for t in transforms]``."""

    def __init__(
        self,
        n_local: int = 6,
        global_scale: tuple[float, float] = (0.4, 1.0),
        local_scale: tuple[float, float] = (0.05, 0.4),
        solarize: Any = None,
        interpolation: Any = Image.BICUBIC,
    ) -> None:
        second = solarize if solarize is not None else LightlySolarize(0.2)
        self.transforms = [
            view(GLOBAL, global_scale, 1.0, LightlySolarize(0.0), interpolation),
            view(GLOBAL, global_scale, 0.1, second, interpolation),
        ] + [view(LOCAL, local_scale, 0.5, LightlySolarize(0.0), interpolation)] * n_local

    def __call__(self, image: Image.Image) -> list:
        return [t(image) for t in self.transforms]


def lightly_dino() -> MultiView:
    """lightly's DINOTransform defaults: 6 locals, (0.4, 1) / (0.05, 0.4)."""
    return MultiView()


def ibot() -> MultiView:
    """iBOT's ViT-S/16 command: 10 locals, (0.25, 1) / (0.05, 0.25)."""
    return MultiView(10, (0.25, 1.0), (0.05, 0.25))


class VisslMultiCrop:
    """VISSL's ``ImgPilToMultiCrop``: every crop of the image from one transform, a list."""

    def __init__(self, counts: list[int], sizes: list[int], scales: list[tuple[float, float]]):
        self.crops = [
            T.RandomResizedCrop(size, scale=scale)  # torchvision's default: bilinear
            for count, size, scale in zip(counts, sizes, scales, strict=True)
            for _ in range(count)
        ]

    def __call__(self, image: Image.Image) -> list[Image.Image]:
        return [crop(image) for crop in self.crops]


class OnAllViews:
    """VISSL's ``SSLTransformsWrapper``: one per-image transform applied to every view."""

    def __init__(self, transform: Any) -> None:
        self.transform = transform

    def __call__(self, images: list[Any]) -> list[Any]:
        return [self.transform(image) for image in images]


class VisslBlur:
    """VISSL's ``ImgPilGaussianBlur``: ``np.random.rand() <= p``, PIL's filter."""

    def __init__(self, p: float, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.prob, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, image: Image.Image) -> Image.Image:
        if np.random.rand() <= self.prob:
            radius = self.radius_min + np.random.rand() * (self.radius_max - self.radius_min)
            return image.filter(ImageFilter.GaussianBlur(radius=radius))
        return image


def vissl(n_local: int = 8, interpolation: bool = False) -> T.Compose:
    """VISSL's multi-crop config at DINOv2's scales: list-wide flip, colour, blur, normalise.

    ``interpolation``: VISSL leaves the crop at bilinear; True sets bicubic on every crop."""
    crops = VisslMultiCrop([2, n_local], [GLOBAL, LOCAL], [(0.32, 1.0), (0.05, 0.32)])
    if interpolation:
        for crop in crops.crops:
            crop.interpolation = T.InterpolationMode.BICUBIC
    colour = T.Compose(
        [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8), T.RandomGrayscale(p=0.2)]
    )
    return T.Compose(
        [
            crops,
            OnAllViews(T.RandomHorizontalFlip()),
            OnAllViews(colour),
            OnAllViews(VisslBlur(0.5)),
            OnAllViews(T.ToTensor()),
            OnAllViews(T.Normalize(MEAN, STD)),
        ]
    )


class HandCrop:
    """A random resized crop written by hand: torchvision's draw, its functional resize."""

    def __init__(self, size: int, scale: tuple[float, float], interpolation: Any) -> None:
        self.size, self.scale, self.interpolation = size, scale, interpolation

    def __call__(self, image: Image.Image) -> Image.Image:
        top, left, h, w = T.RandomResizedCrop.get_params(image, self.scale, (3 / 4, 4 / 3))
        return TF.resized_crop(image, top, left, h, w, [self.size, self.size], self.interpolation)


class EnhanceJitter:
    """Colour jitter on PIL's ``ImageEnhance``: factors drawn uniformly, in random order."""

    def __init__(self, strength: tuple[float, float, float, float], p: float = 0.8) -> None:
        self.brightness, self.contrast, self.saturation, self.hue = strength
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if random.random() >= self.p:
            return image
        steps = [self._brightness, self._contrast, self._saturation, self._hue]
        random.shuffle(steps)
        for step in steps:
            image = step(image)
        return image

    def _factor(self, strength: float) -> float:
        return random.uniform(max(0.0, 1 - strength), 1 + strength)

    def _brightness(self, image: Image.Image) -> Image.Image:
        return ImageEnhance.Brightness(image).enhance(self._factor(self.brightness))

    def _contrast(self, image: Image.Image) -> Image.Image:
        return ImageEnhance.Contrast(image).enhance(self._factor(self.contrast))

    def _saturation(self, image: Image.Image) -> Image.Image:
        return ImageEnhance.Color(image).enhance(self._factor(self.saturation))

    def _hue(self, image: Image.Image) -> Image.Image:
        hue, saturation, value = image.convert("HSV").split()
        shift = int(random.uniform(-self.hue, self.hue) * 255)
        hue = hue.point(lambda v: (v + shift) % 256)
        return Image.merge("HSV", (hue, saturation, value)).convert("RGB")


def with_step(pipeline: MultiView, position: int, make: Any) -> MultiView:
    """``pipeline`` with step ``position`` of every view replaced by ``make(old step)``."""
    for transform in pipeline.transforms[:2]:
        transform.transforms[position] = make(transform.transforms[position])
    local = pipeline.transforms[2]  # the locals share one Compose
    local.transforms[position] = make(local.transforms[position])
    return pipeline
