"""What the training page says about a run's k-NN: the tile (value, interval, delta judged
against the noise), the verdict line per run, whether runs differ beyond the noise, the noise
band and the narrowest y range of a k-NN chart.

One rule decides what is noise, :mod:`dinodiag.train.eval.knn_noise` (binomial on the held-out
images: a change counts beyond twice its spread, on at least ``min_test_images()`` images).

    knn_tile(frame)                    # Metric: "14.2%", "+0.2 vs step 0, within noise ..."
    run_verdict(frame, "demo").status  # "learning" | "falling" | "noise" | "too_few" | ...
    compare_verdicts({"a": fa, "b": fb})   # the leader against each other run
    knn_band(long)                     # long-frame rows with low / high (95% Wilson)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dinodiag.dashboard.curves import KNN_COLUMNS
from dinodiag.dashboard.labels import Metric
from dinodiag.runs.story import KnnGain, compare_gains, knn_gain
from dinodiag.train.eval.knn_noise import (
    RESOLVE_POINTS,
    KnnChange,
    axis_span,
    judge_change,
    knn_interval,
    min_test_images,
)


def knn_points(frame: pd.DataFrame) -> pd.DataFrame:
    """The k-NN evaluations of a metrics frame: ``step``, ``top1`` and ``n_test`` (held-out
    images; NaN when the run did not record it), in step order."""
    if frame is None or frame.empty or "knn_top1" not in frame or "kind" not in frame:
        return pd.DataFrame(columns=["step", "top1", "n_test"])
    evals = frame[frame["kind"] == "eval"]
    out = pd.DataFrame(
        {
            "step": pd.to_numeric(evals.get("step"), errors="coerce"),
            "top1": pd.to_numeric(evals["knn_top1"], errors="coerce"),
            "n_test": pd.to_numeric(evals.get("knn_test", np.nan), errors="coerce"),
        }
    )
    out = out[np.isfinite(out["top1"].to_numpy(dtype=float))]
    return out.sort_values("step", kind="stable").reset_index(drop=True)


def _count(value: object) -> int | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number > 0 else None


def run_change(frame: pd.DataFrame) -> KnnChange | None:
    """The k-NN change from the first evaluation (step 0, the random weights) to the last,
    judged on the last evaluation's test images; None before a second evaluation."""
    points = knn_points(frame)
    if len(points) < 2:
        return None
    last = points.iloc[-1]
    return judge_change(float(points["top1"].iloc[0]), float(last["top1"]), _count(last["n_test"]))


def tile_label(top1: float, n_test: int | None) -> str:
    """``k-NN top-1 · 95% 32.4–41.0% · 500 test images``; the bare name when the test size
    is unknown."""
    interval = knn_interval(top1, n_test)
    if interval is None:
        return "k-NN top-1"
    return f"k-NN top-1 · 95% {interval[0]:.1f}–{interval[1]:.1f}% · {n_test} test images"


def change_text(change: KnnChange) -> str:
    """The delta of the k-NN tile: ``+0.2 vs step 0, within noise ±3.1 on 1000 images``."""
    gain = f"{change.gain:+.1f} vs step 0"
    if change.status == "unknown":
        return f"{gain}, noise unknown (test size not recorded)"
    if change.status == "too_few":
        return f"{gain}: too few test images to judge ({change.n_test})"
    where = "within" if change.status == "noise" else "beyond"
    return f"{gain}, {where} noise ±{change.threshold:.1f} on {change.n_test} images"


def knn_tile(frame: pd.DataFrame) -> Metric:
    """The k-NN tile of the live view: the last top-1, its 95% interval and test images (in
    the label), and the change since step 0 coloured only when it is beyond the noise (grey
    otherwise)."""
    points = knn_points(frame)
    help_text = (
        "Held-out k-NN accuracy; step 0 is the random-weights baseline. A change counts when "
        "it is beyond twice its binomial spread on the test images, and only on "
        f"{min_test_images()}+ test images (fewer cannot resolve {RESOLVE_POINTS:.0f} points)."
    )
    if points.empty:
        return Metric("k-NN top-1", "–", help=help_text)
    last = points.iloc[-1]
    value, n_test = float(last["top1"]), _count(last["n_test"])
    label, change = tile_label(value, n_test), run_change(frame)
    if change is None:
        return Metric(label, f"{value:.1f}%", None, help_text, "off")
    colour = "normal" if change.is_clear else "off"
    return Metric(label, f"{value:.1f}%", change_text(change), help_text, colour)


@dataclass(frozen=True)
class RunVerdict:
    """What one run's k-NN says so far."""

    name: str  # the run's short name (or id)
    status: str  # "learning" | "falling" | "noise" | "too_few" | "unknown" | "pending"
    level: str  # the Streamlit box: "success", "warning" or "info"
    text: str  # one line, Markdown
    change: KnnChange | None  # None while pending


STATUS_WORDS = {"up": "learning", "down": "falling", "noise": "noise", "too_few": "too_few"}


def run_verdict(frame: pd.DataFrame, name: str) -> RunVerdict:
    """The verdict line of one run: its k-NN change since step 0 judged by
    :func:`~dinodiag.train.eval.knn_noise.judge_change`."""
    change = run_change(frame)
    if change is None:
        text = f"**{name}**: no k-NN evaluation after step 0 yet."
        return RunVerdict(name, "pending", "info", text, None)
    points = knn_points(frame)
    path = (
        f"{change.start:.1f}% → {change.end:.1f}% at step {int(points['step'].iloc[-1])}, "
        f"{len(points)} evaluations"
    )
    status = STATUS_WORDS.get(change.status, "unknown")
    if status == "learning":
        head, level = "learning", "success"
    elif status == "falling":
        head, level = "k-NN falling", "warning"
    elif status == "noise":
        head, level = "too short to judge", "info"
    elif status == "too_few":
        head, level = "too few test images", "warning"
    else:
        head, level = "noise unknown", "info"
    text = f"**{name}**: {head}: {change.describe()} ({path})."
    if status == "noise":
        text += " Train longer: a run whose k-NN stays within the noise has shown nothing yet."
    return RunVerdict(name, status, level, text, change)


@dataclass(frozen=True)
class PairVerdict:
    """Whether the run that gained most is ahead of another beyond the noise."""

    leader: str
    other: str
    outcome: str  # "ahead" | "same" | "too_short" | "too_few"
    difference: float  # leader's gain - other's gain (points)
    threshold: float  # the difference that is clear: CLEAR x its noise (points)
    text: str


def compare_verdicts(frames: Mapping[str, pd.DataFrame]) -> list[PairVerdict]:
    """The run with the largest k-NN gain against each other run (``frames`` by the name the
    page shows), with :func:`~dinodiag.runs.story.compare_gains`' rule: the difference of two
    gains must beat the noise of both last evaluations. Runs without a gain yet are left out;
    fewer than two with a gain: an empty list."""
    gains: dict[str, KnnGain] = {}
    for name, frame in frames.items():
        gain = knn_gain(frame)
        if gain is not None:
            gains[name] = gain
    if len(gains) < 2:
        return []
    leader = max(gains, key=lambda n: gains[n].gain)
    out = []
    for other, gain in gains.items():
        if other == leader:
            continue
        outcome, difference, noise = compare_gains(gains[leader], gain)
        threshold = 2.0 * noise
        if outcome == "too_short" and (gains[leader].too_few or gain.too_few):
            outcome = "too_few"
            text = (
                f"**{leader}** vs **{other}**: too few test images to judge ("
                f"{min(g.test_images or 0 for g in (gains[leader], gain))}; it takes "
                f"{min_test_images()})."
            )
        elif outcome == "too_short":
            text = (
                f"**{leader}** vs **{other}**: too short to judge: neither gain is beyond its "
                f"noise ({gains[leader].gain:+.1f} and {gain.gain:+.1f} points)."
            )
        elif outcome == "same":
            text = (
                f"**{leader}** and **{other}** learn about as much: {difference:.1f} points "
                f"apart, within the noise ±{threshold:.1f}."
            )
        else:
            outcome = "ahead"
            text = (
                f"**{leader}** learns clearly more than **{other}**: {difference:+.1f} points, "
                f"beyond the noise ±{threshold:.1f}."
            )
        out.append(PairVerdict(leader, other, outcome, difference, threshold, text))
    return out


# ------------------------------------------------------------------------- chart helpers


def is_knn(long: pd.DataFrame) -> bool:
    """Whether a long frame holds only k-NN accuracies (a band and a floor span apply)."""
    return (
        not long.empty
        and "column" in long
        and bool(long["column"].isin(KNN_COLUMNS).all())
        and "n_test" in long
    )


def knn_band(long: pd.DataFrame) -> pd.DataFrame:
    """The rows of a k-NN long frame with their 95% Wilson interval: ``low``, ``high`` (points)
    and ``n_test`` (int); rows whose test size is unknown are left out."""
    if not is_knn(long):
        return long.iloc[:0].assign(low=[], high=[])
    rows = long[pd.to_numeric(long["n_test"], errors="coerce").fillna(0) > 0].copy()
    bounds = [
        knn_interval(float(raw), int(n)) for raw, n in zip(rows["raw"], rows["n_test"], strict=True)
    ]
    rows["n_test"] = rows["n_test"].astype(int)
    rows["low"] = [b[0] if b else np.nan for b in bounds]
    rows["high"] = [b[1] if b else np.nan for b in bounds]
    return rows.dropna(subset=["low", "high"])


def knn_domain(long: pd.DataFrame) -> tuple[float, float] | None:
    """The y range of a k-NN chart: the values (and their bands) widened to at least
    :func:`~dinodiag.train.eval.knn_noise.axis_span` on the smallest test set drawn, so noise
    never fills the chart. None for other charts."""
    if not is_knn(long):
        return None
    values = [float(v) for v in long["value"] if math.isfinite(float(v))]
    tests = pd.to_numeric(long["n_test"], errors="coerce").dropna()
    n_test = int(tests.min()) if len(tests) else None
    low, high = axis_span(values, n_test)
    band = knn_band(long)
    if len(band):
        low, high = min(low, float(band["low"].min())), max(high, float(band["high"].max()))
    return low, high


def baseline_zone(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The step-0 k-NN of each run with the change it takes to count (``low`` / ``high``:
    step 0 ± CLEAR x the noise of a change from there): a curve inside the zone has not
    moved beyond the noise. Columns ``value``, ``low``, ``high``, ``label``; one row per
    distinct baseline, runs with an unknown test size left out."""
    rows = []
    for name, frame in frames.items():
        points = knn_points(frame)
        if points.empty:
            continue
        start, n_test = float(points["top1"].iloc[0]), _count(points["n_test"].iloc[-1])
        threshold = judge_change(start, start, n_test).threshold
        if threshold is None:
            continue
        rows.append(
            {
                "value": start,
                "low": max(0.0, start - threshold),
                "high": min(100.0, start + threshold),
                "label": f"noise of a change from step 0 (±{threshold:.1f}, {n_test} images)",
                "run": name,
            }
        )
    out = pd.DataFrame(rows, columns=["value", "low", "high", "label", "run"])
    return out.drop_duplicates(["value", "low", "high"]).reset_index(drop=True)
