"""What the training page says about runs: which one to show, its progress bar, its headline
numbers and alerts, the runs to overlay first, a warning before starting another.

Plain functions of :class:`dinodiag.runs.rundir.RunInfo` and the run directory's frames
(``rundir.read_metrics`` / ``read_events``); the page displays what they return.

    fraction, text = run_progress(info, elapsed=93.0)   # 0.42, "step 42 / 100 · epoch 1.30 ..."
    for level, text in event_alerts(rundir.read_events(info.path)): ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard.knn_verdict import knn_tile
from dinodiag.dashboard.labels import Metric
from dinodiag.printable import duration
from dinodiag.rundir import RunInfo
from dinodiag.runs.compare import metrics_summary
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
        Metric("Peak memory", memory_value(last.get("peak_mem_mb")), help=info.device or None),
        # compact ("2m05s"): a tile is a sixth of the page, and Streamlit cuts a long value
        Metric("Training time", duration(elapsed, compact=True) if elapsed else "–"),
    ]


def memory_value(mib: object) -> str:
    """``512 MiB``; from 1 GiB on ``1.5 GiB`` (short enough for a tile: "1931 MiB" was cut)."""
    text = logged_value(mib, "{:.0f} MiB")
    if text.endswith(" MiB") and float(text.split()[0]) >= 1024:
        return f"{float(text.split()[0]) / 1024:.1f} GiB"
    return text


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


def what_trains(
    kind: str,
    preset: str,
    trained: PipelineConfig,
    patch_size: int,
    chosen: PipelineConfig | None = None,
) -> str:
    """The launch form's plain sentence (Markdown) of what a run will train and why.

    ``kind``: ``"recipe"`` (the sidebar's config, ``chosen``) or ``"preset"`` (the training
    preset's own crops); ``trained``: the crops the run uses (sizes applied); ``patch_size``:
    its ViT patch. A sidebar recipe is trained at the preset's resolution, not its own: the
    sentence names both sizes, and that the preset's benchmark trains the preset's own crops.
    """

    def sizes(p: PipelineConfig) -> str:
        grid = f"{p.global_crops_size // patch_size}×{p.global_crops_size // patch_size}"
        text = f"{p.global_crops_size} px globals ({grid} patches of {patch_size} px)"
        if p.local_crops_number:
            side = p.local_crops_size // patch_size
            text += f" and {p.local_crops_size} px locals ({side}×{side} patches)"
        return text

    if kind == "preset" or chosen is None:
        return (
            f"**This run trains** the `{preset}` set-up as it is, with its own crops: "
            f"{sizes(trained)}. The `{preset}` figures of docs/training.md come from this set-up."
        )
    same = (chosen.global_crops_size, chosen.local_crops_size) == (
        trained.global_crops_size,
        trained.local_crops_size,
    )
    rescaled = (
        ""
        if same
        else f", rescaled from its {chosen.global_crops_size} / {chosen.local_crops_size} px "
        f"to `{preset}`'s resolution so that a short run fits this machine"
    )
    return (
        f"**This run trains** the sidebar's recipe `{chosen.name}` (its crop counts, scales "
        f"and colour augmentations) at {sizes(trained)}{rescaled}. It is not the `{preset}` "
        f"set-up docs/training.md measures: choose *`{preset}`'s own crops* for that."
    )


def story_rows(members: Mapping[str, RunInfo], labels: Mapping[str, str]) -> dict[str, str]:
    """Each comparison run's message, role by role in queue order: a queued run says what it
    waits for by name, and the first of the queue says it is starting (at launch both runs
    are queued, and both said "waiting for the run before it")."""
    out: dict[str, str] = {}
    before: str | None = None
    for role, info in members.items():
        message = info.message
        if info.state == "queued":
            prior = members.get(before) if before is not None else None
            if prior is None or prior.state not in ("queued", "running"):
                message = "starting: the queue starts it now"
            else:
                message = f"waiting for {labels[before]} to finish (one run at a time)"
        out[role] = message
        before = role
    return out


def steps_note(members: Mapping[str, RunInfo], labels: Mapping[str, str]) -> str | None:
    """A sentence when the two runs of a comparison ended at different steps (both at once, a
    time budget stops the slower one first: then more than the crops differ; one after the
    other the reference trains yours' steps), None when they match or one has not ended."""
    ended = [info for info in members.values() if not info.active]
    if len(ended) < 2 or len({info.step for info in ended}) < 2:
        return None
    parts = [f"{labels[role]} {info.step}" for role, info in members.items()]
    return (
        f"Not the same number of steps: {', '.join(parts)} (the time budget stopped them). "
        "More than the crops differ: train them one after the other (the reference then "
        "trains as many steps as yours reached) or set the time budget to 0."
    )


def knn_absence(info: RunInfo, config: Mapping | None, frame: pd.DataFrame) -> str | None:
    """Why a run that ended has no k-NN point, as the chart says it in place of "No k-NN
    evaluation yet" (``config``: the run's ``config.json``); None while it may still come
    (the run is active) or when there is one."""
    has_eval = not frame.empty and "kind" in frame and (frame["kind"] == "eval").any()
    if info.active or has_eval:
        return None
    every = ((config or {}).get("run") or {}).get("eval_every")
    if every == 0:
        return (
            "No k-NN evaluation in this run: none was planned (k-NN every 0 steps, as the "
            "tiny-test set-up has it: it checks the machinery, not learning)."
        )
    return f"No k-NN evaluation in this run: it ended ({info.state}) before the first one."
