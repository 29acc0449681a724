"""Multi-crop pipelines written the way other self-supervised projects write them.

Written here from their documented defaults (no other repository's files):

- lightly's ``DINOTransform``: one ``Compose`` per view (crop with bicubic, flips, jitter
  in a ``RandomApply``, grayscale, lightly's own blur and solarize classes drawing with
  ``random.random() < p``), a list with the local view transform reused; 6 locals, DINO v1's
  scales (0.4, 1) / (0.05, 0.4);
- iBOT's ViT-S/16 command: 10 locals, (0.25, 1) / (0.05, 0.25), DINO v1's per-view classes.

Sizes are small (32 px globals, 16 px locals) to keep the tests fast; :data:`EXPECT` is the
dinov2 recipe at those sizes with its 8 locals.
"""

from __future__ import annotations

import random
from typing import Any

import torchvision.transforms as T
from PIL import Image, ImageFilter, ImageOps

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
