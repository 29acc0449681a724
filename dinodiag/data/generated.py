"""A synthetic labelled dataset: textured shapes, so training and k-NN need no data on disk.

Each class is a shape with its own fill texture (circle with horizontal stripes, square
with vertical stripes, cross with a checkerboard, ...). Classes differ by outline and
by luminance pattern, never by hue alone, so they survive the colour jitter and
grayscale of the DINO recipe. Every sample varies position, size, rotation (within
+-20 degrees, so stripe directions stay distinct), stripe period and phase, colours
(with a guaranteed luminance contrast to the background), a background gradient and
pixel noise.

Item ``i`` of a split is a pure function of ``(seed, split, i)``: the train and val
splits draw from different random streams of the same classes. Labels cycle
(``i % classes``), so every class has the same number of items (+-1). Drawing is
vectorised numpy, rendered at 2x and averaged down for smooth edges (sizes <= 128 px);
a 64 px image takes well under a millisecond.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image

from dinodiag.data.base import ImageDataset
from dinodiag.errors import DataError

# Shape name of each class, in label order; `classes=k` keeps the first k.
CLASS_NAMES = (
    "circle",  # disc, horizontal stripes
    "square",  # square, vertical stripes
    "triangle",  # triangle, solid
    "ring",  # annulus, concentric bands
    "cross",  # plus sign, checkerboard
    "diamond",  # tall rhombus, nested rhombus bands
    "star",  # five-pointed star, solid
    "hexagon",  # hexagon, dots
    "hash",  # '#' sign, solid
    "crescent",  # crescent, fine vertical stripes
)

GENERATED_SPLITS = ("train", "val")  # what split= accepts
_SPLIT_STREAM = {"train": 0, "val": 1}  # the random stream of each split
_MAX_ROTATION = math.radians(20.0)  # keeps horizontal / vertical / diagonal stripes apart
_SUPERSAMPLE_UP_TO = 128  # sizes up to this are drawn at 2x and averaged down
_MIN_PERIOD_PX = 5.0  # narrowest texture period in output pixels (stripe + gap)

_LUMA = np.array([0.299, 0.587, 0.114])  # grayscale weights (what PIL's "L" and torchvision use)
_DEFAULT_N = 2000  # training items when n is not given


@functools.lru_cache(maxsize=16)
def _axes(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1]: x of shape (1, side), y of shape (side, 1)."""
    coords = ((np.arange(side, dtype=np.float32) + 0.5) * (2.0 / side) - 1.0).astype(np.float32)
    return coords[None, :], coords[:, None]


# --------------------------------------------------------------------------- shapes
# Each takes shape-frame coordinates u, v (radius 1 = the shape's size; v points down)
# of shape (side, side) and returns the inside mask (side, side) bool.
def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u * u + v * v <= 1.0


def _square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= 0.8


def _triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Edges at distance 0.6 from the centre, apex up (circumradius 1.2).
    return (v <= 0.6) & (0.866 * u - 0.5 * v <= 0.6) & (-0.866 * u - 0.5 * v <= 0.6)


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    squared = u * u + v * v
    return (squared <= 1.0) & (squared >= 0.3)


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.32) & (av <= 0.95)) | ((av <= 0.32) & (au <= 0.95))


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) * (1.0 / 0.7) + np.abs(v) <= 1.05  # a rhombus, taller than wide


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Radius limit oscillates 5 times around the circle, one point straight up.
    theta = np.arctan2(v, u)
    limit = 0.42 + 0.63 * ((np.cos(5.0 * theta + math.pi / 2) + 1.0) * 0.5) ** 2
    return u * u + v * v <= limit * limit


def _hexagon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (
        np.maximum(np.abs(v), np.maximum(np.abs(0.866 * u + 0.5 * v), np.abs(0.866 * u - 0.5 * v)))
        <= 0.85
    )


def _hash(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    au, av = np.abs(u), np.abs(v)
    return ((np.abs(au - 0.4) <= 0.14) & (av <= 0.95)) | ((np.abs(av - 0.4) <= 0.14) & (au <= 0.95))


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    shifted = u - 0.5
    return (u * u + v * v <= 1.0) & (shifted * shifted + v * v > 0.4)


# ------------------------------------------------------------------------- textures
# Each returns where the second colour goes, (side, side) bool, or None for a solid fill.
# ``period`` is in shape units (about 6-8 stripes across a shape); ``phase`` in [0, 1).
def _solid(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray | None:
    return None


def _horizontal(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    return (v * (1.0 / period) + phase) % 1.0 < 0.5


def _vertical(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    return (u * (1.0 / period) + phase) % 1.0 < 0.5


def _fine_vertical(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    return _vertical(u, v, period * 0.6, phase)


def _nested(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    # Bands parallel to the rhombus outline: nested rhombi.
    return ((np.abs(u) * (1.0 / 0.7) + np.abs(v)) * (1.0 / period) + phase) % 1.0 < 0.5


def _checker(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    cell = 1.0 / (0.9 * period)
    return (np.floor(u * cell + phase) + np.floor(v * cell + phase)) % 2.0 == 0.0


def _dots(u: np.ndarray, v: np.ndarray, period: float, phase: float) -> np.ndarray:
    fu = (u * (1.0 / period) + phase) % 1.0 - 0.5
    fv = (v * (1.0 / period) + phase) % 1.0 - 0.5
    return fu * fu + fv * fv < 0.09


_RECIPES = (  # (shape, texture) per class, in CLASS_NAMES order
    (_circle, _horizontal),
    (_square, _vertical),
    (_triangle, _solid),
    (_ring, _solid),
    (_cross, _checker),
    (_diamond, _nested),
    (_star, _solid),
    (_hexagon, _dots),
    (_hash, _solid),
    (_crescent, _fine_vertical),
)


def _colour(rng: np.random.Generator, luminance: float) -> np.ndarray:
    """An RGB colour (3,) in [0, 1] around a grey ``luminance`` with a random hue."""
    chroma = rng.normal(0.0, 0.18, 3)
    chroma -= chroma @ _LUMA  # hue only: the grayscale (ITU-R 601 luma) value stays put
    return np.clip(luminance + chroma, 0.0, 1.0).astype(np.float32)


def _downsample(mask: np.ndarray, factor: int) -> np.ndarray:
    """Coverage fraction (size, size) float32 of a (size*factor, size*factor) bool mask."""
    values = mask.astype(np.float32)
    if factor == 1:
        return values
    side = mask.shape[0] // factor
    return values.reshape(side, factor, side, factor).mean(axis=(1, 3))


def draw_sample(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """One image of class ``label``: (size, size, 3) uint8, all randomness from ``rng``."""
    shape, texture = _RECIPES[label]
    factor = 2 if size <= _SUPERSAMPLE_UP_TO else 1
    x, y = _axes(size * factor)
    radius = rng.uniform(0.45, 0.75)  # shape radius as a fraction of the half-image
    margin = 1.0 - 0.75 * radius  # the centre may push the shape slightly past the border
    centre_x, centre_y = rng.uniform(-margin, margin, 2)
    angle = rng.uniform(-_MAX_ROTATION, _MAX_ROTATION)
    cos, sin = math.cos(angle) / radius, math.sin(angle) / radius
    dx, dy = x - np.float32(centre_x), y - np.float32(centre_y)  # (1, S), (S, 1)
    u = dx * np.float32(cos) + dy * np.float32(sin)  # (S, S) shape frame, S = size * factor
    v = dy * np.float32(cos) - dx * np.float32(sin)
    inside = shape(u, v)
    # Texture period in shape units, never under _MIN_PERIOD_PX pixels (no aliasing at 32 px).
    period = max(rng.uniform(0.24, 0.36), _MIN_PERIOD_PX / (radius * size / 2))
    second = texture(u, v, period, rng.uniform(0.0, 1.0))
    if second is None:
        first_weight, second_weight = _downsample(inside, factor), None
    else:
        first_weight = _downsample(inside & ~second, factor)
        second_weight = _downsample(inside & second, factor)

    # Luminance contrast of at least 0.35 between shape and background, whatever the hue.
    background_level = rng.uniform(0.05, 0.95)
    shape_level = (background_level + rng.uniform(0.35, 0.65)) % 1.0
    background = _colour(rng, background_level)
    first = _colour(rng, shape_level)
    second_colour = first + rng.uniform(0.45, 0.65) * (background - first)  # halfway to bg

    fine_x, fine_y = _axes(size)
    gradient_x, gradient_y = rng.uniform(-0.12, 0.12, 2)
    shade = (fine_x * np.float32(gradient_x) + fine_y * np.float32(gradient_y))[..., None]
    image = background + shade  # (size, size, 3)
    covered = first_weight[..., None]
    image = image * (1.0 - covered) + first * covered
    if second_weight is not None:
        covered = second_weight[..., None]
        image = image * (1.0 - covered) + second_colour.astype(np.float32) * covered
    noise = rng.standard_normal((size, size, 3), dtype=np.float32)
    image = image + noise * np.float32(rng.uniform(0.01, 0.06))
    return np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


class GeneratedDataset(ImageDataset):
    """Textured shapes, ``classes`` classes of :data:`CLASS_NAMES`; see the module docstring."""

    def __init__(
        self,
        n: int = _DEFAULT_N,
        split: str = "train",
        *,
        size: int = 64,
        classes: int = 10,
        seed: int = 0,
        val_n: int | None = None,
    ) -> None:
        if split not in GENERATED_SPLITS:
            raise DataError(
                f"split {split!r} is not available for the generated dataset: use one of "
                f"{', '.join(GENERATED_SPLITS)}"
            )
        _check_int("n", n, 1, 10_000_000, "the number of training images")
        _check_int("size", size, 8, 2048, "the image side in pixels, e.g. 32, 64 or 96")
        _check_int("classes", classes, 2, len(CLASS_NAMES), "how many shape classes to use")
        _check_int("seed", seed, 0, 2**63 - 1, "any non-negative integer")
        if val_n is not None:
            _check_int("val_n", val_n, 1, 10_000_000, "the number of validation images")
        super().__init__(f"generated ({split}, {size}px)", list(CLASS_NAMES[:classes]), split)
        self.n = n  # training items
        self.val_n = val_n if val_n is not None else max(200, n // 5)  # validation items
        self.size = size  # image side in pixels
        self.seed = seed  # with the split and the index, fixes every pixel
        self._count = n if split == "train" else self.val_n
        self._stream = _SPLIT_STREAM[split]

    def __len__(self) -> int:
        return self._count

    def label(self, index: int) -> int:
        return index % len(self.classes or ())

    def _load(self, index: int) -> tuple[Image.Image, int]:
        label = self.label(index)
        rng = np.random.default_rng([self.seed, self._stream, index])
        return Image.fromarray(draw_sample(rng, label, self.size), mode="RGB"), label

    def _size(self, index: int) -> tuple[int, int]:
        return (self.size, self.size)

    def describe(self, index: int) -> str:
        return f"generated #{index} (class {CLASS_NAMES[self.label(index)]!r})"


def _check_int(name: str, value: object, low: int, high: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"generated dataset option {name}={value!r} must be an integer ({meaning})")
    if not low <= int(value) <= high:
        raise DataError(
            f"generated dataset option {name}={value} is out of range: use {low}..{high} "
            f"({meaning})"
        )
