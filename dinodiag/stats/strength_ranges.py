"""The ranges of the drawn strengths (jitter factors, blur sigma, solarize threshold) per view
kind against the ranges a recipe draws them in: :func:`strengths`, :func:`expected_range`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.stats.frames import KINDS, recipe_for

# (column, recipe field that bounds it): the strengths :func:`strengths` reports.
STRENGTHS = (
    ("brightness", "brightness"),
    ("contrast", "contrast"),
    ("saturation", "saturation"),
    ("hue", "hue"),
    ("blur_sigma", "blur_sigma"),
    ("solarize_threshold", "solarize_threshold"),
)


def expected_range(recipe: ViewAugment, column: str) -> tuple[float, float]:
    """The range a strength is drawn in under ``recipe`` (a threshold: one value)."""
    if column in ("brightness", "contrast", "saturation"):
        strength = getattr(recipe, column)
        return max(0.0, 1.0 - strength), 1.0 + strength
    if column == "hue":
        return -recipe.hue, recipe.hue
    if column == "blur_sigma":
        return tuple(recipe.blur_sigma)  # type: ignore[return-value]
    return float(recipe.solarize_threshold), float(recipe.solarize_threshold)


def strengths(frame: pd.DataFrame, expect: PipelineConfig | None = None) -> pd.DataFrame:
    """Per view kind, the range of each drawn strength (jitter factors, blur sigma, solarize
    threshold) over the views where the operation applied, against ``expect``'s range;
    ``inside`` says whether every drawn value lies in it."""
    rows = []
    for kind in KINDS:
        part = frame[frame["kind"] == kind] if len(frame) else frame
        for column, _ in STRENGTHS:
            if part.empty or column not in part:
                continue
            values = pd.to_numeric(part[column], errors="coerce").dropna()
            if values.empty:
                continue
            low, high = float(values.min()), float(values.max())
            row: dict[str, Any] = {"kind": kind, "strength": column, "n": int(values.size)}
            row.update(min=low, max=high, expected="", inside=None)
            if expect is not None:
                lo, hi = expected_range(recipe_for(expect, kind), column)
                slack = 1e-6 + 1e-3 * max(abs(lo), abs(hi))
                row["expected"] = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
                row["inside"] = bool(lo - slack <= low and high <= hi + slack)
            rows.append(row)
    columns = ["kind", "strength", "n", "min", "max", "expected", "inside"]
    return pd.DataFrame(rows, columns=columns)
