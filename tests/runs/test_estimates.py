"""The form's "Estimate the time" in its own process: its stages as it goes, the time left,
its answer or its error, and a stop when it runs too long."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from dinodiag import rundir
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs import estimates, jobs, manager
from dinodiag.runs.run_plan import plan_run

BASE = get_train_preset("tiny-test").config


def wait_done(job: Path, timeout: float = 120.0) -> estimates.EstimateStatus:
    deadline = time.monotonic() + timeout
    while (status := estimates.read_estimate(job)).state == "running":
        assert time.monotonic() < deadline, status.line()
        time.sleep(0.2)
    return status


def test_the_time_left_follows_the_pace_of_the_steps_and_the_step0_knn():
    t = 1000.0
    setup = [{"stage": "data", "steps_done": 0, "steps": 4, "knn_s": None, "time": t}]
    assert estimates.seconds_left(setup, t + 5) is None  # nothing timed yet
    steps = [
        {"stage": "steps", "steps_done": 0, "steps": 4, "knn_s": 3.0, "time": t + 10},
        {"stage": "steps", "steps_done": 2, "steps": 4, "knn_s": 3.0, "time": t + 12},
    ]
    assert estimates.seconds_left(setup + steps[:1], t + 11) is None  # no step done yet
    # 1 s a step: 2 steps left, then one k-NN as long as the step-0 one (3 s)
    assert estimates.seconds_left(setup + steps, t + 12) == pytest.approx(5.0)
    assert estimates.seconds_left(setup + steps, t + 13) == pytest.approx(4.0)
    knn = {"stage": "knn", "steps_done": 4, "steps": 4, "knn_s": 3.0, "time": t + 14}
    assert estimates.seconds_left([*steps, knn], t + 15) == pytest.approx(2.0)
    assert estimates.seconds_left([*steps, knn], t + 30) == 0.0


def test_a_real_estimate_tells_its_stages_and_answers():
    plan = plan_run(BASE, {"run.eval_every": 2}, check_data=False)
    job = estimates.start_estimate(plan)
    try:
        status = wait_done(job)
        assert status.state == "done", status.error
        estimate = status.estimate
        assert estimate is not None and estimate.planned_steps == 4 and estimate.step_s > 0
        assert estimate.knn_test is not None and estimate.eval_every == 2
        stages = [e["stage"] for e in jobs.read_events(job)]
        assert stages[:4] == ["data", "networks", "optimizer", "baseline"]
        assert stages[4:] == ["steps"] * 5 + ["knn"]  # 4 timed steps, then one k-NN
        planned = Path(rundir.read_json(job / estimates.PLAN_FILE)["plan"])
        assert status.fraction == 1.0 and (planned / "run" / "config.json").is_file()
    finally:
        estimates.discard(job)
    assert not job.exists() and not planned.exists()


def test_a_plan_that_cannot_run_gives_the_error(tmp_path: Path):
    missing = str(tmp_path / "no_images_here")
    job = estimates.start_estimate(plan_run(BASE, {"data.data": missing}, check_data=False))
    try:
        status = wait_done(job)
        assert status.state == "failed" and "no_images_here" in (status.error or "")
    finally:
        estimates.discard(job)


def test_an_estimate_past_its_time_is_stopped(tmp_path: Path):
    job = tmp_path / "job"
    job.mkdir()
    process = manager.spawn([sys.executable, "-c", "import time; time.sleep(60)"], job / "log")
    record = {**rundir.process_record(process.pid), "at": time.time() - 5}
    rundir.write_json_atomic(job / jobs.JOB_FILE, record)
    running = estimates.read_estimate(job)
    assert running.state == "running" and running.stage == "starting"
    assert running.left_s is None and "imports" in running.line()
    status = estimates.read_estimate(job, timeout=1.0)
    assert status.state == "failed" and "more than 1 s" in (status.error or "")
    assert process.wait(timeout=10) != 0  # stopped
