"""Sampled statistics against ranges: the configured and reference ranges of crop scale
and aspect ratio, the crops outside the reference's range (one computation, one tolerance,
for the histograms' notes and the text under them), and the image-size scatter.

Input frames come from :func:`dinodiag.stats.sample_views` (one row per view). The scatter is
matplotlib with the Agg backend only (``Figure`` objects, no pyplot): any thread can draw it,
:func:`dinodiag.dashboard.crop_pictures.png_bytes` turns it into PNG. The histograms are
:mod:`dinodiag.dashboard.stats_histograms`, the photometric rates
:mod:`dinodiag.dashboard.stats_rates` (interactive Altair charts, as the training curves).

Example::

    frame = sample_views(pipeline, dataset, 500)
    reference = config_ranges(cfg)
    outside = outside_shares({"dinov2": frame}, reference)
    lines = outside_lines(outside, "dinov2")
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dinodiag.augment.config import PipelineConfig

SERIES_COLOURS = ("#1f77b4", "#d95f02")  # first / second pipeline (>= 3:1 on white)


def config_ranges(config: PipelineConfig | None) -> dict[str, tuple[float, float]]:
    """The ranges :func:`stats_figure` shades: ``{"global", "local", "ratio"}`` (empty for None)."""
    if config is None:
        return {}
    ranges = {"global": config.global_crops_scale, "ratio": config.crop_ratio}
    if config.local_crops_number > 0:
        ranges["local"] = config.local_crops_scale
    return ranges


def recorded_ranges(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """The configured scale ranges your own pipeline's recorded RandomResizedCrop calls
    carry (``configured_scale_min`` / ``_max`` of :func:`dinodiag.stats.sample_views`): per
    group, when all its crops share one range."""
    ranges = {}
    for group in ("global", "local"):
        rows = frame[frame["group"] == group] if "group" in frame else frame.iloc[:0]
        if "configured_scale_min" not in rows:
            continue
        pairs = rows[["configured_scale_min", "configured_scale_max"]].dropna().drop_duplicates()
        if len(pairs) == 1:
            ranges[group] = (float(pairs.iloc[0, 0]), float(pairs.iloc[0, 1]))
    return ranges


def outside_share(
    values: np.ndarray, bounds: tuple[float, float], slack: np.ndarray | float = 0.0
) -> tuple[float, float]:
    """Fractions of the finite ``values`` below and above ``bounds`` (NaN, NaN when none),
    each value allowed ``slack`` (per value or one for all) beyond the bounds."""
    below, above, n = _outside_counts(values, bounds, slack)
    return (below / n, above / n) if n else (math.nan, math.nan)


def _outside_counts(
    values: np.ndarray, bounds: tuple[float, float], slack: np.ndarray | float
) -> tuple[int, int, int]:
    slack = np.broadcast_to(np.asarray(slack, dtype=float), values.shape)
    keep = np.isfinite(values)
    values, slack = values[keep], np.nan_to_num(slack[keep])
    tolerance = 1e-9 + slack  # a crop drawn exactly at the bound is inside
    low, high = bounds
    return (
        int(np.sum(values < low - tolerance)),
        int(np.sum(values > high + tolerance)),
        values.size,
    )


def rounding_slack(rows: pd.DataFrame, column: str) -> np.ndarray | float:
    """How far a crop's ``scale`` or ``ratio`` can sit past its drawn range only because
    RandomResizedCrop rounds the box sides to whole pixels (each side moves by up to half a
    pixel): a crop of a pipeline whose range equals the reference's is never "outside" it
    (a 1.335 box of a 4/3 range is inside). 0 when the frame has no box sizes. The one
    tolerance of :func:`outside_shares`, which the charts and the text both read."""
    if not {"box_w", "box_h"} <= set(rows):
        return 0.0
    w, h = rows["box_w"].to_numpy(dtype=float), rows["box_h"].to_numpy(dtype=float)
    if column == "ratio":  # w / h with w and h each off by 0.5 px
        return rows["ratio"].to_numpy(dtype=float) * (0.5 / w + 0.5 / h)
    if column == "scale" and {"source_w", "source_h"} <= set(rows):
        area = rows["source_w"].to_numpy(dtype=float) * rows["source_h"].to_numpy(dtype=float)
        return (0.5 * (w + h) + 0.25) / area
    return 0.0


# (group, column, what a crop of it is called, range key of config_ranges)
OUTSIDE_MEASURES = (
    ("global", "scale", "global crops", "global"),
    ("local", "scale", "local crops", "local"),
    (None, "ratio", "crops", "ratio"),
)


def share_text(count: int, total: int) -> str:
    """``11%``; ``<1%`` for a share that rounds to 0 but is not 0 (3 of 1,000)."""
    share = count / total if total else 0.0
    return "<1%" if 0 < share < 0.005 else f"{share:.0%}"


@dataclass(frozen=True)
class Outside:
    """How many of one pipeline's crops fall outside the reference's range on one measure."""

    pipeline: str
    key: str  # the range's key in config_ranges: "global", "local" or "ratio"
    what: str  # "global crops"
    measure: str  # "scale" or "aspect ratio"
    bounds: tuple[float, float]  # the reference's range
    below: int  # crops below the range (beyond the pixel-rounding tolerance)
    above: int
    total: int  # crops measured

    def words(self) -> str:
        """``11% below 0.32 and <1% above 1``, or ``all inside``."""
        parts = [f"{share_text(self.below, self.total)} below {self.bounds[0]:.3g}"]
        parts = parts if self.below else []
        if self.above:
            parts.append(f"{share_text(self.above, self.total)} above {self.bounds[1]:.3g}")
        return " and ".join(parts) if parts else "all inside"


def outside_shares(
    frames: Mapping[str, pd.DataFrame], reference: Mapping[str, tuple[float, float]]
) -> list[Outside]:
    """Per measure (:data:`OUTSIDE_MEASURES`) and pipeline, the crops outside the
    ``reference`` ranges, each allowed its :func:`rounding_slack`. The histograms' notes and
    :func:`outside_lines` both read this list: one computation, one tolerance."""
    found = []
    for group, column, what, key in OUTSIDE_MEASURES:
        bounds = reference.get(key)
        if bounds is None:
            continue
        for label, frame in frames.items():
            part = frame if group is None else frame[frame["group"] == group]
            if column not in part or not len(part):
                continue
            values = part[column].to_numpy(dtype=float)
            below, above, total = _outside_counts(values, bounds, rounding_slack(part, column))
            if total:
                measure = "aspect ratio" if column == "ratio" else "scale"
                found.append(Outside(label, key, what, measure, bounds, below, above, total))
    return found


def outside_lines(outside: Sequence[Outside], name: str) -> list[str]:
    """One sentence per pipeline and measure of :func:`outside_shares`:
    ``**dinov2**: 11% below 0.32 (global crops, scale; dinov2's range 0.32–1)``."""
    return [
        f"**{o.pipeline}**: {o.words()} ({o.what}, {o.measure}; {name}'s range "
        f"{o.bounds[0]:.3g}–{o.bounds[1]:.3g})"
        for o in outside
    ]


def crop_sides(config: PipelineConfig | None, frame: pd.DataFrame) -> tuple[int, int | None]:
    """``(global side, local side)`` of the output crops: the config's (no local side when
    it has no local crops), or for your own pipeline the widest global and local views
    sampled (None for a group it does not produce)."""
    if config is not None:
        local = config.local_crops_size if config.local_crops_number else None
        return config.global_crops_size, local

    def widest(group: str) -> int | None:
        sides = pd.to_numeric(frame[frame["group"] == group]["out_w"], errors="coerce").dropna()
        return int(sides.max()) if len(sides) else None

    return widest("global") or 0, widest("local")


def image_size_figure(
    sizes: Sequence[tuple[int, int]], global_size: int | None, local_size: int | None
) -> Figure:
    """Scatter of the dataset's image sizes (width x height) against the crop sizes."""
    fig = Figure(figsize=(5.2, 4.0), layout="constrained")
    ax = fig.subplots()
    if sizes:
        array = np.asarray(sizes, dtype=float)
        ax.scatter(
            array[:, 0], array[:, 1], s=14, alpha=0.6, color=SERIES_COLOURS[0], label="images"
        )
        top = float(array.max()) * 1.15
    else:
        top = 1.0
    for size, name, style in ((global_size, "global crop", "-"), (local_size, "local crop", ":")):
        if size:
            ax.axvline(
                size, color="#e8112d", linestyle=style, linewidth=1.2, label=f"{name} {size} px"
            )
            ax.axhline(size, color="#e8112d", linestyle=style, linewidth=1.2)
            top = max(top, size * 1.3)
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("image width (px)")
    ax.set_ylabel("image height (px)")
    ax.set_title("Image sizes vs crop sizes", fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    return fig
