"""The seed write-up's pipelines written the way a user would, with torchvision.

Try them with dinodiag's bring-your-own support::

    python -m dinodiag check --pipeline examples/seed_pipeline.py:build_two_view_augment \
        --pipeline-kwargs '{"img_size": 96}'
    python -m dinodiag check --pipeline examples/seed_pipeline.py:build_multicrop_augment \
        --pipeline-kwargs '{"img_size": 96}'
"""

from __future__ import annotations

import torchvision.transforms as T
from PIL import ImageFilter

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomBlur:
    """Gaussian blur with sigma uniform in (0.1, 2.0), applied with probability p."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, img):
        import random

        if random.random() < self.p:
            return img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))
        return img


def _view(size: int, scale: tuple[float, float], blur_p: float, solarize_p: float) -> T.Compose:
    return T.Compose(
        [
            T.RandomResizedCrop(size, scale=scale, interpolation=T.InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
            RandomBlur(blur_p),
            T.RandomSolarize(128, p=solarize_p),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class TwoViews:
    def __init__(self, img_size: int, scale: tuple[float, float]) -> None:
        self.first = _view(img_size, scale, 1.0, 0.0)
        self.second = _view(img_size, scale, 0.1, 0.2)

    def __call__(self, img):
        return [self.first(img), self.second(img)]


def build_two_view_augment(img_size: int = 96) -> TwoViews:
    """The broken pipeline: two views, global scale (0.2, 1.0), no local crops."""
    return TwoViews(img_size, (0.2, 1.0))


class MultiCrop:
    def __init__(self, img_size: int, num_local_crops: int, local_size: int = 96) -> None:
        self.global1 = _view(img_size, (0.4, 1.0), 1.0, 0.0)
        self.global2 = _view(img_size, (0.4, 1.0), 0.1, 0.2)
        self.local = _view(local_size, (0.05, 0.4), 0.5, 0.0)
        self.num_local_crops = num_local_crops

    def __call__(self, img):
        return {
            "global_crops": [self.global1(img), self.global2(img)],
            "local_crops": [self.local(img) for _ in range(self.num_local_crops)],
        }


def build_multicrop_augment(
    img_size: int = 96, num_local_crops: int = 8, local_size: int = 96
) -> MultiCrop:
    """The write-up's "fixed" pipeline: 2 globals (0.4, 1.0) + 96 px locals (0.05, 0.4).

    The write-up's locals are 96 px whatever the globals; ``local_size`` makes them smaller,
    e.g. 16 px beside 32 px globals for a short run on a CPU."""
    return MultiCrop(img_size, num_local_crops, local_size)
