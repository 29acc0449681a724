"""``train --estimate``: set a run up as the engine does, time its first steps and a k-NN
evaluation, write nothing (the numbers: :class:`~dinodiag.train.estimate.TimeEstimate`).

The run's own set-up stages run (data, networks, losses, optimizer, the loader's workers and
the step-0 k-NN, as a real run does them), then a few training steps and one more k-NN
evaluation are timed.

    estimate = estimate_training(get_train_preset("cpu-demo").config, started=None)
    estimate.sentence()   # "Measured here: set-up 7.1 s (imports, data, ...), first step ..."

``progress`` (optional) hears each stage as it starts: ``{"stage": s, "steps_done": i,
"steps": n, "knn_s": t}`` with ``s`` one of :data:`STAGES`, ``i`` of the ``n`` timed steps done,
``t`` the step-0 k-NN's seconds once known (the later one costs about as much), so a caller can
show the stage and the time left (:mod:`dinodiag.runs.estimates`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.recipe.config import TrainConfig
from dinodiag.rundir.writer import RunWriter
from dinodiag.train.estimate import TimeEstimate, fit_steps
from dinodiag.train.run_setup import stage_data, stage_losses_optimizer_schedules, stage_networks
from dinodiag.train.run_state import RunState
from dinodiag.train.runtime import setup_runtime, teardown_runtime
from dinodiag.train.step import train_step

MEASURED_STEPS = 3  # timed steps after the first (the first holds the warm-up)
STAGES = ("data", "networks", "optimizer", "baseline", "steps", "knn")  # what progress hears


def estimate_training(
    config: TrainConfig,
    started: float | None = None,
    measured_steps: int = MEASURED_STEPS,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> TimeEstimate:
    """Set the run up, time its first steps and a k-NN evaluation; write nothing.

    ``started``: the unix time of the process start (the set-up then includes the imports).
    ``progress``: called as each stage starts and after each timed step (see the module).
    Raises what the run would raise for bad input (:class:`~dinodiag.errors.DinodiagError`).
    """
    timed, knn_s = measured_steps + 1, None

    def say(stage: str, done: int = 0) -> None:
        if progress is not None:
            progress({"stage": stage, "steps_done": done, "steps": timed, "knn_s": knn_s})

    with tempfile.TemporaryDirectory(prefix="dinodiag-estimate-") as tmp:
        run = RunState(config, Path(tmp) / "run", False, None, None, started)
        run.rt = setup_runtime(config.run)
        try:
            run.writer = RunWriter(run.run_dir, enabled=False)  # writes nothing
            run.writer.set_time_offset(run.setup_age())
            for name, stage in zip(
                STAGES,
                (stage_data, stage_networks, stage_losses_optimizer_schedules),
                strict=False,
            ):
                say(name)
                stage(run)
            if run.baseline is not None:
                say("baseline")
                knn_s = float(run.baseline.take()["eval_seconds"])
            setup_s = run.writer.elapsed()
            assert run.stream is not None
            times = []
            say("steps")
            for step in range(1, measured_steps + 2):
                start = time.monotonic()
                _, batch = next(run.stream)
                schedule = run.schedules.at(min(step - 1, run.planned_steps - 1))
                train_step(run.modules, batch, schedule, step, diagnostics=True)
                times.append(time.monotonic() - start)
                say("steps", step)
            eval_s = 0.0
            if run.evaluator is not None:
                say("knn", timed)
                eval_s = float(run.evaluator.evaluate(run.nets.teacher.backbone)["eval_seconds"])
        finally:
            run.stream = None
            teardown_runtime(run.rt)
    eval_every = config.run.eval_every if run.evaluator is not None else 0
    step_s = statistics.median(times[1:])
    steps, evaluations, total = fit_steps(
        setup_s,
        times[0],
        step_s,
        eval_s,
        eval_every,
        run.total_steps,
        config.run.max_seconds,
    )
    return TimeEstimate(
        setup_s=setup_s,
        first_step_s=times[0],
        step_s=step_s,
        eval_s=eval_s,
        eval_every=eval_every,
        planned_steps=run.total_steps,
        budget_s=config.run.max_seconds,
        steps=steps,
        evaluations=evaluations,
        total_s=total,
        knn_test=run.evaluator.sizes[1] if run.evaluator is not None else None,
    )


def process_start_time() -> float | None:
    """Unix time this process started (the clock of ``--max-seconds``); None if unknown."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # psutil missing or no /proc: the clock starts at the set-up instead
        return None


@dataclass(frozen=True)
class EstimateAnswer:
    """``train --estimate``: the measured estimate and whether its k-NN could judge a change
    (held against the earlier runs of the dashboard's runs directory)."""

    estimate: TimeEstimate
    knn: Any  # dinodiag.train.knn_horizon.PlanJudgement

    def sentence(self) -> str:
        return self.estimate.sentence() + "\n" + self.knn.sentence()

    def to_dict(self) -> dict[str, Any]:
        knn_plan = {"status": self.knn.status, "needed_steps": self.knn.needed_steps}
        return {**self.estimate.to_dict(), "knn_plan": knn_plan}


def estimate_here(config: TrainConfig, started: float | None) -> EstimateAnswer:
    """Measure the set-up, one step and one k-NN evaluation of ``config`` here, and judge
    whether the k-NN of that many steps could tell a change from its noise."""
    from dinodiag.rundir import runs_root
    from dinodiag.train.knn_horizon import judge_estimate

    estimate = estimate_training(config, started=started)
    return EstimateAnswer(
        estimate, judge_estimate(estimate, config.name, config.data.data, runs_root())
    )
