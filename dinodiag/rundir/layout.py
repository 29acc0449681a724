"""The run directory's layout: its file names, the run states, a run id, which folders are
run directories, the STOP request, and the JSON writes every file of it goes through (one
atomic write: a temporary file, then a rename, so a reader never sees half a file)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.json"


PLANNED = "planned"  # config.json key of a run planned but not started (write_plan)


METRICS_FILE = "metrics.jsonl"


STATUS_FILE = "status.json"


CHECKPOINT_FILE = "checkpoint.pt"


PID_FILE = "run.pid"


LOCK_FILE = "run.lock"


STOP_FILE = "STOP"


# Every state a run reads as. "queued" only before its process starts (dashboard queues);
# status.json holds one of the others.
# Written by the dashboard's run manager (dinodiag.runs.manager) beside the trainer's files.
LAUNCH_FILE = "launch.json"  # how the run was launched (its story, role), written at once
CONSOLE_FILE = "console.log"  # the training process's output
QUEUED_FILE = "QUEUED"  # waiting in a queue for the run before it
STARTING_FILE = "STARTING"  # QUEUED renamed by the queue process while it starts the run
RUNS_ENV = "DINODIAG_RUNS_DIR"  # environment variable: where the runs are kept
DEFAULT_RUNS_DIR = "runs"
STATES = ("queued", "running", "finished", "stopped", "failed")


ACTIVE_STATES = ("queued", "running")  # still going: pages refresh, resume / delete refuse


RUN_MARKERS = (STATUS_FILE, CONFIG_FILE)  # a folder holding one of these is a run directory
LISTED_MARKERS = (LAUNCH_FILE, *RUN_MARKERS)  # ... and a launched run has launch.json at once


# ----------------------------------------------------------------------------- writing
def new_run_id(label: str = "run", now: float | None = None) -> str:
    """``20260509-220101-cpu-demo``: sortable by start time, readable."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label) or "run"
    return f"{stamp}-{safe}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """NaN / Inf become strings so every line stays strict JSON (``"nan"``, ``"inf"``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(data: Any, indent: int | None = None) -> str:
    """Strict JSON (no NaN literals) of plain data, numpy / torch scalars included."""
    return json.dumps(_clean(data), indent=indent, default=_json_default, allow_nan=False)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename (readers never see half)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # gone after the rename; half-written on a full disk
            tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- reading
def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing, unreadable or half written."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def json_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSON-lines file that may be being appended to, and how many
    complete lines were not one (unparsable, or not an object). The text after the last
    newline is incomplete (or empty) and left out; blank lines are skipped."""
    rows, bad = [], 0
    for line in text.split("\n")[:-1]:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            bad += 1
    return rows, bad


# ----------------------------------------------------------------------------- stop requests
def request_stop(run_dir: str | Path) -> Path:
    """Ask a running training to stop cleanly (checkpoint, state "stopped") at its next step."""
    path = Path(run_dir) / STOP_FILE
    path.write_text(f"stop requested at {time.strftime('%Y-%m-%d %H:%M:%S')}\n", encoding="utf-8")
    return path


def stop_requested(run_dir: str | Path) -> bool:
    """Whether a ``STOP`` file waits in the run directory (the engine checks every step)."""
    return (Path(run_dir) / STOP_FILE).exists()


def clear_stop(run_dir: str | Path) -> None:
    """Remove a ``STOP`` request of an earlier session (before a run continues)."""
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)


def is_run_dir(path: str | Path, markers: tuple[str, ...] = RUN_MARKERS) -> bool:
    """A folder holding one of ``markers`` (default: status.json or config.json)."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in markers)


def scan_run_dirs(
    root: str | Path, markers: tuple[str, ...] = RUN_MARKERS
) -> tuple[list[Path], list[str]]:
    """``(run directories, skipped)`` directly under ``root``: the folders holding one of
    ``markers`` (see :func:`is_run_dir`), newest run id first, and a sentence for each symbolic
    link that was not followed because it leads out of ``root``. ``([], [])`` when ``root``
    does not exist."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    real_root = root.resolve()
    found, skipped = [], []
    for child in root.iterdir():
        if child.is_symlink():
            target = child.resolve()
            if not target.is_relative_to(real_root):
                skipped.append(
                    f"{child} is a symbolic link to {target}, outside the runs folder {root}: "
                    "not listed (move the run into the runs folder to see it)"
                )
                continue
        if is_run_dir(child, markers):
            found.append(child)
    return sorted(found, key=lambda p: p.name, reverse=True), skipped


def find_run_dirs(root: str | Path, markers: tuple[str, ...] = RUN_MARKERS) -> list[Path]:
    """The run directories of :func:`scan_run_dirs`; each link left out is a warning
    (:class:`RunLinkSkipped`) so that scripts see it too."""
    found, skipped = scan_run_dirs(root, markers)
    for note in skipped:
        warnings.warn(note, RunLinkSkipped, stacklevel=2)
    return found


class RunLinkSkipped(UserWarning):
    """A symbolic link in the runs folder leads out of it and was not followed."""


def runs_root() -> Path:
    """The runs directory: ``$DINODIAG_RUNS_DIR`` or ``runs/`` (relative to the working dir)."""
    return Path(os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR)
