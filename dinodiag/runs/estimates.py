"""The launch form's "Estimate the time": a plan measured in a process of its own, as the run
will start (imports, data, networks, the step-0 k-NN, a few steps, one more k-NN), with the
stage it is in and the time left while it runs.

    job = start_estimate(plan)          # a job folder (dinodiag.runs.jobs); it runs on its own
    status = read_estimate(job)         # stage, seconds so far and left, the estimate or error
    status.line()                       # "timing the steps (2 of 4) · 9 s so far · about 3 s left"
    discard(job)                        # once the answer is read

The process is ``python -m dinodiag.train.estimate_job PLAN --job FOLDER`` on the plan written
into a folder of its own (:func:`dinodiag.runs.manager.write_run_plan`): it reports each stage
of :func:`dinodiag.train.warmup.estimate_training` and answers with the estimate, in the job
format of :mod:`dinodiag.runs.jobs`. Nothing is written to the runs directory.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag import rundir
from dinodiag.recipe.plan import RunPlan
from dinodiag.runs import manager
from dinodiag.runs.jobs import RESULT_FILE, discard_job, read_job, start_job
from dinodiag.train.estimate import TimeEstimate

PLAN_FILE = "plan.json"  # in the job folder: where its plan was written (removed with it)
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
    """Write ``plan`` into a new temporary folder and start its estimate; returns the job
    folder (:func:`read_estimate` follows it, :func:`discard` removes it and the plan)."""
    planned = Path(tempfile.mkdtemp(prefix="dinodiag-plan-")) / "run"
    manager.write_run_plan(plan, planned)
    module = [python or sys.executable, "-m", "dinodiag.train.estimate_job"]
    job = start_job("dinodiag-estimate-", [*module, str(planned), "--started", f"{time.time()}"])
    rundir.write_json_atomic(job / PLAN_FILE, {"plan": str(planned.parent)})
    return job


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
    now = time.time() if now is None else now
    state = read_job(job, timeout=timeout, now=now)
    events = state.events
    stage = str(state.last.get("stage", "starting"))
    done = int(state.last.get("steps_done") or 0)
    steps = next((int(e["steps"]) for e in events if e.get("steps")), None)
    where = (stage, done, steps, state.elapsed_s)
    if state.state == "done":
        fields = TimeEstimate.__dataclass_fields__
        answer = {k: v for k, v in (state.result or {}).items() if k in fields}
        return EstimateStatus("done", *where, 0.0, estimate=TimeEstimate(**answer))
    if state.state == "failed":
        error = state.error or "its process ended"
        if error.startswith("it took more than"):
            error = (
                f"the estimate took more than {timeout:g} s: the run is very slow here "
                "(a smaller model, fewer or smaller crops, or a GPU would help)."
            )
        elif not rundir.read_json(Path(job) / RESULT_FILE):
            error = f"the estimate failed: {error}"
        return EstimateStatus("failed", *where, None, error=error)
    return EstimateStatus("running", *where, seconds_left(events, now))


def discard(job: Path) -> None:
    """Stop the estimate if it still runs and remove its folder and its plan's."""
    plan = (rundir.read_json(Path(job) / PLAN_FILE) or {}).get("plan")
    discard_job(job)
    if plan:
        shutil.rmtree(plan, ignore_errors=True)
