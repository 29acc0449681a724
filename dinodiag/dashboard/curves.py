"""Training curves: the panels of the training page, EMA smoothing, x by step / epoch / time,
long-format frames (one row per point) for ``st.line_chart`` or Altair, several runs overlaid.

    frame = rundir.read_metrics("runs/demo")                       # metrics.jsonl rows
    long = long_frame({"demo": frame}, PANELS["loss"], smoothing=0.6)
    chart = curve_chart(long, x="step", log_y=True)                 # altair.Chart

Input frames are :func:`dinodiag.train.rundir.read_metrics` frames (``kind``, ``step``,
``epoch``, ``time`` and one column per logged value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

X_AXES = {"step": "step", "epoch": "epoch", "time": "minutes"}  # choice -> frame column
X_TITLES = {"step": "step", "epoch": "epoch", "time": "wall time (min)"}


@dataclass(frozen=True)
class Panel:
    """One chart of the training page."""

    key: str  # identifier ("loss")
    title: str  # chart title
    columns: tuple[str, ...]  # metrics columns drawn as lines
    kind: str  # metrics row kind the columns come from: "train" or "eval"
    log_allowed: bool  # the "log scale for losses" switch applies to it
    separate: bool  # values of very different sizes: one small chart per column
    help: str  # what to look for (shown under the chart)


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
            False,
            False,
            "Dashed: step 0, the random-weights baseline. A learning run climbs "
            "above it; the seed's broken pipeline stayed near it.",
        ),
        Panel(
            "entropy",
            "Teacher entropy against ln K",
            ("teacher_entropy", "teacher_batch_entropy"),
            "train",
            False,
            False,
            "Per-image entropy near ln K (dashed) = uniform collapse; batch-mean entropy "
            "near 0 = every image on one prototype (one-hot collapse).",
        ),
        Panel(
            "features",
            "Features: spread and effective rank",
            ("feature_std", "effective_rank", "prototypes_used"),
            "train",
            False,
            True,
            "Feature std and effective rank falling towards 0 / 1 mean the features "
            "collapse to a point; few prototypes used means the head collapses.",
        ),
        Panel(
            "schedules",
            "Schedules: lr, weight decay, teacher momentum and temperature",
            ("lr", "wd", "momentum", "teacher_temp"),
            "train",
            False,
            True,
            "lr: warm-up then cosine decay; teacher momentum: cosine rise to its final value; "
            "teacher temperature: warm-up to its final value (flat when it starts there).",
        ),
        Panel(
            "speed",
            "Throughput and memory",
            ("img_per_s", "peak_mem_mb"),
            "train",
            False,
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


# The metrics a user can overlay in the comparison, by label -> (column, the panel it is on).
OVERLAY_METRICS = {
    (f"k-NN {LABELS[c]}" if c.startswith("knn") else LABELS.get(c, c)): (c, p)
    for p in PANELS.values()
    for c in p.columns
}


def overlay_panel(label: str) -> Panel:
    """A one-metric panel for an :data:`OVERLAY_METRICS` label. It keeps its panel's key for
    k-NN top-1 and the per-image entropy, so that their reference lines are drawn (the step-0
    baseline, ln K)."""
    column, panel = OVERLAY_METRICS[label]
    key = panel.key if column in ("knn_top1", "teacher_entropy") else column
    return Panel(key, label, (column,), panel.kind, panel.log_allowed, False, "")


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
    very smooth). NaN points stay NaN and do not enter the average."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight {weight} must be in [0, 1).")
    raw = np.asarray(values, dtype=float)
    out = np.full_like(raw, np.nan)
    last, count = 0.0, 0
    for i, value in enumerate(raw):
        if not math.isfinite(value):
            continue
        last = last * weight + (1.0 - weight) * value
        count += 1
        out[i] = last / (1.0 - weight**count) if weight > 0 else value
    return out


def with_x(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a ``minutes`` column (``time`` is seconds since the start)."""
    frame = frame.copy()
    frame["minutes"] = pd.to_numeric(frame.get("time"), errors="coerce") / 60.0
    return frame


def long_frame(
    runs: Mapping[str, pd.DataFrame],
    panel: Panel | Sequence[str],
    *,
    x: str = "step",
    smoothing: float = 0.0,
    kind: str | None = None,
) -> pd.DataFrame:
    """One row per point: ``x`` (step / epoch / minutes), ``value`` (smoothed), ``raw``,
    ``metric`` (label), ``run`` and ``series`` (the legend: the metric, prefixed with the
    run when several runs are drawn, only the run for a single metric). Rows without the
    value are dropped."""
    columns = panel.columns if isinstance(panel, Panel) else tuple(panel)
    kind = kind or (panel.kind if isinstance(panel, Panel) else "train")
    xcol = X_AXES[x]
    parts = []
    for run, frame in runs.items():
        if frame is None or frame.empty or "kind" not in frame:
            continue
        rows = with_x(frame[frame["kind"] == kind])
        for column in columns:
            if column not in rows:
                continue
            part = rows[[xcol, column]].rename(columns={xcol: "x", column: "raw"})
            part["raw"] = pd.to_numeric(part["raw"], errors="coerce")
            part = part.dropna().sort_values("x", kind="stable")
            if part.empty:
                continue
            value = ema(part["raw"].to_numpy(), smoothing) if smoothing else part["raw"].to_numpy()
            # 6 significant digits: float noise on a constant (0.04 vs 0.04000000001) is not
            # drawn as a zigzag.
            part["value"] = [float(f"{v:.6g}") for v in value]
            part["metric"] = LABELS.get(column, column)
            part["column"] = column
            part["run"] = run
            parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["x", "raw", "value", "metric", "column", "run", "series"])
    out = pd.concat(parts, ignore_index=True)
    if len(runs) == 1:
        out["series"] = out["metric"]
    elif len(columns) == 1:
        out["series"] = out["run"]
    else:
        out["series"] = out["run"] + " · " + out["metric"]
    return out


def baselines(runs: Mapping[str, pd.DataFrame], column: str = "knn_top1") -> pd.DataFrame:
    """The step-0 value of ``column`` per run (the random-weights k-NN baseline):
    columns ``value``, ``run``, ``label``."""
    rows = []
    for run, frame in runs.items():
        if frame is None or frame.empty or column not in frame:
            continue
        first = frame[(frame["kind"] == "eval") & (frame["step"] == 0)][column].dropna()
        if len(first):
            label = f"step 0 ({LABELS.get(column, column)})"
            if len(runs) > 1:
                label = f"{run}: step 0"
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
    which: Panel, runs: Mapping[str, pd.DataFrame], num_prototypes: Mapping[str, int]
) -> pd.DataFrame | None:
    """The dashed lines a panel draws: the step-0 k-NN baseline of each run on the k-NN
    panel, ln K on the entropy panel (see :func:`overlay_panel`); None on the others."""
    if which.key == "knn":
        return baselines(runs)
    if which.key == "entropy":
        return ln_k_lines(num_prototypes)
    return None


def positive_only(long: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows that a log scale can show, and how many were dropped (KoLeo can be < 0)."""
    keep = long["value"] > 0
    return long[keep], int((~keep).sum())


def curve_chart(
    long: pd.DataFrame,
    *,
    x: str = "step",
    log_y: bool = False,
    rules: pd.DataFrame | None = None,
    height: int = 260,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> Any:
    """An Altair line chart of a :func:`long_frame` (colour = series, tooltip with the raw
    value), with dashed horizontal ``rules`` (``value``, ``label``) such as ln K or the
    step-0 k-NN. ``colors`` maps series to colours (e.g. broken red, fixed green)."""
    import altair as alt

    y_scale = alt.Scale(type="log") if log_y else alt.Scale(zero=False)
    order = list(dict.fromkeys(long["series"]))
    palette = {}
    if colors and set(order) <= set(colors):
        palette = {"scale": alt.Scale(domain=order, range=[colors[s] for s in order])}
    base = alt.Chart(long).encode(
        x=alt.X("x:Q", title=X_TITLES[x]),
        y=alt.Y("value:Q", title=None, scale=y_scale),
        color=alt.Color(
            "series:N",
            title=None,
            sort=order,
            legend=alt.Legend(orient="bottom", columns=3, labelLimit=0),
            **palette,
        ),
        tooltip=[
            alt.Tooltip("series:N", title="series"),
            alt.Tooltip("x:Q", title=X_TITLES[x]),
            alt.Tooltip("raw:Q", title="value", format=".4g"),
        ],
    )
    layers = [base.mark_line(point=len(long) < 40, strokeWidth=2)]
    if rules is not None and not rules.empty:
        rule = alt.Chart(rules).encode(
            y="value:Q", tooltip=["label:N", alt.Tooltip("value:Q", format=".3g")]
        )
        layers.append(rule.mark_rule(strokeDash=[6, 4], color="#666"))
        layers.append(
            rule.mark_text(align="left", dx=4, dy=-6, color="#666").encode(
                text="label:N", x=alt.value(0)
            )
        )
    chart = alt.layer(*layers).properties(height=height)
    return chart.properties(title=title) if title else chart


def small_multiples(
    long: pd.DataFrame, *, x: str = "step", width: int = 210, columns: int = 4
) -> Any:
    """One small chart per metric with its own y scale (lr and momentum differ 1000-fold)."""
    import altair as alt

    several = long["run"].nunique() > 1
    base = alt.Chart(long).encode(
        x=alt.X("x:Q", title=X_TITLES[x]),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=".4~g")),
        color=alt.Color(
            "run:N", title=None, legend=alt.Legend(orient="bottom") if several else None
        ),
        tooltip=["run:N", "metric:N", alt.Tooltip("raw:Q", title="value", format=".4g")],
    )
    return (
        base.mark_line(strokeWidth=2)
        .properties(width=width, height=150)
        .facet(
            facet=alt.Facet("metric:N", title=None, sort=list(dict.fromkeys(long["metric"]))),
            columns=columns,
        )
        .resolve_scale(y="independent")
    )
