"""The launch form's "Estimate the time": a plan measured in a process of its own, as the run
will start (imports, data, networks, the step-0 k-NN, a few steps, one more k-NN), with the
stage it is in and the time left while it runs.

    job = start_estimate(plan)          # a folder; the process runs on its own
    status = read_estimate(job)         # stage, seconds so far and left, the estimate or error
    status.line()                       # "timing the steps (2 of 4) · 9 s so far · about 3 s left"
    discard(job)                        # once the answer is read

The process is ``python -m dinodiag.train.estimate_job`` on the plan written into the job's
folder (:func:`dinodiag.runs.manager.write_run_plan`); it appends each stage of
:func:`dinodiag.train.warmup.estimate_training` to ``progress.jsonl`` and writes its answer to
``estimate.json``. Nothing is written to the runs directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.runs import manager
from dinodiag.runs.run_plan import RunPlan
from dinodiag.train import rundir
from dinodiag.train.estimate import TimeEstimate

PROGRESS_FILE = "progress.jsonl"  # one JSON line per stage (estimate_job)
RESULT_FILE = "estimate.json"  # {"estimate": {...}} or {"error": "..."}
JOB_FILE = "job.json"  # the process record (pid and start time: never a reused pid)
LOG_FILE = manager.CONSOLE_FILE  # the process's output (its error, if it crashes)
TIMEOUT_S = 180.0  # an estimate still running after this is stopped and called too slow
STAGE_WORDS = {
    "starting": "starting the process (imports)",
    "data": "setting up: the data",
    "networks": "setting up: the networks",
    "optimizer": "setting up: losses and optimizer",
    "baseline": "the step-0 k-NN (random weights)",
    "steps": "timing the steps",
    "knn": "timing one k-NN evaluation",
}


@dataclass(frozen=True)
class EstimateStatus:
    """Where an estimate stands."""

    state: str  # "running" | "done" | "failed"
    stage: str  # the stage it is in (a key of STAGE_WORDS)
    steps_done: int  # timed steps done
    steps: int | None  # timed steps in all (None until the steps start)
    elapsed_s: float  # seconds since the process started
    left_s: float | None  # seconds left, None while it cannot be told (before the steps)
    estimate: TimeEstimate | None = None  # the answer, when done
    error: str | None = None  # why it failed

    @property
    def fraction(self) -> float:
        """How far it is (0-1): by the time left once known, else by the stage."""
        if self.state != "running":
            return 1.0
        if self.left_s is not None:
            return min(0.99, self.elapsed_s / max(1e-6, self.elapsed_s + self.left_s))
        stages = list(STAGE_WORDS)
        return stages.index(self.stage) / len(stages) if self.stage in stages else 0.0

    def line(self) -> str:
        """``timing the steps (2 of 4) · 9 s so far · about 3 s left``."""
        words = STAGE_WORDS.get(self.stage, self.stage)
        if self.stage == "steps" and self.steps:
            words += f" ({self.steps_done} of {self.steps})"
        left = "time left known once a step is timed"
        if self.left_s is not None:
            left = f"about {self.left_s:.0f} s left"
        return f"{words} · {self.elapsed_s:.0f} s so far · {left}"


def start_estimate(plan: RunPlan, python: str | None = None) -> Path:
    """Write ``plan`` into a new temporary folder and start its estimate there; returns the
    folder (:func:`read_estimate` follows it, :func:`discard` removes it)."""
    job = Path(tempfile.mkdtemp(prefix="dinodiag-estimate-"))
    run_dir = job / "run"
    manager.write_run_plan(plan, run_dir)
    command = [
        python or sys.executable,
        "-m",
        "dinodiag.train.estimate_job",
        str(run_dir),
        "--progress",
        str(job / PROGRESS_FILE),
        "--out",
        str(job / RESULT_FILE),
        "--started",
        f"{time.time():.3f}",
    ]
    process = manager.spawn(command, job / LOG_FILE)
    rundir.write_json_atomic(
        job / JOB_FILE, {**rundir.process_record(process.pid), "at": time.time()}
    )
    return job


def read_events(job: Path) -> list[dict[str, Any]]:
    """The stages the estimate reached, in order (lines cut short by a write are skipped)."""
    try:
        text = (Path(job) / PROGRESS_FILE).read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def seconds_left(events: list[dict[str, Any]], now: float) -> float | None:
    """Seconds the estimate still needs: the timed steps left at the pace of those done, then
    one k-NN evaluation as long as the step-0 one; None before a step is timed."""
    if not events:
        return None
    last = events[-1]
    knn = float(last.get("knn_s") or 0.0)
    since = max(0.0, now - float(last["time"]))
    if last["stage"] == "knn":
        return max(0.0, knn - since)
    if last["stage"] != "steps" or not last.get("steps_done"):
        return None
    first = next(e for e in events if e["stage"] == "steps")
    pace = (float(last["time"]) - float(first["time"])) / int(last["steps_done"])
    left = (int(last["steps"]) - int(last["steps_done"])) * pace - since
    return max(0.0, left) + knn


def read_estimate(
    job: Path, now: float | None = None, timeout: float = TIMEOUT_S
) -> EstimateStatus:
    """The estimate's state: its answer once written, "failed" with the reason when its
    process ended without one (or ran past ``timeout`` seconds, then it is stopped)."""
    job, now = Path(job), time.time() if now is None else now
    record = rundir.read_json(job / JOB_FILE) or {}
    events = read_events(job)
    stage = events[-1]["stage"] if events else "starting"
    done = int(events[-1].get("steps_done") or 0) if events else 0
    steps = next((int(e["steps"]) for e in events if e.get("steps")), None)
    elapsed = max(0.0, now - float(record.get("at") or now))
    alive = bool(record) and rundir.process_alive(record)  # before the answer: no race
    answer = rundir.read_json(job / RESULT_FILE)
    if answer is not None and "estimate" in answer:
        fields = TimeEstimate.__dataclass_fields__
        estimate = TimeEstimate(
            **{k: answer["estimate"][k] for k in fields if k in answer["estimate"]}
        )
        return EstimateStatus("done", stage, done, steps, elapsed, 0.0, estimate=estimate)
    if answer is not None:
        return EstimateStatus(
            "failed", stage, done, steps, elapsed, None, error=str(answer.get("error"))
        )
    if alive and elapsed > timeout:
        stop_estimate(job)
        error = (
            f"the estimate took more than {timeout:g} s: the run is very slow here "
            "(a smaller model, fewer or smaller crops, or a GPU would help)."
        )
        return EstimateStatus("failed", stage, done, steps, elapsed, None, error=error)
    if not alive:
        tail = manager.console_tail(job, 3)
        error = "the estimate failed: " + (" ".join(tail.splitlines()) or "its process ended")
        return EstimateStatus("failed", stage, done, steps, elapsed, None, error=error)
    return EstimateStatus("running", stage, done, steps, elapsed, seconds_left(events, now))


def stop_estimate(job: Path) -> None:
    """End the estimate's process (checked by pid and start time: never a reused pid)."""
    record = rundir.read_json(Path(job) / JOB_FILE)
    if record and rundir.process_alive(record):
        try:
            os.kill(int(record["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass


def discard(job: Path) -> None:
    """Stop the estimate if it still runs and remove its folder."""
    stop_estimate(job)
    shutil.rmtree(job, ignore_errors=True)
