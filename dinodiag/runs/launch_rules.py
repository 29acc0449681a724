"""Diagnosis rules on what ran, beyond the loss curves: the console log's running averages
(a transient inf that training_metrics.json's medians hide), how the diagnosed launch ended,
and the other launches appended to the same log (:mod:`dinodiag.runs.launches`)."""

from __future__ import annotations

import numpy as np

from dinodiag.runs.findings import Finding, iteration, rows_of, span
from dinodiag.runs.opened_run import OpenedRun


def nonfinite_average(run: OpenedRun) -> Finding | None:
    """A meter whose running average (the console's ``(...)``) went inf / NaN while its window
    medians, all that training_metrics.json keeps, stayed finite: a transient the JSON hides."""
    columns = [c for c in run.train_rows.columns if str(c).endswith("_avg")]
    if not columns:
        return None
    hits = []
    for column in columns:
        rows = rows_of(run, column)
        broken = rows[~np.isfinite(rows["value"].astype(float))]
        if len(broken):
            name = column.removesuffix("_avg")
            median = rows_of(run, name)
            at = median[median["step"] == broken["step"].iloc[0]]["value"]
            shown = f"{float(at.iloc[0]):.4g}" if len(at) else "?"
            hits.append((int(broken["step"].iloc[0]), name, broken["value"].iloc[0], shown))
    checked = f"running averages of {len(columns)} meters in the console log"
    if not hits:
        return Finding(
            "pass",
            "nonfinite_average",
            "No inf or NaN hidden in the console log's averages",
            f"the {checked} stay finite over {span(rows_of(run, columns[0]))}.",
        )
    step, name, value, median = min(hits)
    nan = any(str(v) == "nan" for _, _, v, _ in hits)
    names = ", ".join(sorted({h[1] for h in hits}))
    return Finding(
        "fail" if nan else "warn",
        "nonfinite_average",
        f"A transient {value} in {name}, hidden from training_metrics.json",
        f"{name}: median {median} but running average {value} from {iteration(step)} "
        f"(meters affected: {names}); DINOv2's JSON keeps only the 20-iteration medians, the "
        "console prints median (average).",
        "An inf does not stop DINOv2 (only a NaN does) but it enters the gradients that step: "
        "a KoLeo inf means two identical features in a batch (duplicates, a batch of 1 per "
        "process); a loss inf in fp16 means overflow (leave fp16 for bf16).",
    )


def early_stop(run: OpenedRun) -> Finding | None:
    """The diagnosed launch ended before its planned iterations: how, where the log tells."""
    if run.launch is None or not run.launches:
        return None
    launch = run.launches[run.launch]
    if launch.end == "finished":
        return Finding(
            "pass",
            "early_stop",
            "The run reached its planned iterations",
            launch.end_evidence + ".",
        )
    if launch.end == "running":
        return Finding(
            "info", "early_stop", "The run may still be running", launch.end_evidence + "."
        )
    if not launch.early:
        return None
    advice = {
        "nan": "See the non-finite loss advice: lower the lr, leave fp16, keep clipping, check "
        "the KoLeo term; resume from the last checkpoint once fixed.",
        "data_end": "DINOv2's default sampler is infinite: a custom dataset or sampler of "
        "finite length ends the loop; use SamplerType.SHARDED_INFINITE or enough epochs of data.",
        "stopped": "Look at the job's stderr / the scheduler's record for an out-of-memory kill "
        "or a time limit; resume with the same output_dir.",
        "unknown": "Copy DINOv2's console log (train.output_dir/logs/log.txt) next to the "
        "metrics: it records a NaN stop and the end of the loop.",
    }[launch.end]
    planned = f" of {launch.planned}" if launch.planned else ""
    return Finding(
        "fail" if launch.end == "nan" else "warn",
        "early_stop",
        f"The run stopped early, at iteration {launch.last}{planned}",
        launch.end_evidence + ".",
        advice,
    )


def launches(run: OpenedRun) -> Finding | None:
    """An appended log: which launch is diagnosed, and the others in one line each."""
    if len(run.launches) < 2 or run.launch is None:
        return None
    chosen = run.launches[run.launch]
    others = [f"{launch.line()}" for launch in run.launches if launch.index != run.launch]
    resumed = (
        " It resumes an earlier launch: the rows before its first iteration come from there."
        if chosen.resumed
        else ""
    )
    return Finding(
        "info",
        "launches",
        f"{len(run.launches)} launches appended in one log; launch {chosen.index + 1} is diagnosed",
        f"diagnosed: {chosen.line()}.{resumed} Others: " + " | ".join(others) + ".",
        "DINOv2 appends every launch and resume to the same training_metrics.json and "
        "log.txt; pick another with --launch N.",
    )
