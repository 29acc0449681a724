"""What an unknown step did to an image, told from the image before and after.

A step of a ``Compose`` whose class dinodiag does not know (DINO v1's own ``GaussianBlur``
and ``Solarization`` classes, a lambda, a user's jitter) is judged from its effect by
:func:`judge_step`. Whether it ran is read from the objects: hand-written PIL transforms
return their input object when they skip (``if random.random() > p: return img``) and a
new image when they apply, whatever the pixels. What it did is recognised only where the
change says so reliably, in this order:

- nothing visible (a blur on a flat region): the class name decides, if it names an
  operation (``GaussianBlur`` -> blur), else "ran, no visible change";
- horizontal / vertical flip: the output is the mirrored input, pixel for pixel;
- grayscale: the output's channels are equal and the input's were not;
- solarize: every pixel at or above one threshold is inverted, every other one kept;
- Gaussian blur: a Gaussian of some sigma (fitted) turns the input into the output;
- colour jitter: a per-pixel colour map (pixels of one colour stay of one colour) that
  changes brightness, contrast, saturation or hue (each factor estimated from the change,
  :func:`jitter_estimates`; also for a class named as a jitter);
- otherwise "changed the image in a way dinodiag cannot tell".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

# Words in a class name that say which operation a step is (checked in this order).
NAME_HINTS = (
    ("solar", "solarize"),
    ("blur", "blur"),
    ("gray", "grayscale"),
    ("grey", "grayscale"),
    ("jitter", "jitter"),
    ("color", "jitter"),
    ("colour", "jitter"),
    ("flip", "flip"),
)
_LUMA = np.array([0.299, 0.587, 0.114])
_FIT_SIDE = 96  # the blur is fitted on a central patch this big (plus a margin)


@dataclass
class Effect:
    """What a step did: the operation kind, whether it applied, what could be estimated."""

    kind: str  # an OP_KINDS name of dinodiag.augment.records ("unknown" when not told)
    applied: bool | None
    params: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def name_hint(name: str) -> str | None:
    """The operation a class name names (``GaussianBlur`` -> ``blur``), or None."""
    lowered = name.lower()
    for word, kind in NAME_HINTS:
        if word in lowered:
            return kind
    return None


def as_array(image: Any) -> tuple[np.ndarray, float] | None:
    """``(H, W, C)`` float64 array and its full-scale value (255 or 1), or None if not an image."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float64), 255.0
    if isinstance(image, torch.Tensor) and image.ndim == 3 and image.shape[0] in (1, 3):
        array = image.detach().cpu().to(torch.float64).permute(1, 2, 0).numpy()
        return array, 255.0 if image.dtype == torch.uint8 else 1.0
    return None


def judge_step(name: str, before: Any, after: Any) -> Effect:
    """What the step called ``name`` did when it turned ``before`` into ``after``."""
    hint = name_hint(name)
    if after is before:
        return Effect(hint or "unknown", False, note="returned its input: not applied")
    if isinstance(after, torch.Tensor) and isinstance(before, Image.Image):
        return Effect("to_tensor", True, note="turned the PIL image into a tensor")
    pair = as_array(before), as_array(after)
    if pair[0] is None or pair[1] is None:
        return Effect(hint or "unknown", True, note=f"returned a {type(after).__name__}")
    (x, full), (y, full_after) = pair
    if x.shape != y.shape or full != full_after:
        if x.shape[:2] != y.shape[:2]:
            size = {"from": (x.shape[1], x.shape[0]), "to": (y.shape[1], y.shape[0])}
            return Effect("resize", True, size, note="changed the image size")
        return Effect(hint or "unknown", True, note="changed the image type or channels")
    x, y = x / full, y / full
    tol = 0.6 / 255 if full == 255.0 else 1e-5
    change = np.abs(y - x)
    if change.max() <= tol:
        if hint is not None:
            return Effect(hint, True, note="ran, no visible change (flat image or tiny effect)")
        return Effect("unknown", True, note="ran, no visible change")
    return _recognise(x, y, tol, hint, float(change.mean()))


def _recognise(x: np.ndarray, y: np.ndarray, tol: float, hint: str | None, change: float) -> Effect:
    """``x`` -> ``y`` (``(H, W, C)`` in [0, 1] units, visibly different): what it was.

    The exact tests (flip, grayscale, solarize) win over the class name; where only an
    estimate is left (a blur fit, a colour change), the class name wins when it names an
    operation: a blur of sigma 0.1 changes a few grey levels, which no fit tells reliably.
    """
    if np.abs(y - x[:, ::-1]).max() <= 2 * tol:
        return Effect("flip", True, {"direction": "horizontal"})
    if np.abs(y - x[::-1]).max() <= 2 * tol:
        return Effect("other", True, {"direction": "vertical"}, note="vertical flip")
    if x.shape[2] == 3:
        spread_after = np.abs(np.diff(y, axis=2)).max()
        if spread_after <= 2 * tol and np.abs(np.diff(x, axis=2)).max() > 4 * tol:
            return Effect("grayscale", True)
    threshold = _solarize_threshold(x, y, tol)
    if threshold is not None:
        return Effect("solarize", True, {"threshold": threshold[1], "threshold_range": threshold})
    sigma, residual = fit_blur(x, y)
    blurred = residual <= 0.35 * change and not _brighter_edges(x, y)
    if blurred and hint in (None, "blur"):
        return Effect("blur", True, {"sigma": round(sigma, 2)}, note="sigma fitted to the change")
    colour_map = (
        hint in (None, "jitter") and x.shape[2] == 3 and not _sharper(x, y) and _pointwise(x, y)
    )
    if colour_map:
        estimates = jitter_estimates(x, y)
        moved = [k for k, v in estimates.items() if abs(v - (0.0 if k == "hue" else 1.0)) > 0.01]
        if moved or hint == "jitter":
            return Effect("jitter", True, estimates, note="factors estimated from the change")
    if hint is not None:
        fitted = f"; the change fits a Gaussian blur of sigma {sigma:.2g}" if blurred else ""
        return Effect(hint, True, note=f"kind from the class name{fitted}")
    return Effect("unknown", None, note="changed the image in a way dinodiag cannot tell")


def _solarize_threshold(x: np.ndarray, y: np.ndarray, tol: float) -> tuple[float, float] | None:
    """The threshold's range ``(low, high)`` in 0..255 units if ``y`` is ``x`` with every value
    at or above one threshold inverted: above the highest value kept, at most the lowest
    value inverted (an image without a pixel at the threshold cannot pin it closer)."""
    # Within ``tol`` (under one grey level on 8-bit images): with a looser test 127 -> 128
    # and 128 -> 127 would read as both kept and inverted, and PIL's threshold 128 as 129.
    inverted = np.abs(y - (1.0 - x)) <= tol
    kept = np.abs(y - x) <= tol
    if (inverted | kept).mean() < 0.999:
        return None
    only_inverted, only_kept = inverted & ~kept, kept & ~inverted
    if not only_inverted.any():
        return None
    high = float(x[only_inverted].min())
    above = x >= high - tol
    if inverted[above].mean() < 0.999 or ((~above).any() and kept[~above].mean() < 0.999):
        return None
    below = x[only_kept & ~above]
    low = float(below.max()) + 1 / 255 if below.size else 0.0
    return round(low * 255), round(high * 255)


def gaussian(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``(H, W, C)`` with reflect padding (torchvision's kernel,
    radius ``ceil(3 sigma)``), as shifted sums: a few milliseconds on a 128 px patch."""
    radius = min(max(1, math.ceil(3 * sigma)), image.shape[0] - 1, image.shape[1] - 1)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(image.dtype)
    out = image
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = image.shape[axis]
        window = [slice(None)] * 3
        window[axis] = slice(0, length)
        total = kernel[0] * padded[tuple(window)]
        for i in range(1, 2 * radius + 1):
            window[axis] = slice(i, i + length)
            total += kernel[i] * padded[tuple(window)]
        out = total
    return out


def fit_blur(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``(sigma, mean abs residual)`` of the Gaussian that best turns ``x`` into ``y``.

    Fitted on a central patch (a margin keeps the patch's own border out of the
    comparison) by golden-section search on log sigma in [0.1, 5].
    """
    height, width = x.shape[:2]
    margin = 16
    top, left = (
        max(0, (height - _FIT_SIDE) // 2 - margin),
        max(0, (width - _FIT_SIDE) // 2 - margin),
    )
    source = x[top : top + _FIT_SIDE + 2 * margin, left : left + _FIT_SIDE + 2 * margin]
    target = y[top : top + _FIT_SIDE + 2 * margin, left : left + _FIT_SIDE + 2 * margin]
    if min(source.shape[:2]) < 3:
        return 0.0, math.inf
    source, target = source.astype(np.float32), target.astype(np.float32)
    inner: tuple[slice, ...] = (slice(margin, -margin), slice(margin, -margin))
    if min(source.shape[:2]) <= 2 * margin + 4:
        inner = (slice(None), slice(None))

    def residual(log_sigma: float) -> float:
        blurred = gaussian(source, math.exp(log_sigma))
        return float(np.abs(blurred[inner] - target[inner]).mean())

    lo, hi = math.log(0.1), math.log(5.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = residual(a), residual(b)
    for _ in range(10):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = residual(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = residual(b)
    best = a if fa < fb else b
    return math.exp(best), min(fa, fb)


def _edge_energy(a: np.ndarray) -> float:
    return float((np.diff(a, axis=0) ** 2).mean() + (np.diff(a, axis=1) ** 2).mean())


def _brighter_edges(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether the change added high-frequency energy (sharpening), which no blur does."""
    return _edge_energy(y) > _edge_energy(x) * 1.01


def _sharper(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether edges grew relative to the image's spread: sharpening, not a colour map
    (which scales edges and spread alike, or flattens both where it clips)."""
    spread_x, spread_y = float(x.var()), float(y.var())
    if spread_x <= 1e-12 or spread_y <= 1e-12:
        return False
    return _edge_energy(y) / spread_y > 1.15 * _edge_energy(x) / spread_x


def _pointwise(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether ``y`` is (nearly) a function of the colour of ``x`` at the same pixel.

    Pixels are grouped by their input colour (5 bits per channel); within a group a
    per-pixel colour map gives nearly one output colour, a spatial filter does not.
    """
    keys = (np.clip(x, 0, 1) * 31.999).astype(np.int64)
    key = (keys[..., 0] * 32 + keys[..., 1]) * 32 + keys[..., 2]
    flat_key, flat_y = key.ravel(), y.reshape(-1, y.shape[2])
    counts = np.bincount(flat_key, minlength=32**3)
    total = float(flat_y.var(axis=0).sum())
    if total <= 1e-12:
        return True
    within = 0.0
    for channel in range(flat_y.shape[1]):
        sums = np.bincount(flat_key, weights=flat_y[:, channel], minlength=32**3)
        squares = np.bincount(flat_key, weights=flat_y[:, channel] ** 2, minlength=32**3)
        used = counts > 0
        within += float(
            (squares[used] - sums[used] ** 2 / counts[used]).sum() / max(1, flat_key.size)
        )
    return within / total < 0.05


def _hue(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hue in [0, 1) and chroma of ``(H, W, 3)`` RGB in [0, 1]."""
    high, low = a.max(axis=2), a.min(axis=2)
    chroma = high - low
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    hue = np.where(
        high == r, ((g - b) / safe) % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4)
    )
    return (hue / 6.0) % 1.0, chroma


def jitter_estimates(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Brightness, contrast and saturation factors and the hue shift that turn ``x`` into ``y``.

    Colour jitter's three factors scale the image's mean (brightness), its luminance spread
    (brightness and contrast) and its distance to grey (all three), in any order; so the
    brightness factor is the ratio of the means, the contrast factor the ratio of the
    luminance spreads over it, the saturation factor the ratio of the distances to grey over
    the spreads'. The hue shift is the chroma-weighted circular mean of the hue change.
    Estimates: clipping at black and white pulls strong factors towards 1.
    """
    lum_x, lum_y = x @ _LUMA, y @ _LUMA
    brightness = float(y.mean() / max(x.mean(), 1e-6))
    spread = float(lum_y.std() / max(lum_x.std(), 1e-6))
    grey = float(
        np.abs(y - lum_y[..., None]).mean() / max(np.abs(x - lum_x[..., None]).mean(), 1e-6)
    )
    estimates = {
        "brightness": brightness,
        "contrast": spread / max(brightness, 1e-6),
        "saturation": grey / max(spread, 1e-6),
    }
    hue_x, chroma_x = _hue(x)
    hue_y, chroma_y = _hue(y)
    weight = np.minimum(chroma_x, chroma_y)
    if weight.sum() > 1e-6:
        angle = 2 * np.pi * (hue_y - hue_x)
        shift = math.atan2(
            float((np.sin(angle) * weight).sum()), float((np.cos(angle) * weight).sum())
        )
        estimates["hue"] = shift / (2 * np.pi)
    return {k: round(v, 3) for k, v in estimates.items()}
