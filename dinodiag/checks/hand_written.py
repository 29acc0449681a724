"""Strengths of hand-written steps, measured from their effect, judged against the recipe.

A hand-written solarize, blur or colour jitter hands dinodiag no settings: its strengths are
read from the pixels (:mod:`dinodiag.probe.effects`) and judged here with the tolerance an
estimate needs. Solarize thresholds are exact on 8-bit images (a range where no pixel sat at
the threshold); a fitted blur sigma is within ~20% on a clean image; jitter factors are
estimated from the change of mean, luminance spread and distance to grey, which clipping at
black and white pulls towards 1, so jitter is judged by the median change over the views.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dinodiag.stats.strength_ranges import expected_range


def threshold_255(value: float) -> float:
    """A solarize threshold in 0..255 units (a threshold <= 1 applies to [0, 1] tensors)."""
    return value * 255 if value <= 1.0 else value


def threshold_ranges(exact: set[Any], measured: set[Any]) -> tuple[list[tuple[float, float]], bool]:
    """Solarize thresholds as ``(low, high)`` ranges in 0..255 units, and whether the measured
    ones vary between draws: the ones torchvision was given (a single value each), then the
    tightest range consistent with every measured draw, or, when no single threshold fits
    them all (a threshold drawn at random), the span of the draws."""
    ranges = sorted({(threshold_255(float(v)),) * 2 for v in exact if v is not None})
    draws = [v for v in measured if isinstance(v, tuple)]
    if not draws:
        return ranges, False
    low = max(float(v[0]) for v in draws)
    high = min(float(v[1]) for v in draws)
    if low <= high:
        return [*ranges, (low, high)], False
    span = (min(float(v[0]) for v in draws), max(float(v[1]) for v in draws))
    return [*ranges, span], True


def threshold_problem(
    settings: dict[tuple[str, str], set[Any]], kind: str, want: float, measured: dict[str, str]
) -> str | None:
    """What is wrong with the solarize thresholds of view ``kind`` (given or measured from
    the pixels), or None; records what was seen in ``measured``."""
    exact = settings.get((kind, "threshold"), set())
    ranges, varies = threshold_ranges(exact, settings.get((kind, "threshold_range"), set()))
    if not ranges:
        return None
    shown = [f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}" for lo, hi in ranges]
    measured[f"{kind}.solarize_threshold"] = ", ".join(shown) + (
        " (varies between draws)" if varies else ""
    )
    if varies:
        lo, hi = ranges[-1]
        return (
            f"varies between draws, from about {lo:g} to {hi:g} (a threshold drawn at random); "
            f"the recipe fixes it at {want:g}"
        )
    off = [i for i, r in enumerate(ranges) if not r[0] - 0.5 <= want <= r[1] + 0.5]
    return f"{shown[off[0]]}, the recipe uses {want:g}" if off else None


# A fitted blur sigma is an estimate (within ~20% on a clean image): a hand-written blur is
# judged off only when more than this share of its fitted sigmas lie beyond the recipe's
# range widened by FITTED_SIGMA_SLACK each way.
FITTED_SIGMA_OUTSIDE = 0.25
FITTED_SIGMA_SLACK = 1.5


def fitted_sigma_problem(fitted: set[Any], want: tuple[float, float]) -> str | None:
    values = sorted(float(v) for v in fitted)
    if len(values) < 4:
        return None  # too few fits to judge an estimate
    lo, hi = want[0] / FITTED_SIGMA_SLACK, want[1] * FITTED_SIGMA_SLACK
    outside = [v for v in values if not lo <= v <= hi]
    if len(outside) <= FITTED_SIGMA_OUTSIDE * len(values):
        return None
    return (
        f"fitted {values[0]:.2g}-{values[-1]:.2g}: {len(outside)} of {len(values)} distinct "
        f"fitted values lie outside {lo:.2g}-{hi:.2g} (the recipe's ({want[0]:.3g}, "
        f"{want[1]:.3g}) with a margin for the fit)"
    )


# A hand-written jitter factor is judged by the median of |estimate - neutral| over the views
# (neutral: 1, hue 0) against the median of |factor - neutral| the recipe's range gives (0.2 for
# brightness 0.4): stronger beyond JITTER_STRONGER times it plus the estimate's noise, weaker
# under JITTER_WEAKER times it. Measured on 32 / 16 px views of the test images: faithful
# (0.4, 0.4, 0.2, 0.1) reads 0.8-1.4 times the recipe's; twice the strength 1.5-6 times (contrast
# 1.3: clipping); a quarter of it 0.2-0.3 times.
JITTER_STRONGER = 1.3
JITTER_WEAKER = 0.5
JITTER_NOISE = {"brightness": 0.03, "contrast": 0.03, "saturation": 0.03, "hue": 0.01}
JITTER_MIN_VIEWS = 8  # fewer estimates than this: not judged


def median_distance(low: float, high: float, neutral: float) -> float:
    """Median of ``|f - neutral|`` for ``f`` uniform in ``[low, high]`` (``neutral`` inside)."""
    total = high - low
    if total <= 0:
        return abs(low - neutral)
    near = min(neutral - low, high - neutral)  # both sides hold values up to this distance
    if 2 * near >= 0.5 * total:
        return total / 4
    return near + (0.5 * total - 2 * near)


def jitter_estimate_findings(part: pd.DataFrame, recipe: Any) -> tuple[dict[str, str], list[str]]:
    """``(measured, problems)`` of a hand-written jitter's estimated factors in the rows
    ``part`` of one view kind (columns ``brightness_estimate`` ...) against ``recipe``."""
    measured: dict[str, str] = {}
    found: dict[str, list[str]] = {}  # "stronger than" / "weaker than" -> factors
    counts: list[int] = []
    for factor, noise in JITTER_NOISE.items():
        column = f"{factor}_estimate"
        if column not in part:
            continue
        values = pd.to_numeric(part[column], errors="coerce").dropna().to_numpy()
        if values.size == 0:
            continue
        neutral = 0.0 if factor == "hue" else 1.0
        low, high = expected_range(recipe, factor)
        change = float(np.median(np.abs(values - neutral)))
        want = median_distance(low, high, neutral)
        measured[f"{factor}_estimate"] = (
            f"median change {change:.2g} over {values.size} views "
            f"({values.min():.2g} to {values.max():.2g})"
        )
        if values.size < JITTER_MIN_VIEWS or recipe.jitter_p <= 0:
            continue
        if change > JITTER_STRONGER * want + noise:
            verdict = "stronger than"
        elif change < JITTER_WEAKER * want:
            verdict = "weaker than"
        else:
            continue
        counts.append(int(values.size))
        found.setdefault(verdict, []).append(
            f"{factor} {change:.2g} (the recipe's ({low:g}, {high:g}): {want:.2g})"
        )
    problems = [
        f"hand-written jitter {verdict} the recipe (median change of each factor estimated from "
        f"its effect, over up to {max(counts)} views): {', '.join(factors)}"
        for verdict, factors in found.items()
    ]
    return measured, problems
