"""The k-NN of every checkpoint runs as a job in its own process: its progress, its answer,
its failures (named), and a job that runs too long is stopped."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from dinodiag import rundir
from dinodiag.runs import checkpoint_curve as curve
from dinodiag.runs import jobs
from tests.facts import assert_mentions


def _wait(job: Path, timeout: float = 120.0) -> curve.CurveStatus:
    deadline = time.time() + timeout
    status = curve.read_curve(job)
    while status.state == "running" and time.time() < deadline:
        time.sleep(0.2)
        status = curve.read_curve(job)
    return status


def test_a_run_that_cannot_be_opened_fails_with_its_reason(tmp_path):
    job = curve.start_curve(tmp_path / "nowhere", "generated:n=40,val_n=20", seed=0)
    try:
        status = _wait(job)
        assert status.state == "failed" and status.frame is None
        assert "nowhere" in (status.error or "") and "does not exist" in (status.error or "")
    finally:
        jobs.discard_job(job)
    assert not job.exists()


def test_a_job_past_its_time_is_stopped(tmp_path):
    job = jobs.start_job("dinodiag-test-", [sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = rundir.read_json(job / jobs.JOB_FILE)
        assert jobs.read_job(job, timeout=60).state == "running"
        state = jobs.read_job(job, timeout=60, now=time.time() + 120)
        assert state.state == "failed" and "more than 60 s" in (state.error or "")
        deadline = time.time() + 10
        while rundir.process_alive(record) and time.time() < deadline:
            time.sleep(0.1)
        assert not rundir.process_alive(record)
    finally:
        jobs.discard_job(job)


def test_the_progress_line_says_where_it_is_and_the_time_left(tmp_path):
    jobs.report(tmp_path, "opened", total=4, done=0)
    rundir.write_json_atomic(tmp_path / jobs.JOB_FILE, {"pid": -1, "at": 100.0})
    jobs.report(tmp_path, "checkpoint", total=4, done=1, label="training_1249")
    jobs.finish(tmp_path, result=[{"step": 1249, "knn_top1": 12.5}])
    status = curve.read_curve(tmp_path, now=130.0)
    assert status.state == "done" and list(status.frame["step"]) == [1249]
    running = curve.CurveStatus("running", 1, 4, "training_1249", 30.0)
    # which checkpoint of how many, its name, the time spent and the time left (3 more at 30 s)
    assert_mentions(running.line(), "2 of 4", "training_1249", "30 s so far", "1 min 30 s left")
    assert running.fraction == 0.25
