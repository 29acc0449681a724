"""How far a k-NN accuracy can be trusted: its chance spread on the held-out images, an
interval, and whether a change between two evaluations is beyond that spread.

A top-1 accuracy measured on ``n`` held-out images is a binomial proportion: on 4 images it
moves in steps of 25 points, on 200 its standard deviation at 50% is 3.5 points. Every place
that shows a k-NN number (the CLI, Your run, the training page's tiles and charts, Yours vs
reference) reads it through this module, so one rule decides what is noise:

- :func:`knn_noise`: the binomial standard deviation in points;
- :func:`knn_interval`: a 95% Wilson score interval (never outside 0-100, sane at 0 or n hits);
- :func:`judge_change`: a change ``end - start`` is ``up`` / ``down`` only beyond
  :data:`CLEAR` x its noise (about 95%), ``noise`` within it, ``too_few`` when the test set
  cannot resolve :data:`RESOLVE_POINTS` (fewer than :func:`min_test_images` images);
- :func:`axis_span`: the narrowest k-NN axis a chart may zoom to (the noise band).

    judge_change(14.0, 14.2, 1000).status      # "noise": 0.2 points, noise +-3.1
    knn_interval(42.0, 500)                    # (37.8, 46.4)
    min_test_images()                          # 200: resolves a 10-point change at 50%
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959964  # two-sided 95% normal quantile
CLEAR = 2.0  # a change is clear beyond CLEAR x its noise (about 95%)
RESOLVE_POINTS = 10.0  # a test set must resolve a change this large (points) to judge a run


def knn_noise(top1: float, n_test: int | None) -> float | None:
    """Chance spread of a k-NN top-1 (in points) measured on ``n_test`` held-out images: the
    binomial standard deviation ``100 sqrt(p (1 - p) / n)`` (2.2 points at 40% on 500 images),
    with p kept at least 1/n from 0 and 1 (a 0% on 10 images is not exact). None when the test
    size is unknown."""
    if not n_test or n_test < 1:
        return None
    p = min(max(top1 / 100.0, 1.0 / n_test), 1.0 - 1.0 / n_test) if n_test > 1 else 0.5
    return 100.0 * math.sqrt(p * (1.0 - p) / n_test)


def gain_noise(start: float, end: float, n_test: int | None) -> float | None:
    """Chance spread (points) of a gain ``end - start`` of two k-NN measurements on the same
    ``n_test`` images, taken as independent (a gain under twice this is not a result)."""
    a, b = knn_noise(start, n_test), knn_noise(end, n_test)
    return None if a is None or b is None else math.sqrt(a * a + b * b)


def knn_interval(top1: float, n_test: int | None, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval (points) of a top-1 of ``top1`` % on ``n_test`` images; None
    when the test size is unknown. ``knn_interval(75.0, 4)`` is (30.1, 95.4): 4 images say
    almost nothing."""
    if not n_test or n_test < 1:
        return None
    p = min(max(top1 / 100.0, 0.0), 1.0)
    n = float(n_test)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if p == 0.0 else max(0.0, centre - half)  # exact at the ends (no rounding dust)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return 100.0 * low, 100.0 * high


def min_test_images(resolve: float = RESOLVE_POINTS, clear: float = CLEAR) -> int:
    """Held-out images needed for a change of ``resolve`` points to be clear (beyond ``clear``
    x its noise) at the worst case, 50% accuracy: 200 for 10 points."""
    return math.ceil(2 * clear * clear * 2500.0 / (resolve * resolve))


def resolvable_points(n_test: int | None, clear: float = CLEAR) -> float | None:
    """The smallest change (points) that ``n_test`` images resolve at 50% accuracy."""
    if not n_test or n_test < 1:
        return None
    return clear * math.sqrt(2 * 2500.0 / n_test)


@dataclass(frozen=True)
class KnnChange:
    """A k-NN change between two evaluations on the same held-out images, judged."""

    start: float  # top-1 % at the first evaluation (step 0: the random-weights baseline)
    end: float  # top-1 % at the last
    n_test: int | None  # held-out images both were measured on
    noise: float | None  # chance spread of the change (points; None: unknown test size)
    status: str  # "up" | "down" | "noise" | "too_few" | "unknown"

    @property
    def gain(self) -> float:
        return self.end - self.start

    @property
    def threshold(self) -> float | None:
        """The change that is clear (points): :data:`CLEAR` x the noise."""
        return None if self.noise is None else CLEAR * self.noise

    @property
    def is_clear(self) -> bool:
        return self.status in ("up", "down")

    def describe(self) -> str:
        """``+12.4 points, beyond the noise of +-4.4 on 500 test images`` and the like."""
        gain = f"{self.gain:+.1f} points"
        if self.status == "unknown":
            return f"{gain} (test size unknown: its noise cannot be told)"
        images = f"{self.n_test} test images"
        if self.status == "too_few":
            return (
                f"{gain} on {images}: too few test images to judge (a change needs "
                f"{min_test_images()}+ images to resolve {RESOLVE_POINTS:.0f} points)"
            )
        noise = f"±{self.threshold:.1f}"
        if self.status == "noise":
            return f"{gain}, within the noise of {noise} on {images}"
        return f"{gain}, beyond the noise of {noise} on {images}"


def judge_change(start: float, end: float, n_test: int | None) -> KnnChange:
    """Judge ``end - start`` against its chance spread on ``n_test`` images (see the module)."""
    noise = gain_noise(start, end, n_test)
    if noise is None:
        status = "unknown"
    elif n_test is not None and n_test < min_test_images():
        status = "too_few"
    elif abs(end - start) <= CLEAR * noise:
        status = "noise"
    else:
        status = "up" if end > start else "down"
    return KnnChange(start, end, n_test, noise, status)


def axis_span(values: list[float], n_test: int | None, floor: float = 1.0) -> tuple[float, float]:
    """The y range (points) a k-NN chart shows for ``values``: their range widened to at least
    the 95% interval of their mean on ``n_test`` images (at least ``floor`` points when the test
    size is unknown), centred, inside 0-100. A single value or values within the noise never
    fill the chart."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return 0.0, 100.0
    low, high = min(finite), max(finite)
    mid = (low + high) / 2
    noise = knn_noise(mid, n_test)
    half_min = max(floor / 2, Z95 * noise if noise is not None else floor / 2)
    half = max((high - low) / 2, half_min)
    low, high = mid - half, mid + half
    if low < 0:
        low, high = 0.0, min(100.0, high - low)
    if high > 100:
        low, high = max(0.0, low - (high - 100)), 100.0
    return low, high
