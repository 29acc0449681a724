"""Work that would block a page, run in a process of its own and followed through a folder.

A job is a temporary folder: ``job.json`` (the process's pid and start time, never a reused
pid), ``progress.jsonl`` (one JSON line per stage the process reaches, with ``time``),
``result.json`` (``{"result": ...}`` or ``{"error": "..."}``) and ``console.log`` (the
process's output: its traceback if it crashes). The page starts the job, reads it from a
fragment that reruns every second, and discards it once the answer is read.

    job = start_job("dinodiag-curve-", [python, "-m", "dinodiag.runs.checkpoint_curve", ...])
    state = read_job(job)               # "running" | "done" | "failed", events, result, error
    discard_job(job)

The process side (:mod:`dinodiag.rundir.job`, below the training loop so a job of
``dinodiag.train`` writes it too): ``report`` appends a stage, ``finish`` writes the answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dinodiag import rundir
from dinodiag.rundir.job import (
    JOB_FILE,
    LOG_FILE,
    PROGRESS_FILE,
    RESULT_FILE,
    finish,
    report,
)
from dinodiag.runs import manager

# The process side (report, finish) and the file names: dinodiag.rundir.job.
__all__ = ["JobState", "discard_job", "finish", "read_job", "report", "start_job", "stop_job"]


@dataclass(frozen=True)
class JobState:
    """Where a job stands."""

    state: str  # "running" | "done" | "failed"
    elapsed_s: float  # seconds since it was started
    events: list[dict[str, Any]] = field(default_factory=list)  # the stages reached, in order
    result: Any = None  # the answer, when done
    error: str | None = None  # why it failed

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1] if self.events else {}


def start_job(prefix: str, command: list[str]) -> Path:
    """Start ``command`` with ``--job FOLDER`` appended, in a new temporary folder; returns it."""
    job = Path(tempfile.mkdtemp(prefix=prefix))
    process = manager.spawn([*command, "--job", str(job)], job / LOG_FILE)
    rundir.write_json_atomic(
        job / JOB_FILE, {**rundir.process_record(process.pid), "at": time.time()}
    )
    return job


def read_events(job: Path) -> list[dict[str, Any]]:
    """The stages the job reached, in order (a line cut short by a write is skipped)."""
    try:
        text = (Path(job) / PROGRESS_FILE).read_text(encoding="utf-8")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def read_job(job: Path, *, timeout: float, now: float | None = None) -> JobState:
    """The job's state: its answer once written; "failed" with the reason when its process
    ended without one, or ran past ``timeout`` seconds (then it is stopped)."""
    job, now = Path(job), time.time() if now is None else now
    record = rundir.read_json(job / JOB_FILE) or {}
    elapsed = max(0.0, now - float(record.get("at") or now))
    alive = bool(record) and rundir.process_alive(record)  # before the answer: no race
    events = read_events(job)
    answer = rundir.read_json(job / RESULT_FILE)
    if answer is not None and "result" in answer:
        return JobState("done", elapsed, events, result=answer["result"])
    if answer is not None:
        return JobState("failed", elapsed, events, error=str(answer.get("error")))
    if alive and elapsed > timeout:
        stop_job(job)
        return JobState("failed", elapsed, events, error=f"it took more than {timeout:g} s")
    if not alive:
        tail = " ".join(rundir.console_tail(job, 3).splitlines())
        return JobState("failed", elapsed, events, error=tail or "its process ended")
    return JobState("running", elapsed, events)


def stop_job(job: Path) -> None:
    """End the job's process (checked by pid and start time: never a reused pid)."""
    record = rundir.read_json(Path(job) / JOB_FILE)
    if record and rundir.process_alive(record):
        try:
            os.kill(int(record["pid"]), signal.SIGTERM)
        except ProcessLookupError:
            pass


def discard_job(job: Path) -> None:
    """Stop the job if it still runs and remove its folder."""
    stop_job(job)
    shutil.rmtree(job, ignore_errors=True)
