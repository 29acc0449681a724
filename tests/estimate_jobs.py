"""A stand-in for the form's estimate process (``dinodiag.runs.estimates``) in AppTest: the
job folder it leaves, at the stage a test wants, with or without its answer."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dinodiag import rundir
from dinodiag.runs import estimates, jobs, manager


def fake_estimate(job: Path, stages: list[dict], answer: dict | None, alive: bool = True) -> Path:
    """A job folder as ``runs.estimates`` reads it: the stages reached, the answer (if any),
    and a process record (a sleeping process, ended with the job; or a dead one)."""
    job.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"pid": 999_999_999}
    if alive:
        sleeper = manager.spawn([sys.executable, "-c", "import time; time.sleep(60)"], job / "log")
        record = rundir.process_record(sleeper.pid)
    rundir.write_json_atomic(job / jobs.JOB_FILE, {**record, "at": time.time() - 12})
    lines = [json.dumps({**event, "time": time.time() - 1}) for event in stages]
    (job / jobs.PROGRESS_FILE).write_text("".join(line + "\n" for line in lines))
    if answer is not None:
        rundir.write_json_atomic(job / jobs.RESULT_FILE, answer)
    return job


def patch_estimates(
    monkeypatch: pytest.MonkeyPatch,
    job: Path,
    stages: list[dict],
    answer: dict | None,
    alive: bool = True,
) -> list[Any]:
    """Make "Estimate the time" leave :func:`fake_estimate`'s folder; returns the plans it
    was asked to measure."""
    seen: list[Any] = []

    def start(plan: Any) -> Path:
        seen.append(plan)
        return fake_estimate(job, stages, answer, alive)

    monkeypatch.setattr(estimates, "start_estimate", start)
    return seen
