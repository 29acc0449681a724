"""Training curves as data: the panels of the training page, EMA smoothing, x by step /
epoch / relative or wall time, long-format frames (one row per point), reference lines.

    frame = rundir.read_metrics("runs/demo")                       # metrics.jsonl rows
    long = long_frame({"demo": frame}, PANELS["loss"], smoothing=0.6)

Input frames are :func:`dinodiag.rundir.read_metrics` frames (``kind``, ``step``,
``epoch``, ``time`` and one column per logged value). What a chart draws of them (thinned,
never the data), its hover table and its export are in :mod:`dinodiag.dashboard.curve_points`;
the Altair charts in :mod:`dinodiag.dashboard.curve_charts`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dinodiag.dashboard.run_names import short_names

# x axis choice -> (axis title, what it is). "relative" is the time since the run started,
# "wall" the clock time (the run's start + relative), as TensorBoard's RELATIVE and WALL.
X_AXES = {"step": "step", "epoch": "epoch", "relative": "relative time", "wall": "wall time"}
X_TITLES = {
    "step": "step",
    "epoch": "epoch",
    "relative": "relative time (min)",
    "wall": "wall time",
}
KNN_COLUMNS = ("knn_top1", "knn_top5")  # k-NN rows carry ``n_test``, their held-out images
LONG_COLUMNS = ["x", "seconds", "raw", "value", "metric", "column", "run", "name", "series"]


@dataclass(frozen=True)
class Panel:
    """One chart of the training page."""

    key: str  # identifier ("loss")
    title: str  # chart title
    columns: tuple[str, ...]  # metrics columns drawn as lines
    kind: str  # metrics row kind the columns come from: "train" or "eval"
    log_allowed: bool  # the log-scale switch applies to it
    separate: bool  # values of very different sizes: one small chart per column
    help: str  # what to look for (shown under the chart)
    smooth: bool = True  # False: drawn as logged whatever the smoothing (schedules, k-NN)


PANELS: dict[str, Panel] = {
    p.key: p
    for p in (
        Panel(
            "loss",
            "Loss: total and each term",
            ("loss", "dino_loss", "ibot_loss", "koleo_loss"),
            "train",
            True,
            False,
            "The DINO term should fall below ln K; flat at ln K is a uniform collapse.",
        ),
        Panel(
            "knn",
            "k-NN accuracy on held-out images (%)",
            ("knn_top1", "knn_top5"),
            "eval",
            True,
            False,
            "Dashed: step 0, the random-weights baseline. A learning run climbs "
            "above it; one that stays near it is not learning.",
            smooth=False,
        ),
        Panel(
            "entropy",
            "Teacher entropy against ln K",
            ("teacher_entropy", "teacher_batch_entropy"),
            "train",
            True,
            False,
            "Per-image entropy near ln K (dashed) = uniform collapse; batch-mean entropy "
            "near 0 = every image on one prototype (one-hot collapse).",
        ),
        Panel(
            "features",
            "Features: spread and effective rank",
            ("feature_std", "effective_rank", "prototypes_used"),
            "train",
            True,
            True,
            "Feature std and effective rank falling towards 0 / 1 mean the features "
            "collapse to a point; few prototypes used means the head collapses.",
        ),
        Panel(
            "schedules",
            "Schedules: lr, weight decay, teacher momentum and temperature",
            ("lr", "wd", "momentum", "teacher_temp"),
            "train",
            True,
            True,
            "lr: warm-up then cosine decay; teacher momentum: cosine rise to its final value; "
            "teacher temperature: warm-up to its final value (flat when it starts there). "
            "Never smoothed: a schedule is drawn as it was applied.",
            smooth=False,
        ),
        Panel(
            "speed",
            "Throughput and memory",
            ("img_per_s", "peak_mem_mb"),
            "train",
            True,
            True,
            "Images per second and peak memory (GPU allocator or CPU resident set).",
        ),
    )
}

LABELS = {
    "loss": "total loss",
    "dino_loss": "DINO",
    "ibot_loss": "iBOT",
    "koleo_loss": "KoLeo",
    "knn_top1": "top-1",
    "knn_top5": "top-5",
    "teacher_entropy": "per-image entropy",
    "teacher_batch_entropy": "batch-mean entropy",
    "feature_std": "feature std",
    "effective_rank": "effective rank",
    "prototypes_used": "prototypes used",
    "lr": "learning rate",
    "wd": "weight decay",
    "momentum": "teacher momentum",
    "teacher_temp": "teacher temperature",
    "img_per_s": "images / s",
    "peak_mem_mb": "peak memory (MiB)",
}
SCHEDULE_COLUMNS = frozenset(PANELS["schedules"].columns)  # never smoothed, on any panel


# The metrics a user can overlay in the comparison, by label -> (column, the panel it is on).
OVERLAY_METRICS = {
    (f"k-NN {LABELS[c]}" if c.startswith("knn") else LABELS.get(c, c)): (c, p)
    for p in PANELS.values()
    for c in p.columns
}


def overlay_panel(label: str) -> Panel:
    """A one-metric panel for an :data:`OVERLAY_METRICS` label. It keeps its panel's key for
    k-NN top-1 and the per-image entropy, so that their reference lines are drawn (the step-0
    baseline, ln K), and its panel's smoothing rule (a schedule is never smoothed)."""
    column, panel = OVERLAY_METRICS[label]
    key = panel.key if column in ("knn_top1", "teacher_entropy") else column
    return Panel(key, label, (column,), panel.kind, panel.log_allowed, False, "", panel.smooth)


def prototypes(configs: Mapping[str, Mapping[str, Any] | None]) -> dict[str, int]:
    """K (``model.num_prototypes``) per run from its resolved config, for the ln K line."""
    out = {}
    for run, config in configs.items():
        k = ((config or {}).get("model") or {}).get("num_prototypes")
        if isinstance(k, int):
            out[run] = k
    return out


def ema(values: Sequence[float] | np.ndarray | pd.Series, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: a debiased exponential moving average (weight 0 = raw, 0.99 =
    very smooth), ``sum w^(t-k) v_k / sum w^(t-k)`` over the points so far. NaN and inf
    points stay as they are and do not enter the average (a NaN loss is still shown)."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight} must be in [0, 1).")
    raw = np.asarray(values, dtype=float)
    out = raw.copy()
    finite = np.isfinite(raw)
    if weight > 0 and finite.any():
        # pandas' adjust=True mean is exactly the debiased form, in C (100k points: ~2 ms).
        out[finite] = pd.Series(raw[finite]).ewm(alpha=1.0 - weight, adjust=True).mean()
    return out


def significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (0, NaN and inf kept)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values) & (values != 0)
    out = values.copy()
    magnitude = np.floor(np.log10(np.abs(values[finite])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[finite] = np.round(values[finite] * scale) / scale
    return out


def _x_values(rows: pd.DataFrame, x: str, start: float | None) -> pd.Series | None:
    """The x of every row for axis ``x`` (None: this run has no such axis, e.g. no start)."""
    seconds = pd.to_numeric(rows.get("time"), errors="coerce")
    if x in ("step", "epoch"):
        return pd.to_numeric(rows.get(x), errors="coerce") if x in rows else None
    if x == "relative":
        return seconds / 60.0
    if start is None or not math.isfinite(start):
        return None
    return pd.to_datetime(start + seconds, unit="s", utc=True)


def wall_starts(
    runs: Mapping[str, pd.DataFrame], started: Mapping[str, float | None]
) -> dict[str, float]:
    """The unix time each run's clock (``time``) counts from, for wall-time axes.

    A run directory records the start of its latest session (``status.json`` ``started``)
    and a ``resumed`` event at the time the clock had then: rows of that session sit at
    ``started + time - resumed``. Earlier sessions are placed just before it (their own
    start is not recorded), so a gap between sessions is not drawn.
    """
    out = {}
    for run, frame in runs.items():
        start = started.get(run)
        if start is None or frame is None or not math.isfinite(start):
            continue
        offset = 0.0
        if "code" in frame:
            resumed = frame[(frame["kind"] == "event") & (frame["code"] == "resumed")]
            times = pd.to_numeric(resumed.get("time"), errors="coerce").dropna()
            offset = float(times.iloc[-1]) if len(times) else 0.0
        out[run] = float(start) - offset
    return out


#: Loss terms a run can switch off (weight 0, no patch tokens): logged as 0 at every step then,
#: and left out of the drawing instead of a flat line at 0 (``attrs["off"]`` names them).
SWITCHABLE_TERMS = ("ibot_loss", "koleo_loss")


def long_frame(
    runs: Mapping[str, pd.DataFrame],
    panel: Panel | Sequence[str],
    *,
    x: str = "step",
    smoothing: float = 0.0,
    kind: str | None = None,
    starts: Mapping[str, float | None] | None = None,
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per point: ``x`` (step / epoch / minutes since the start / a UTC timestamp),
    ``seconds`` (since the start), ``value`` (smoothed unless the panel or column is never
    smoothed), ``raw``, ``metric`` (label), ``column``, ``run`` (its id), ``name`` (its
    short name, :func:`~dinodiag.dashboard.run_names.short_names` unless ``names`` says)
    and ``series`` (the metric, prefixed with the run when several runs are drawn, only the
    run for a single metric). k-NN rows also carry ``n_test``, the held-out images of that
    evaluation (NaN when not recorded). Rows without the value are dropped; NaN / inf are kept.

    ``starts``: the unix start time of each run, for ``x="wall"``; runs without one are left
    out and listed in ``frame.attrs["no_x"]``. A :data:`SWITCHABLE_TERMS` term that is 0 at
    every step of a run is off there: left out, its label in ``frame.attrs["off"]``.
    """
    columns = panel.columns if isinstance(panel, Panel) else tuple(panel)
    kind = kind or (panel.kind if isinstance(panel, Panel) else "train")
    smooth = panel.smooth if isinstance(panel, Panel) else True
    if x not in X_AXES:
        raise ValueError(f"x axis {x!r}: one of {', '.join(X_AXES)}.")
    names = {**short_names(runs), **(names or {})}
    parts, no_x, off = [], [], []
    for run, frame in runs.items():
        if frame is None or frame.empty or "kind" not in frame:
            continue
        rows = frame[frame["kind"] == kind]
        xs = _x_values(rows, x, (starts or {}).get(run))
        if xs is None:
            no_x.append(run)
            continue
        seconds = pd.to_numeric(rows.get("time"), errors="coerce")
        for column in columns:
            if column not in rows:
                continue
            part = pd.DataFrame(
                {
                    "x": xs,
                    "seconds": seconds if seconds is not None else np.nan,
                    "raw": pd.to_numeric(rows[column], errors="coerce"),
                }
            )
            if column in KNN_COLUMNS and "knn_test" in rows:  # its noise: binomial on these
                part["n_test"] = pd.to_numeric(rows["knn_test"], errors="coerce")
            part = part[part["x"].notna() & part["raw"].notna()].sort_values("x", kind="stable")
            if part.empty:
                continue
            if column in SWITCHABLE_TERMS and (part["raw"] == 0).all():
                off.append(LABELS.get(column, column))  # the term is off in this run
                continue
            weight = smoothing if smooth and column not in SCHEDULE_COLUMNS else 0.0
            value = ema(part["raw"].to_numpy(), weight) if weight else part["raw"].to_numpy()
            # 6 significant digits: float noise on a constant (0.04 vs 0.04000000001) is not
            # drawn as a zigzag.
            part["value"] = significant(value, 6)
            part["metric"] = LABELS.get(column, column)
            part["column"] = column
            part["run"] = run
            part["name"] = names.get(run, run)
            parts.append(part)
    if not parts:
        out = pd.DataFrame(columns=LONG_COLUMNS)
    else:
        out = pd.concat(parts, ignore_index=True)
        if len(runs) == 1:
            out["series"] = out["metric"]
        elif len(columns) == 1:
            out["series"] = out["run"]
        else:
            out["series"] = out["run"] + " · " + out["metric"]
    out.attrs["no_x"] = no_x
    out.attrs["off"] = list(dict.fromkeys(off))
    return out


# ------------------------------------------------------------------------------ lines


def positive_only(long: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows that a log scale can show, and how many were dropped (KoLeo can be < 0)."""
    keep = (long["value"] > 0) & (long["raw"] > 0)
    return long[keep], int((~keep).sum())


def baselines(
    runs: Mapping[str, pd.DataFrame],
    column: str = "knn_top1",
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The step-0 value of ``column`` per run (the random-weights k-NN baseline):
    columns ``value``, ``run``, ``label`` (with the run's short name when several runs)."""
    names = {**short_names(runs), **(names or {})}
    rows = []
    for run, frame in runs.items():
        if frame is None or frame.empty or column not in frame:
            continue
        first = frame[(frame["kind"] == "eval") & (frame["step"] == 0)][column].dropna()
        if len(first):
            label = f"step 0 ({LABELS.get(column, column)})"
            if len(runs) > 1:
                label = f"{names.get(run, run)}: step 0"
            rows.append({"value": float(first.iloc[0]), "run": run, "label": label})
    frame = pd.DataFrame(rows, columns=["value", "run", "label"])
    if frame["value"].duplicated().any():  # same seed, same start: one line says it
        frame = frame.drop_duplicates("value").assign(label="step 0 (random weights)")
    return frame


def ln_k_lines(num_prototypes: Mapping[str, int]) -> pd.DataFrame:
    """ln K per run (the entropy of a uniform teacher): columns ``value``, ``run``, ``label``."""
    rows = [
        {"value": math.log(k), "run": run, "label": f"ln K = ln {k}"}
        for run, k in num_prototypes.items()
        if k and k > 1
    ]
    return pd.DataFrame(rows, columns=["value", "run", "label"]).drop_duplicates("value")


def reference_lines(
    which: Panel,
    runs: Mapping[str, pd.DataFrame],
    num_prototypes: Mapping[str, int],
    names: Mapping[str, str] | None = None,
) -> pd.DataFrame | None:
    """The dashed lines a panel draws: the step-0 k-NN baseline of each run on the k-NN
    panel, ln K on the entropy panel (see :func:`overlay_panel`); None on the others."""
    if which.key == "knn":
        return baselines(runs, names=names)
    if which.key == "entropy":
        return ln_k_lines(num_prototypes)
    return None
