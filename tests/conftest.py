"""Shared fixtures: tiny synthetic images and datasets built in memory."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image


def make_image(width: int = 200, height: int = 150, seed: int = 0) -> Image.Image:
    """A structured RGB image: gradients plus a few coloured rectangles (not flat, not noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack(
        [x * 255 / max(1, width - 1), y * 255 / max(1, height - 1), (x + y) % 64 * 4], axis=-1
    )
    for _ in range(4):
        x0, y0 = rng.integers(0, max(1, width - 10)), rng.integers(0, max(1, height - 10))
        array[y0 : y0 + height // 4, x0 : x0 + width // 4] = rng.integers(0, 256, size=3)
    return Image.fromarray(array.astype(np.uint8), "RGB")


class ListDataset:
    """The smallest dataset the library accepts: ``len`` and ``ds[i] -> (image, label)``."""

    def __init__(self, images: list[Image.Image], name: str = "list") -> None:
        self.images = images
        self.name = name

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return self.images[index], index % 2

    def describe(self, index: int) -> str:
        return f"image #{index}"


@pytest.fixture
def image() -> Image.Image:
    return make_image()


@pytest.fixture(scope="session")
def small_dataset() -> ListDataset:
    return ListDataset([make_image(300 + 20 * i, 240 + 10 * i, seed=i) for i in range(6)])


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: max distance between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def ks_critical(n: int, m: int, alpha: float = 1e-3) -> float:
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))
