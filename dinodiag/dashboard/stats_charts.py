"""Charts of sampled statistics: histograms with the configured and reference ranges, and the
photometric rates per view against the expected recipe.

matplotlib with the Agg backend only (``Figure`` objects, no pyplot), so figures
can be drawn in any thread; :func:`dinodiag.dashboard.crop_pictures.png_bytes` turns them into PNG.
Input frames come from :func:`dinodiag.stats.sample_views` (one row per view).

Example::

    frame = sample_views(pipeline, dataset, 500)
    fig = stats_figure({"dinov2": frame}, {"dinov2": config_ranges(cfg)}, config_ranges(ref))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import FuncFormatter

from dinodiag.augment.config import PipelineConfig

SERIES_COLOURS = ("#1f77b4", "#ff7f0e")  # first / second config in comparison plots


def config_ranges(config: PipelineConfig | None) -> dict[str, tuple[float, float]]:
    """The ranges :func:`stats_figure` shades: ``{"global", "local", "ratio"}`` (empty for None)."""
    if config is None:
        return {}
    ranges = {"global": config.global_crops_scale, "ratio": config.crop_ratio}
    if config.local_crops_number > 0:
        ranges["local"] = config.local_crops_scale
    return ranges


def recorded_ranges(frame: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """The configured scale ranges a brought pipeline's recorded RandomResizedCrop calls
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
    slack = np.broadcast_to(np.asarray(slack, dtype=float), values.shape)
    keep = np.isfinite(values)
    values, slack = values[keep], np.nan_to_num(slack[keep])
    if values.size == 0:
        return math.nan, math.nan
    tolerance = 1e-9 + slack  # a crop drawn exactly at the bound is inside
    low, high = bounds
    return float(np.mean(values < low - tolerance)), float(np.mean(values > high + tolerance))


def rounding_slack(rows: pd.DataFrame, column: str) -> np.ndarray | float:
    """How far a crop's ``scale`` or ``ratio`` can sit past its drawn range only because
    RandomResizedCrop rounds the box sides to whole pixels (each side moves by up to half a
    pixel): a crop of a pipeline whose range equals the reference's is never "outside" it.
    0 when the frame has no box sizes."""
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


def outside_lines(
    frames: dict[str, pd.DataFrame], reference: dict[str, tuple[float, float]], name: str
) -> list[str]:
    """How much of each histogram falls outside the reference's range, one sentence per
    pipeline and measure: ``dinov2: 11% of global crops below 0.32 (reference 0.32–1)``."""
    lines = []
    for group, column, what, key in OUTSIDE_MEASURES:
        bounds = reference.get(key)
        if bounds is None:
            continue
        for label, frame in frames.items():
            part = frame if group is None else frame[frame["group"] == group]
            if column not in part or not len(part):
                continue
            values = part[column].to_numpy(dtype=float)
            below, above = outside_share(values, bounds, rounding_slack(part, column))
            if math.isnan(below):
                continue
            measure = "aspect ratio" if column == "ratio" else "scale"
            parts = [f"{below:.0%} below {bounds[0]:.3g}"] if below else []
            parts += [f"{above:.0%} above {bounds[1]:.3g}"] if above else []
            verdict = " and ".join(parts) if parts else "all inside"
            lines.append(
                f"**{label}**: {verdict} ({what}, {measure}; {name}'s range "
                f"{bounds[0]:.3g}–{bounds[1]:.3g})"
            )
    return lines


# (column, group, title, x label, log x): the panels of :func:`stats_figure`.
STAT_PANELS = (
    ("scale", "global", "Global crop area scale", "box area / image area", False),
    ("scale", "local", "Local crop area scale", "box area / image area", False),
    ("ratio", None, "Aspect ratio (all crops)", "box width / height (log)", True),
    (
        "upsampling",
        None,
        "Upsampling factor (all crops)",
        "output side / crop side in source px",
        True,
    ),
    ("global_iou", "global", "IoU of the two global crops", "IoU", False),
    (
        "local_coverage",
        "local",
        "Local crop covered by a global crop",
        "fraction of local area",
        False,
    ),
)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Readable ticks for a log axis spanning [lo, hi] (e.g. 0.75, 1, 1.33 or 0.5, 1, 2, 4)."""
    candidates = [
        0.1,
        0.2,
        0.25,
        0.3,
        0.5,
        0.75,
        1.0,
        1.33,
        1.5,
        2.0,
        3.0,
        4.0,
        5.0,
        8.0,
        10.0,
        20.0,
    ]
    ticks = [t for t in candidates if lo <= t <= hi]
    if len(ticks) > 6:  # thin to about 6, counting from 1 (no upsampling, a square crop)
        step = math.ceil(len(ticks) / 6)
        one = ticks.index(1.0) if 1.0 in ticks else 0
        ticks = [t for i, t in enumerate(ticks) if (i - one) % step == 0]
    return ticks or [round(lo, 2), round(hi, 2)]


def histogram(
    ax: Any,
    series: dict[str, np.ndarray],
    configured: dict[str, tuple[float, float]] | None = None,
    reference: tuple[float, float] | None = None,
    log_x: bool = False,
    bins: int = 30,
) -> None:
    """Overlaid histograms of ``series`` on a matplotlib axis, each bar the share (%) of that
    series' values in the bin (two configs with different view counts stay comparable).

    ``configured`` ranges are shaded in the colour of their series; the ``reference`` range
    is outlined with dashed black lines, and the share of each series outside it is written
    in the panel's corner.
    """
    values = [v[np.isfinite(v)] for v in series.values()]
    values = [v[v > 0] if log_x else v for v in values]
    everything = np.concatenate(values) if values else np.array([])
    if everything.size == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_yticks([])
        return
    lo, hi = float(everything.min()), float(everything.max())
    for rng in [*(configured or {}).values(), *([reference] if reference else [])]:
        lo, hi = min(lo, rng[0]), max(hi, rng[1])
    if hi <= lo:
        hi = lo + 1e-3
    edges = np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)
    for i, (label, vals) in enumerate(zip(series, values, strict=True)):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        if vals.size == 0:  # e.g. no local crops in this config
            continue
        shade = (configured or {}).get(label)
        if shade is not None:
            ax.axvspan(shade[0], shade[1], color=colour, alpha=0.12, lw=0)
        alpha = 0.75 if len(series) == 1 else 0.55
        ax.hist(
            vals,
            bins=edges,
            weights=np.full(vals.size, 100.0 / vals.size),
            color=colour,
            alpha=alpha,
            label=label,
            edgecolor="white",
            lw=0.3,
        )
    if reference is not None:
        for x in reference:
            ax.axvline(x, color="black", linestyle="--", linewidth=1.2)
        ax.plot([], [], color="black", linestyle="--", label="reference range")
        notes = []
        for i, vals in enumerate(values):
            below, above = outside_share(vals, reference)
            if vals.size and (below or above):
                text = " · ".join(
                    t
                    for t, share in ((f"{below:.0%} below", below), (f"{above:.0%} above", above))
                    if share
                )
                notes.append((text, SERIES_COLOURS[i % len(SERIES_COLOURS)]))
        for row, (text, colour) in enumerate(notes):
            ax.text(
                0.98,
                0.96 - 0.09 * row,
                f"{text} the reference",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
                color=colour,
                fontweight="bold",
            )
    if log_x:
        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        ax.set_xticks(_log_ticks(lo, hi))
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}%"))
    ax.tick_params(axis="y", labelsize=8)


def stats_figure(
    frames: dict[str, pd.DataFrame],
    configured: dict[str, dict[str, tuple[float, float]]] | None = None,
    reference: dict[str, tuple[float, float]] | None = None,
) -> Figure:
    """A 2 x 3 grid of histograms of the sampled measures (see :data:`STAT_PANELS`).

    ``frames``: label -> DataFrame from ``dinodiag.stats.sample_views`` (one or
    two configs). ``configured``: label -> {"global": (lo, hi), "local": (lo, hi),
    "ratio": (lo, hi)}. ``reference``: the same keys for the reference config.
    """
    fig = Figure(figsize=(13, 6.6), layout="constrained")
    axes = fig.subplots(2, 3)
    for ax, (column, group, title, xlabel, log_x) in zip(axes.flat, STAT_PANELS, strict=True):
        series = {}
        for label, frame in frames.items():
            part = frame if group is None else frame[frame["group"] == group]
            series[label] = part[column].to_numpy(dtype=float) if column in part else np.array([])
        key = group if column == "scale" else ("ratio" if column == "ratio" else None)
        shades = {lab: ranges[key] for lab, ranges in (configured or {}).items() if key in ranges}
        ref = (reference or {}).get(key) if key else None
        histogram(ax, series, shades or None, ref, log_x=log_x)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("share of crops", fontsize=8)
        if column == "upsampling":
            ax.axvline(1.0, color="grey", linewidth=0.8)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in axes.flat[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    for i, label in enumerate(frames):  # one swatch per shaded series, in its own colour
        if label in (configured or {}) and configured[label]:
            handles.append(Patch(color=SERIES_COLOURS[i % len(SERIES_COLOURS)], alpha=0.25))
            labels.append(f"{label}: configured range (shaded)")
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(4, len(labels)), frameon=False
    )
    return fig


def crop_sides(config: PipelineConfig | None, frame: pd.DataFrame) -> tuple[int, int | None]:
    """``(global side, local side)`` of the output crops: the config's (no local side when
    it has no local crops), or for a brought pipeline the widest global and local views
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


RATE_PANELS = (("global1", "Global view 1"), ("global2", "Global view 2"), ("local", "Local views"))
RATE_OPERATIONS = ("flip", "jitter", "grayscale", "blur", "solarize")


def rates_figure(tables: dict[str, pd.DataFrame]) -> Figure:
    """Measured application rate of each photometric operation, one panel per view kind.

    ``tables``: label -> :func:`dinodiag.stats.rates` of that pipeline (one or two). Bars
    are the measured rates; the expected rate is a black tick inside a grey band (its
    binomial interval at the count measured); a rate far outside is outlined in red.
    """
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    axes = fig.subplots(1, len(RATE_PANELS), sharey=True)
    width = 0.8 / max(1, len(tables))
    for ax, (kind, title) in zip(axes, RATE_PANELS, strict=True):
        for series, (label, table) in enumerate(tables.items()):
            part = table[(table["kind"] == kind) & table["operation"].isin(RATE_OPERATIONS)]
            for _, row in part.iterrows():
                x = (
                    RATE_OPERATIONS.index(row["operation"])
                    + (series - (len(tables) - 1) / 2) * width
                )
                far = row.get("verdict") == "far"
                ax.bar(
                    x,
                    row["measured"],
                    width=width * 0.9,
                    color=SERIES_COLOURS[series % len(SERIES_COLOURS)],
                    edgecolor="#e8112d" if far else "none",
                    linewidth=2 if far else 0,
                    label=label if row["operation"] == part["operation"].iloc[0] else None,
                )
                expected = row.get("expected", math.nan)
                if expected == expected:  # not NaN
                    low, high = row.get("low", expected), row.get("high", expected)
                    ax.add_patch(
                        Rectangle(
                            (x - width / 2, low),
                            width,
                            max(high - low, 0.004),
                            color="grey",
                            alpha=0.3,
                            lw=0,
                        )
                    )
                    ax.plot([x - width / 2, x + width / 2], [expected] * 2, color="black", lw=1.5)
        ax.set_xticks(range(len(RATE_OPERATIONS)), RATE_OPERATIONS, fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_title(title, fontsize=11)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("fraction of views")
    handles, labels = axes[0].get_legend_handles_labels()
    handles += [Patch(color="grey", alpha=0.3), Line2D([], [], color="black", lw=1.5)]
    labels += ["binomial interval of the expected rate", "expected rate"]
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return fig
