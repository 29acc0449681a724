"""The run directory contract: what a training run writes, and pure readers for the dashboard.

``runs/<run-id>/`` holds:

- ``config.json``: the resolved config: ``pipeline`` (``dinodiag.augment.config.to_dict``),
  ``model``, ``optim``, ``data``, ``run``, ``name`` (the preset), ``world_size`` and ``device``.
- ``metrics.jsonl``: one JSON object per line with ``kind`` ("train" | "eval" | "event"),
  ``step``, ``epoch`` and ``time`` (seconds since the start of the run, continued on resume).
  Train rows carry ``loss``, each loss term and the diagnostics (``img_per_s`` ...); eval rows
  ``knn_top1`` / ``knn_top5`` in percent (the first at step 0); events ``level``, ``code`` and
  ``message`` (a sentence saying what to try).
- ``status.json``: ``state`` (one of :data:`STATES` but "queued"), ``step``,
  ``total_steps``, ``epoch``, ``message``, ``eta_s``, ``pid``, ``started``, ``updated``,
  ``device``, ``knn_top1``, ``knn_top1_start`` (rewritten atomically as the run goes).
- ``checkpoint.pt``: the latest checkpoint (written to a temporary file, then renamed).
- ``run.pid``: ``{"pid", "start_ticks", "host"}`` while the process lives (see
  :func:`process_alive`: the pid and its start time decide, never the host).
- ``STOP``: created by :func:`request_stop`; the run ends cleanly at its next step.

A run launched from the dashboard may also wait in a queue (``QUEUED``, see
:mod:`dinodiag.runs.manager`) before its process starts: that is the state "queued".

Readers never write and never raise on a file being written at the same moment: a partial
last line of ``metrics.jsonl`` is ignored, a half-written JSON file reads as missing.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"
PID_FILE = "run.pid"
STOP_FILE = "STOP"
# Every state a run reads as. "queued" only before its process starts (dashboard queues);
# status.json holds one of the others.
STATES = ("queued", "running", "finished", "stopped", "failed")
ACTIVE_STATES = ("queued", "running")  # still going: pages refresh, resume / delete refuse
RUN_MARKERS = (STATUS_FILE, CONFIG_FILE)  # a folder holding one of these is a run directory
METRIC_KINDS = ("train", "eval", "event")
_TEXT_KEYS = ("kind", "level", "code", "message", "term")


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
    tmp.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- processes
def process_start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
    try:
        return int(fields[19])  # field 22 of the file: starttime
    except (IndexError, ValueError):
        return None


def process_record(pid: int | None = None) -> dict[str, Any]:
    """``{"pid", "start_ticks", "host"}`` of process ``pid`` (default: this one), for
    :func:`process_alive`. The host is recorded for people; it never decides liveness."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start_ticks": process_start_ticks(pid), "host": socket.gethostname()}


def process_alive(record: dict[str, Any] | None) -> bool:
    """Whether the process of a :func:`process_record` still runs.

    A pid that exists but started at another time than recorded was reused by another
    process: not alive. A zombie (ended, not yet reaped by its parent) is not alive. Without
    ``/proc`` (not Linux) the signal-0 check is all there is.
    """
    pid = (record or {}).get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux)
    if stat[stat.rfind(")") + 2 :].split()[:1] == ["Z"]:
        return False
    ticks = (record or {}).get("start_ticks")
    return ticks is None or process_start_ticks(pid) == ticks


def write_pid_file(run_dir: str | Path, pid: int | None = None) -> None:
    """Record the training process so that :func:`is_alive` can tell a crash from a run."""
    write_json_atomic(Path(run_dir) / PID_FILE, process_record(pid))


def read_pid_file(run_dir: str | Path) -> dict[str, Any] | None:
    """The :func:`process_record` of the run's process (None once it has ended cleanly)."""
    return read_json(Path(run_dir) / PID_FILE)


def is_alive(run_dir: str | Path) -> bool:
    """True while the run's training process exists (pid file, else the pid in status.json)."""
    record = read_pid_file(run_dir)
    if record is None:
        record = {"pid": (read_json(Path(run_dir) / STATUS_FILE) or {}).get("pid")}
    return process_alive(record)


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


# ----------------------------------------------------------------------------- reading
def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when missing, unreadable or half written."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``config.json`` as a dict (None until the run has written it)."""
    return read_json(Path(run_dir) / CONFIG_FILE)


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """``status.json`` with a live check: a "running" run whose process is gone reads as
    "failed" with a message saying so. A directory without status reads as "failed" (nothing
    ran) unless its process is alive (then "running", "starting")."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / STATUS_FILE)
    alive = is_alive(run_dir)
    if status is None:
        if alive:
            return {"state": "running", "step": 0, "message": "starting"}
        return {
            "state": "failed",
            "step": 0,
            "message": f"no {STATUS_FILE} in {run_dir}: the "
            "run did not start (see its console output)",
        }
    status = dict(status)
    if status.get("state") == "running" and not alive:
        status["state"] = "failed"
        status["message"] = (
            f"the training process (pid {status.get('pid')}) is no longer running and did not "
            f"write a final status at step {status.get('step')}: it was killed or crashed "
            "(out of memory?). Resume it with --resume."
        )
    return status


def read_metrics(run_dir: str | Path, kind: str | None = None) -> pd.DataFrame:
    """``metrics.jsonl`` as a DataFrame (one row per line, file order), optionally one ``kind``.

    A partial last line (being written) is ignored; unreadable lines elsewhere are counted
    in ``frame.attrs["bad_lines"]``. Values logged as "nan" / "inf" come back as floats.
    """
    path = Path(run_dir) / METRICS_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    lines = text.split("\n")
    complete = lines[:-1]  # the text after the last newline is incomplete (or empty)
    rows, bad = [], 0
    for line in complete:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if not isinstance(row, dict):
            bad += 1
            continue
        if kind is None or row.get("kind") == kind:
            rows.append({k: _number(k, v) for k, v in row.items()})
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["kind", "step", "epoch", "time"])
    frame.attrs["bad_lines"] = bad
    return frame


def _number(key: str, value: Any) -> Any:
    if isinstance(value, str) and value in ("nan", "inf", "-inf") and key not in _TEXT_KEYS:
        return float(value)
    return value


def read_events(run_dir: str | Path) -> pd.DataFrame:
    """The event rows (alerts, skipped k-NN, resume, failure) of a run."""
    return read_metrics(run_dir, kind="event")


def is_run_dir(path: str | Path, markers: tuple[str, ...] = RUN_MARKERS) -> bool:
    """A folder holding one of ``markers`` (default: status.json or config.json)."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in markers)


def find_run_dirs(root: str | Path, markers: tuple[str, ...] = RUN_MARKERS) -> list[Path]:
    """The run directories directly under ``root`` (see :func:`is_run_dir`), by name, newest
    run id first; [] when ``root`` does not exist."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        (child for child in root.iterdir() if is_run_dir(child, markers)),
        key=lambda p: p.name,
        reverse=True,
    )


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """Every run directory under ``root`` (:func:`find_run_dirs`), newest start first:
    ``{"run_id", "path", "state", "step", "total_steps", "started", "message", "preset",
    "data", "knn_top1", "knn_top1_start", ...}`` (the status fields, live-checked)."""
    runs = []
    for run_dir in find_run_dirs(root):
        config = read_config(run_dir) or {}
        runs.append(
            {
                **read_status(run_dir),
                "run_id": run_dir.name,
                "path": str(run_dir),
                "preset": config.get("name"),
                "data": (config.get("data") or {}).get("data"),
                "has_checkpoint": (run_dir / CHECKPOINT_FILE).exists(),
            }
        )
    runs.sort(key=lambda r: (str(r.get("started") or ""), r["run_id"]), reverse=True)
    return runs


# ----------------------------------------------------------------------------- the writer
class RunWriter:
    """Writes one run directory (only rank 0 has ``enabled=True``; others do nothing).

    ``time`` in every row is ``elapsed()``: seconds since the run started, continued from
    ``time_offset`` when a run is resumed.
    """

    def __init__(self, run_dir: str | Path, *, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._t0 = time.monotonic()
        self._metrics: Any = None
        self._status: dict[str, Any] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def set_time_offset(self, offset: float) -> None:
        """Continue the clock of a resumed run from ``offset`` seconds."""
        self._t0 = time.monotonic() - offset

    def open(self) -> None:
        """Create the directory, record the pid, open ``metrics.jsonl`` for appending."""
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_pid_file(self.run_dir)
        self._metrics = open(self.run_dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115

    def write_config(self, data: dict[str, Any]) -> None:
        if self.enabled:
            write_json_atomic(self.run_dir / CONFIG_FILE, data)

    def log(self, kind: str, step: int, epoch: float, **values: Any) -> dict[str, Any]:
        """Append one metrics row (flushed at once); returns the row."""
        row = {
            "kind": kind,
            "step": step,
            "epoch": round(epoch, 4),
            "time": round(self.elapsed(), 3),
        }
        row.update(values)
        if self.enabled and self._metrics is not None:
            self._metrics.write(dumps(row) + "\n")
            self._metrics.flush()
        return row

    def status(self, state: str, step: int, message: str, **fields: Any) -> None:
        """Rewrite ``status.json``; ``fields`` persist into later writes."""
        self._status.update(fields)
        self._status.update(state=state, step=step, message=message, updated=time.time())
        self._status.setdefault("pid", os.getpid())
        self._status.setdefault("host", socket.gethostname())
        if self.enabled:
            write_json_atomic(self.run_dir / STATUS_FILE, self._status)

    def drop_metrics_after(self, step: int) -> int:
        """Remove rows logged after ``step`` (work lost since the last checkpoint, on resume).

        Returns how many rows were dropped; a partial last line is dropped too.
        """
        if not self.enabled:
            return 0
        path = self.run_dir / METRICS_FILE
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            return 0
        kept, dropped = [], 0
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row_step = int(row.get("step", 0))
            except (ValueError, TypeError, AttributeError):
                dropped += 1
                continue
            if row_step > step:
                dropped += 1
            else:
                kept.append(line)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
        return dropped

    def close(self) -> None:
        """Close the metrics file and remove the pid file (the process is done)."""
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.enabled:
            (self.run_dir / PID_FILE).unlink(missing_ok=True)
