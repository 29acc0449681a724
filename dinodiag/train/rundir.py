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
  ``device``, ``knn_top1``, ``knn_top1_start``, ``checkpoint_step`` (rewritten atomically as
  the run goes).
- ``checkpoint.pt``: the latest checkpoint (written to a temporary file, then renamed): after
  the first step, every ``run.checkpoint_seconds`` (60 s) and ``run.checkpoint_every`` steps,
  and at the end.
- ``run.lock``: the trainer holds an exclusive lock (``flock``) on it for its whole life, so a
  second trainer on the same directory is refused (:mod:`dinodiag.train.run_lock`). The
  kernel drops the lock when the process ends, however it ends: a free lock means no trainer.
- ``run.pid``: ``{"pid", "start_ticks", "host", "locked"}``, the process that holds the lock
  (or, ``locked`` false, the process the dashboard started that has not taken it yet). See
  :func:`is_alive`: the lock, or the pid with its start time, decide; never the host.
- ``STOP``: created by :func:`request_stop`; the run ends cleanly at its next step.

A run launched from the dashboard may also wait in a queue (``QUEUED``, see
:mod:`dinodiag.runs.manager`) before its process starts: that is the state "queued".

Readers never write and never raise on a file being written at the same moment: a partial
last line of ``metrics.jsonl`` is ignored, a half-written JSON file reads as missing.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

try:  # POSIX: the run lock is a flock (Windows has no fcntl: liveness is the pid record only)
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

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
STATES = ("queued", "running", "finished", "stopped", "failed")
ACTIVE_STATES = ("queued", "running")  # still going: pages refresh, resume / delete refuse
RUN_MARKERS = (STATUS_FILE, CONFIG_FILE)  # a folder holding one of these is a run directory
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
    try:
        tmp.write_text(dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):  # gone after the rename; half-written on a full disk
            tmp.unlink(missing_ok=True)


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
    process: not alive. A record without a start time cannot be checked where ``/proc`` can
    (it was written elsewhere, or its process ended before it was written): not alive. A
    zombie (ended, not yet reaped by its parent) is not alive. Without ``/proc`` (not Linux)
    the signal-0 check is all there is.
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
        return not Path("/proc/self/stat").exists()  # no /proc at all: signal 0 decides
    if stat[stat.rfind(")") + 2 :].split()[:1] == ["Z"]:
        return False
    ticks = (record or {}).get("start_ticks")
    return ticks is not None and process_start_ticks(pid) == ticks


def write_pid_file(run_dir: str | Path, pid: int | None = None, *, locked: bool = False) -> None:
    """Record the run's process (``locked``: it holds ``run.lock``; see :func:`is_alive`)."""
    write_json_atomic(Path(run_dir) / PID_FILE, {**process_record(pid), "locked": locked})


def read_pid_file(run_dir: str | Path) -> dict[str, Any] | None:
    """The :func:`process_record` of the run's process (None once it has ended cleanly)."""
    return read_json(Path(run_dir) / PID_FILE)


def lock_held(run_dir: str | Path) -> bool | None:
    """Whether a trainer holds the run's ``run.lock``: True / False, None when it cannot tell
    (no flock on this system, or the lock file cannot be opened). No lock file: False.

    The probe takes a shared lock for an instant and gives it back; a trainer that starts at
    that instant retries (:class:`dinodiag.train.run_lock.RunLock` waits ~2 s).
    """
    if fcntl is None:
        return None
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return None  # e.g. the run directory is not readable
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None  # this filesystem has no flock
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def live_process(run_dir: str | Path) -> dict[str, Any] | None:
    """The :func:`process_record` of the run's live process, or None when none runs.

    A record is returned only when its pid runs with the recorded start time (so it may be
    signalled), and, when it was written by a lock holder (``locked``), only while the lock is
    held: a trainer killed with SIGKILL, or gone with its container, leaves a record whose lock
    is free, and a reused pid never makes it alive again.
    """
    record = read_pid_file(run_dir)
    if record is None or not process_alive(record):
        return None
    if record.get("locked") and lock_held(run_dir) is False:
        return None
    return record


def is_alive(run_dir: str | Path) -> bool:
    """True while a trainer holds the run's lock, or the process the dashboard started for it
    (not holding the lock yet, still importing) runs. Never decided by the host name."""
    return lock_held(run_dir) is True or live_process(run_dir) is not None


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


def write_plan(run_dir: str | Path, config: dict[str, Any]) -> Path:
    """Plan a run: ``config.json`` holding ``config`` (``TrainConfig.to_dict()``) and
    ``"planned": true``, in a new or empty ``run_dir``. ``train --run-dir run_dir`` then trains
    it (flags given there still change it); the trainer rewrites config.json, resolved, when
    it starts. How the dashboard launches a run: the config is the whole message."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_run_dir(run_dir, (STATUS_FILE, CHECKPOINT_FILE, CONFIG_FILE)):
        raise FileExistsError(f"{run_dir} already holds a run or a plan: give a new directory.")
    path = run_dir / CONFIG_FILE
    write_json_atomic(path, {PLANNED: True, **config})
    return path


def is_planned(run_dir: str | Path) -> bool:
    """A run directory whose config.json is a plan (:func:`write_plan`) that nothing has
    started yet: no status.json, no checkpoint."""
    run_dir = Path(run_dir)
    if (run_dir / STATUS_FILE).exists() or (run_dir / CHECKPOINT_FILE).exists():
        return False
    return bool((read_config(run_dir) or {}).get(PLANNED))


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
        saved = status.get("checkpoint_step")
        resume = (
            f"Resume it with --resume from its checkpoint at step {saved}."
            if isinstance(saved, int)
            else "It had no checkpoint yet: start it again."
        )
        status["state"] = "failed"
        status["message"] = (
            f"the training process (pid {status.get('pid')}) is no longer running and wrote no "
            f"final status at step {status.get('step')}: it was killed (SIGKILL, the "
            "out-of-memory killer, a machine or container restart) or could not write its run "
            f"directory; its console output says which. {resume}"
        )
    return status


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
    objects, bad = json_lines(text)
    rows = [
        {k: _number(k, v) for k, v in row.items()}
        for row in objects
        if kind is None or row.get("kind") == kind
    ]
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
