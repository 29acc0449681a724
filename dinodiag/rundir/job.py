"""The process side of a job: work the dashboard runs in a process of its own (a time
estimate, the k-NN of every checkpoint) and follows through a folder
(:mod:`dinodiag.runs.jobs` starts, reads and discards it).

The folder holds ``job.json`` (written by the starter: the process's pid and start time),
``progress.jsonl`` (:func:`report`: one JSON line per stage, with its unix ``time``),
``result.json`` (:func:`finish`: ``{"result": ...}`` or ``{"error": "..."}``) and
``console.log`` (the process's output). Lower than the training loop, so that a job of
``dinodiag.train`` writes the same format the dashboard reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dinodiag.rundir.layout import CONSOLE_FILE, dumps, write_json_atomic

JOB_FILE = "job.json"
PROGRESS_FILE = "progress.jsonl"
RESULT_FILE = "result.json"
LOG_FILE = CONSOLE_FILE


def report(job: str | Path, stage: str, **fields: Any) -> None:
    """Append one stage to the job's progress (called by the job's process)."""
    line = dumps({"stage": stage, "time": time.time(), **fields})
    with open(Path(job) / PROGRESS_FILE, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def finish(job: str | Path, result: Any = None, error: str | None = None) -> None:
    """Write the job's answer, or the error a person reads (called by the job's process)."""
    answer = {"error": error} if error is not None else {"result": result}
    write_json_atomic(Path(job) / RESULT_FILE, answer)
