"""Who may write a run directory: the trainer's exclusive lock on it, and the errors of a run
directory that cannot be used (:class:`RunDirError`, whose messages name the path, the
reason and what to do). :mod:`dinodiag.rundir.writer` writes the files; the readers and the
liveness check are in :mod:`dinodiag.rundir`.

    lock = RunLock(run_dir)
    lock.acquire()        # mkdir, flock run.lock, write run.pid; RunDirError naming the holder
    ...
    lock.release()        # remove run.pid and run.lock, let go
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
from pathlib import Path

from dinodiag.errors import TrainingError
from dinodiag.rundir.layout import LOCK_FILE, PID_FILE, STOP_FILE
from dinodiag.rundir.liveness import read_pid_file, write_pid_file

try:  # POSIX; elsewhere a run directory is not locked (a warning says so)
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

LOCK_WAIT_SECONDS = 2.0  # how long claim() waits out a reader's instant probe of the lock

# Descriptors of the locks this process holds. A forked child (a DataLoader worker) would
# share each lock and keep it after a SIGKILL of the trainer, making a dead run read "running"
# until the workers notice: every forked child closes its copies at once.
_HELD_FDS: set[int] = set()


def _close_held_locks_in_child() -> None:
    for fd in _HELD_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_FDS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_locks_in_child)


FULL_DISK_MIB = 64  # a write that fails without a reason on a disk with less free is "full"


class RunDirError(TrainingError):
    """A run directory cannot be used: not a directory, not writable, full, locked by another
    trainer, or a file in it is damaged (the message names the path and what to do)."""


def os_error_message(path: str | Path, exc: OSError | None, doing: str) -> str:
    """``"cannot {doing} {path}: {reason}: {what to do}."`` for an operating-system error.

    ``exc`` None means the reason is unknown (torch's checkpoint writer loses the errno of a
    full disk): the free space of the disk is given instead, the usual cause.
    """
    path = Path(path)
    where = path if path.is_dir() else path.parent
    code = getattr(exc, "errno", None)
    reason = (getattr(exc, "strerror", None) or str(exc)) if exc is not None else "write failed"
    if code in (errno.ENOSPC, errno.EDQUOT):
        advice = f"the disk is full ({_free_space(where)}): free some space"
    elif code == errno.EROFS:
        advice = f"{where} is on a read-only filesystem: remount it read-write"
    elif code in (errno.EACCES, errno.EPERM):
        advice = f"{where} is not writable: make it writable (chmod u+w {where})"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        advice = "a part of the path is a file, not a directory: give another --run-dir"
    elif exc is None:
        free = _free_mib(where)
        if free is not None and free < FULL_DISK_MIB:
            advice = f"the disk is full ({free:.0f} MiB free on it): free some space"
        else:
            advice = f"{_free_space(where)}; see torch's message"
    else:
        advice = "check the disk"
    return f"cannot {doing} {path}: {reason}: {advice}."


def _free_mib(path: Path) -> float | None:
    """Free space (MiB) of the disk of ``path`` or of its nearest existing parent."""
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free / 2**20
        except OSError:
            continue
    return None


def _free_space(path: Path) -> str:
    free = _free_mib(path)
    return "free space unknown" if free is None else f"{free:.0f} MiB free on its disk"


# ----------------------------------------------------------------------------- the lock
class RunLock:
    """The exclusive lock of one run directory, held by its trainer for its whole life.

    ``run.lock`` is locked with ``flock``: the kernel lets go when the process ends, however
    it ends (SIGKILL, out-of-memory killer, container restart), so a free lock always means
    no trainer. The holder's pid and start time are written next to it in ``run.pid``.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.created_dir = False  # claim() made the directory (abandon() removes it again)
        self.locked = False  # holds the flock (False where the filesystem has no flock)
        self.claimed = False  # acquire() succeeded (locked, or pid record only)
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK_FILE

    def acquire(self, wait: float = LOCK_WAIT_SECONDS) -> str | None:
        """Create the directory if needed, take the lock, write ``run.pid``.

        Returns a warning sentence when this filesystem cannot lock (liveness then rests on the
        pid and its start time), else None. Raises :class:`RunDirError` when the path is a file,
        cannot be written, or another process holds the lock (naming its pid).
        """
        self._make_dir()
        warning = None
        if fcntl is None:
            warning = "file locks are not available on this system"
        else:
            warning = self._lock(time.monotonic() + wait)
        try:
            write_pid_file(self.run_dir, locked=self.locked)
        except OSError as exc:
            self.release()
            raise RunDirError(os_error_message(self.run_dir / PID_FILE, exc, "write")) from None
        self.claimed = True
        if warning is not None:
            warning = (
                f"{self.path} cannot be locked ({warning}): a second trainer on this run "
                "directory would not be refused; its liveness is read from the pid and its "
                "start time only."
            )
        return warning

    def _make_dir(self) -> None:
        run_dir = self.run_dir
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(
                f"--run-dir {run_dir} is a file, not a directory: give the path of a new or an "
                "existing run directory."
            )
        if run_dir.is_dir():
            return
        try:
            run_dir.mkdir(parents=True)
            self.created_dir = True
        except FileExistsError:
            if not run_dir.is_dir():
                raise RunDirError(
                    f"--run-dir {run_dir}: a part of the path is a file, not a directory: give "
                    "another --run-dir."
                ) from None
        except OSError as exc:
            raise RunDirError(
                os_error_message(run_dir, exc, "create the run directory")
                + " Or give another --run-dir."
            ) from None

    def _lock(self, deadline: float) -> str | None:
        """Take the flock (retrying until ``deadline``); a warning when flock is unsupported."""
        assert fcntl is not None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._remove_dir()
                message = os_error_message(self.path, exc, "create the lock file")
                raise RunDirError(message + " Or give another --run-dir.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise RunDirError(self._held_message()) from None
            except OSError as exc:  # this filesystem has no flock: the file is of no use
                os.close(fd)
                with contextlib.suppress(OSError):
                    self.path.unlink()
                return exc.strerror or str(exc)
            if self._still_at_path(fd):
                self._fd, self.locked = fd, True
                _HELD_FDS.add(fd)
                return None
            os.close(fd)  # a trainer ending at this instant removed that file: lock the new one

    def _still_at_path(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _held_message(self) -> str:
        record = read_pid_file(self.run_dir) or {}
        pid = record.get("pid") if record.get("locked") else None
        who = (
            f"pid {pid}" + (f" on {record['host']}" if record.get("host") else "")
            if pid is not None
            else f"a process whose {PID_FILE} is not written yet"
        )
        stop = f"create {self.run_dir / STOP_FILE}" + (f" or kill -TERM {pid}" if pid else "")
        return (
            f"{self.run_dir} is in use by another trainer ({who} holds {self.path}): two "
            f"trainers would overwrite each other's checkpoint and metrics. Wait for it to end, "
            f"or stop it ({stop}) before training or resuming here, or give another --run-dir."
        )

    def release(self) -> None:
        """Remove ``run.pid`` (when it is ours) and ``run.lock``, then let go of the lock.

        The lock file is removed while still locked; a trainer that opened it meanwhile sees
        that it is gone and locks a new one (see :meth:`_lock`). Errors are ignored: a
        directory that became read-only keeps the files, and a free lock still says "ended".
        """
        if self.claimed:
            with contextlib.suppress(OSError):
                if (read_pid_file(self.run_dir) or {}).get("pid") == os.getpid():
                    (self.run_dir / PID_FILE).unlink()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            _HELD_FDS.discard(self._fd)
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None
        self.locked = self.claimed = False

    def _remove_dir(self) -> None:
        """Remove the directory again when this lock made it and nothing else is in it."""
        if self.created_dir:
            with contextlib.suppress(OSError):
                self.run_dir.rmdir()
            self.created_dir = False
