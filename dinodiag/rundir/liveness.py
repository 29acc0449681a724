"""Whether a run directory's trainer still runs: its lock (a free ``flock`` means no trainer,
however it ended) or the pid with its start time (never a reused pid, never the host)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from dinodiag.rundir.layout import LOCK_FILE, PID_FILE, read_json, write_json_atomic

try:  # POSIX: the run lock is a flock (Windows has no fcntl: liveness is the pid record only)
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]


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
    that instant retries (:class:`dinodiag.rundir.lock.RunLock` waits ~2 s).
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
