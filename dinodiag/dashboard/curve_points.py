"""What a chart draws of a :func:`~dinodiag.dashboard.curves.long_frame`: its points thinned
for drawing (LTTB for the smoothed line, min / max per bucket for the raw one: a spike
survives), never the data; the table its hover rule shows; the y range without outliers;
exactly what it shows, for CSV / JSON.

    smoothed, raw = drawing_points(long)                 # <= 1000 points per line each
    hover_frame(long, "step")                            # one row per x: every run's value
    export_frame(long, "step").to_csv(index=False)       # every point, as shown
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dinodiag.dashboard.curves import X_TITLES
from dinodiag.printable import duration
from dinodiag.train.eval.knn_noise import knn_interval

MAX_DRAWN_POINTS = 1000  # per line and layer: a 100k-point run draws as fast as a short one
HOVER_POSITIONS = 500  # x positions the hover rule snaps to, at most


def smoothed(long: pd.DataFrame) -> bool:
    """Whether smoothing moved any point (beyond the 6-digit rounding of the values)."""
    value, raw = long["value"].to_numpy(dtype=float), long["raw"].to_numpy(dtype=float)
    return not np.allclose(value, raw, rtol=1e-5, atol=0.0, equal_nan=True)


def lttb_indices(x: np.ndarray, y: np.ndarray, target: int) -> np.ndarray:
    """Indices of ``target`` points that keep the shape of the line (x, y): largest triangle
    three buckets (Steinarsson 2013). First and last points are always kept.

    x, y: (N,) with x sorted. Returns sorted indices, (min(N, target),).
    """
    n = len(x)
    if target >= n or target < 3:
        return np.arange(n) if target >= n else np.array([0, n - 1][: max(target, 1)])
    edges = np.linspace(1, n - 1, target - 1).astype(int)  # target - 2 buckets inside
    keep = np.empty(target, dtype=int)
    keep[0], keep[-1] = 0, n - 1
    chosen = 0
    for b in range(target - 2):
        lo, hi = edges[b], max(edges[b + 1], edges[b] + 1)
        nxt_lo, nxt_hi = edges[b + 1], edges[b + 2] if b + 2 < len(edges) else n
        nxt_hi = max(nxt_hi, nxt_lo + 1)
        avg_x, avg_y = x[nxt_lo:nxt_hi].mean(), y[nxt_lo:nxt_hi].mean()
        bx, by = x[lo:hi], y[lo:hi]
        area = np.abs(
            (x[chosen] - avg_x) * (by - y[chosen]) - (x[chosen] - bx) * (avg_y - y[chosen])
        )
        chosen = lo + int(np.argmax(area))
        keep[b + 1] = chosen
    return keep


def minmax_indices(y: np.ndarray, target: int) -> np.ndarray:
    """Indices of the smallest and the largest value of each of ``target // 2`` equal runs of
    points: a spike survives any downsampling (the raw envelope). Sorted, <= target."""
    n = len(y)
    if n <= target:
        return np.arange(n)
    buckets = np.array_split(np.arange(n), max(1, target // 2))
    keep = set()
    for bucket in buckets:
        values = y[bucket]
        finite = np.isfinite(values)
        if not finite.any():
            keep.add(int(bucket[0]))
            continue
        keep.add(int(bucket[np.nanargmin(np.where(finite, values, np.nan))]))
        keep.add(int(bucket[np.nanargmax(np.where(finite, values, np.nan))]))
    return np.array(sorted(keep))


def _numeric_x(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("int64").to_numpy(dtype=float)
    return values.to_numpy(dtype=float)


def drawing_points(
    long: pd.DataFrame, max_points: int = MAX_DRAWN_POINTS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(smoothed, raw)``: the rows of :func:`long_frame` a chart draws for its smoothed
    line (LTTB) and for the faint raw line (min and max per bucket), at most ``max_points``
    per series each. The data stay whole; only the drawing is thinned."""
    smooth_parts, raw_parts = [], []
    for _, part in long.groupby(["run", "column"], sort=False):
        if len(part) <= max_points:
            smooth_parts.append(part)
            raw_parts.append(part)
            continue
        x = _numeric_x(part["x"])
        value = part["value"].to_numpy(dtype=float)
        finite = np.isfinite(value)
        shape = lttb_indices(x[finite], value[finite], max_points)
        keep = np.union1d(np.flatnonzero(finite)[shape], np.flatnonzero(~finite))
        smooth_parts.append(part.iloc[keep])
        raw_parts.append(part.iloc[minmax_indices(part["raw"].to_numpy(dtype=float), max_points)])
    empty = long.iloc[:0]
    smooth = pd.concat(smooth_parts, ignore_index=True) if smooth_parts else empty
    raw = pd.concat(raw_parts, ignore_index=True) if raw_parts else empty
    return smooth, raw


def position_text(x: str, value: Any) -> str:
    """Where the pointer is, as a person reads it: ``step 1200``, ``epoch 3.25``,
    ``1 min 28 s`` (relative), ``2026-05-09 22:01:07`` (wall time, UTC)."""
    if isinstance(value, pd.Timestamp) or x == "wall":
        stamp = pd.Timestamp(value)
        return (stamp.tz_convert(None) if stamp.tzinfo else stamp).strftime("%Y-%m-%d %H:%M:%S")
    if x == "step":
        return f"step {int(value)}"
    if x == "epoch":
        return f"epoch {float(value):.2f}"
    return duration(float(value) * 60.0)


def value_text(value: float) -> str:
    """A curve value in a tooltip: 4 significant digits, NaN and inf as such."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _pair_text(value: float, raw: float) -> str:
    """``3.21 (raw 3.05)``; only the value where the two read the same; "" for no point."""
    if pd.isna(value) and pd.isna(raw):
        return ""
    shown, logged = value_text(value), value_text(raw)
    return shown if shown == logged else f"{shown} (raw {logged})"


def interval_note(top1: float, n_test: float) -> str:
    """`` (95% 32.4–41.0, 500 images)`` after a k-NN value; "" when the test size is unknown."""
    if pd.isna(n_test) or n_test < 1:
        return ""
    interval = knn_interval(float(top1), int(n_test))
    if interval is None:
        return ""
    return f" (95% {interval[0]:.1f}–{interval[1]:.1f}, {int(n_test)} images)"


def hover_frame(long: pd.DataFrame, x: str, positions: int = HOVER_POSITIONS) -> pd.DataFrame:
    """The table the hover rule shows (TensorBoard's tooltip): one row per x position (the
    union of the points' x, thinned to ``positions``), columns ``x``, ``at`` (the position
    as text) and ``s0``, ``s1`` ... one per series: ``smoothed (raw r)`` of that series at its
    last point at or before x, "–" before its first, ``ended at step 300`` past its last; a
    k-NN value with its 95% interval and test images.
    ``frame.attrs["series"]`` maps the column to its legend text (``run name · metric``)."""
    if long.empty:
        out = pd.DataFrame(columns=["x", "at"])
        out.attrs["series"] = {}
        return out
    grid = pd.Series(long["x"].drop_duplicates().sort_values(ignore_index=True))
    if len(grid) > positions:
        grid = grid.iloc[np.linspace(0, len(grid) - 1, positions).astype(int)].reset_index(
            drop=True
        )
    out = pd.DataFrame({"x": grid})
    several_metrics = long["column"].nunique() > 1
    titles: dict[str, str] = {}
    for n, (_, part) in enumerate(long.groupby(["run", "column"], sort=False)):
        name = part["name"].iloc[0]
        title = f"{name} · {part['metric'].iloc[0]}" if several_metrics else name
        part = part.sort_values("x")
        fields = ["x", "value", "raw"] + (["n_test"] if "n_test" in part else [])
        merged = pd.merge_asof(out[["x"]], part[fields], on="x", direction="backward")
        text = [_pair_text(v, r) for v, r in zip(merged["value"], merged["raw"], strict=True)]
        if "n_test" in merged:  # a k-NN: its 95% interval on its test images
            text = [
                t + interval_note(r, n) if t else t
                for t, r, n in zip(text, merged["raw"], merged["n_test"], strict=True)
            ]
        past = out["x"] > part["x"].iloc[-1]
        ended = f"ended at {position_text(x, part['x'].iloc[-1])}"
        out[f"s{n}"] = [ended if gone else (t or "–") for t, gone in zip(text, past, strict=True)]
        titles[f"s{n}"] = title
    out["at"] = [position_text(x, v) for v in out["x"]]
    out.attrs["series"] = titles
    return out


def outlier_domain(long: pd.DataFrame, share: float = 0.02) -> tuple[float, float] | None:
    """A y range that ignores the most extreme ``share`` of points at each end (TensorBoard's
    "ignore outliers in chart scaling"), padded by 5%; None when there is nothing to ignore."""
    values = pd.concat([long["value"], long["raw"]]).to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 10:
        return None
    low, high = np.quantile(values, [share, 1.0 - share])
    if high <= low:
        return None
    pad = 0.05 * (high - low)
    return float(low - pad), float(high + pad)


# The y range a chart of a metric always shows, so that an axis never zooms into noise (a
# momentum axis of 0.992000-0.992005): a schedule's whole range (lr, weight decay and the
# teacher temperature rise from 0, DINOv2's teacher momentum ends at 1), else at least
# MIN_RELATIVE_SPAN of the values' size, and for counts at least MIN_SPANS.
SCHEDULE_ENDS = {"lr": 0.0, "wd": 0.0, "teacher_temp": 0.0, "momentum": 1.0}
MIN_RELATIVE_SPAN = 0.05  # 5%: a loss flat at 3.200-3.201 reads as flat
MIN_SPANS = {"prototypes_used": 2.0, "effective_rank": 1.0, "peak_mem_mb": 16.0}


def span_floor(
    long: pd.DataFrame, domain: tuple[float, float] | None = None, log_y: bool = False
) -> tuple[float, float] | None:
    """``domain`` (or the values' own range) widened to the least span its metrics need (see
    :data:`SCHEDULE_ENDS`, :data:`MIN_RELATIVE_SPAN`, :data:`MIN_SPANS`); None when the
    values already span that much and no ``domain`` was given (the chart scales itself). A
    log axis keeps its own range (no 0 to include; the ratio is its span)."""
    values = pd.concat([long["value"], long["raw"]]).to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if log_y or values.size == 0:
        return domain
    low, high = domain if domain is not None else (float(values.min()), float(values.max()))
    columns = set(long["column"])
    for column in columns & set(SCHEDULE_ENDS):
        low, high = min(low, SCHEDULE_ENDS[column]), max(high, SCHEDULE_ENDS[column])
    size = float(np.abs(values).max())
    relative = MIN_RELATIVE_SPAN * size if columns - set(SCHEDULE_ENDS) else 0.0  # a schedule's
    need = max([relative] + [MIN_SPANS.get(c, 0.0) for c in columns])  # span is its range
    if high <= low and need == 0:
        return domain
    if high - low < need:
        middle = (low + high) / 2
        low, high = middle - need / 2, middle + need / 2
        if float(values.min()) >= 0 > low:  # a positive metric is not drawn below 0
            low, high = 0.0, need
    if domain is None and (low, high) == (float(values.min()), float(values.max())):
        return None
    return low, high


def export_frame(long: pd.DataFrame, x: str) -> pd.DataFrame:
    """Exactly what a chart shows, every point (not the thinned drawing): one row per point
    with the run's id and name, the metric, the x (named as the axis) and the time since
    the start, the drawn (smoothed) value and the raw one."""
    out = pd.DataFrame(
        {
            "run": long["run"],
            "name": long["name"],
            "metric": long["metric"],
            X_TITLES[x]: long["x"],
            "seconds": long["seconds"],
            "value": long["value"],
            "raw": long["raw"],
        }
    )
    if x == "wall":
        out[X_TITLES[x]] = pd.to_datetime(out[X_TITLES[x]]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.reset_index(drop=True)
