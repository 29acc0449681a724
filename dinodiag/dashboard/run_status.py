"""What the training page says about runs: which one to show, its progress bar, its headline
numbers and alerts, the runs to overlay first, a warning before starting another.

Plain functions of :class:`dinodiag.runs.manager.RunInfo` and the run directory's frames
(``rundir.read_metrics`` / ``read_events``); the page displays what they return.

    fraction, text = run_progress(info, elapsed=93.0)   # 0.42, "step 42 / 100 · epoch 1.30 ..."
    for level, text in event_alerts(rundir.read_events(info.path)): ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from dinodiag.dashboard.knn_verdict import knn_tile
from dinodiag.dashboard.labels import Metric
from dinodiag.printable import duration
from dinodiag.runs.compare import metrics_summary
from dinodiag.runs.manager import RunInfo
from dinodiag.runs.story import latest_story


def run_label(info: RunInfo) -> str:
    """The run selector's line: ``20260101-120000-cpu-demo  ·  running  ·  seed-fixed``."""
    return f"{info.run_id}  ·  {info.state}  ·  {info.pipeline or '?'}"


def selected_run(infos: Sequence[RunInfo], current: str | None, pending: str | None) -> str:
    """The run to show: a just-started one (``pending``), else the one shown so far, else the
    first running, queued or newest run. ``infos`` must not be empty."""
    ids = [r.run_id for r in infos]
    for wanted in (pending, current):
        if wanted in ids:
            return wanted  # type: ignore[return-value]
    running = [r for r in infos if r.state == "running"]
    queued = [r for r in infos if r.state == "queued"]
    return (running or queued or list(infos))[0].run_id


def run_progress(info: RunInfo, elapsed: float) -> tuple[float, str] | None:
    """``(fraction done, text)`` of the progress bar, None when there is nothing to show.

    A time-limited run can end before its planned steps: while it runs, the fraction is the
    larger of the steps done and the time used (``elapsed`` seconds against the ETA).
    """
    if info.total_steps:
        done = info.step / info.total_steps
        if info.state == "running" and info.eta_s is not None and elapsed + info.eta_s > 0:
            done = max(done, elapsed / (elapsed + info.eta_s))
        if info.state == "finished":
            done = 1.0
        eta = f" · ETA {duration(info.eta_s)}" if info.state == "running" else ""
        epoch = f" · epoch {info.epoch:.2f}" if info.epoch is not None else ""
        return min(done, 1.0), f"step {info.step} / {info.total_steps}{epoch}{eta}"
    if info.active:
        return 0.0, "waiting to start…" if info.state == "queued" else "setting up…"
    return None


def logged_value(value: object, pattern: str) -> str:
    """A logged number as text; "–" when missing. NaN and inf are shown as such: a NaN loss
    is a finding, not a gap."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return pattern.format(number) if math.isfinite(number) else str(number)


def run_metrics(info: RunInfo, frame: pd.DataFrame) -> list[Metric]:
    """The live view's headline numbers: k-NN top-1 (its interval, and the change since step 0
    judged against the noise: :func:`~dinodiag.dashboard.knn_verdict.knn_tile`), last loss,
    images / s, peak memory and training time, from the run's metrics frame."""
    summary = metrics_summary(frame)
    elapsed = summary["elapsed"] or 0.0
    train = frame[frame["kind"] == "train"] if "kind" in frame else frame
    last = train.iloc[-1] if len(train) else pd.Series(dtype=object)
    return [
        knn_tile(frame),
        Metric("Loss", logged_value(last.get("loss"), "{:.3f}")),
        Metric("Images / s", logged_value(last.get("img_per_s"), "{:.0f}")),
        Metric(
            "Peak memory",
            logged_value(last.get("peak_mem_mb"), "{:.0f} MiB"),
            help=info.device or None,
        ),
        Metric("Training time", duration(elapsed) if elapsed else "–"),
    ]


def event_alerts(events: pd.DataFrame) -> list[tuple[str, str]]:
    """``(level, Markdown)`` for the latest event of each code: "error", "warning", or "info"
    for a skipped k-NN; other events (notes) are not shown."""
    if events.empty or "level" not in events:
        return []
    alerts = []
    for _, row in events.drop_duplicates(subset="code", keep="last").iterrows():
        text = f"**{row.get('code', '')}** at step {row.get('step', '?')}: {row.get('message', '')}"
        if row.get("level") in ("error", "warning"):
            alerts.append((str(row["level"]), text))
        elif row.get("code") == "knn_skipped":
            alerts.append(("info", text))
    return alerts


def active_runs_warning(active: Sequence[RunInfo]) -> str | None:
    """What starting one more run costs while ``active`` runs go, or None when none does."""
    if not active:
        return None
    names = ", ".join(r.run_id for r in active)
    return (
        f"{len(active)} run(s) already active ({names}). A second run shares the CPU cores / "
        "GPU with it: both go slower (on 2 cores, about half speed each)."
    )


def default_overlay(infos: Sequence[RunInfo]) -> list[str]:
    """The runs the comparison overlays first: the latest seed story's, else the two newest."""
    story = latest_story(infos)
    return [r.run_id for r in story.values()] or [r.run_id for r in infos[:2]]


def filter_runs(
    infos: Sequence[RunInfo],
    text: str = "",
    states: Sequence[str] = (),
    names: Mapping[str, str] | None = None,
) -> list[RunInfo]:
    """The runs whose id, short name, pipeline or preset hold every word of ``text`` (case
    ignored) and whose state is one of ``states`` (any state when none is given)."""
    words = text.lower().split()
    kept = []
    for info in infos:
        if states and info.state not in states:
            continue
        haystack = " ".join(
            str(part or "")
            for part in (info.run_id, (names or {}).get(info.run_id), info.pipeline, info.preset)
        ).lower()
        if all(word in haystack for word in words):
            kept.append(info)
    return kept
