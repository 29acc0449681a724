"""The trainer's side of the run directory (:mod:`dinodiag.rundir` is the contract and
the readers): the writer of its files, taking the directory with its lock first
(:mod:`dinodiag.rundir.lock`), and the strict reads a resume needs.

    writer = RunWriter(run_dir)
    writer.claim()        # mkdir, lock run.lock, write run.pid; RunDirError naming the holder
    ...                   # validate the inputs; on a bad one writer.abandon() leaves no trace
    writer.open()         # metrics.jsonl, then status.json / config.json as the run goes
    writer.close()        # release the lock, remove run.pid and run.lock

Every operating-system error becomes a :class:`RunDirError` whose message names the file,
the reason (permission denied, disk full, not a directory) and what to do.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, NamedTuple

from dinodiag.rundir.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PLANNED,
    STATUS_FILE,
    dumps,
    is_run_dir,
    write_json_atomic,
)
from dinodiag.rundir.lock import RunDirError, RunLock, os_error_message

# Lines of metrics.jsonl that a resume could not read are moved here, never deleted.
UNREADABLE_FILE = "metrics.unreadable.jsonl"


class Trimmed(NamedTuple):
    """What :meth:`RunWriter.drop_metrics_after` removed from ``metrics.jsonl``."""

    after: int  # rows logged after the checkpoint's step (work that is redone)
    unreadable: list[int]  # 1-based line numbers moved to UNREADABLE_FILE

    def sentence(self) -> str:
        """``""`` when nothing was removed, else "; ..." for the resume event."""
        parts = []
        if self.after:
            parts.append(f"{self.after} metric rows logged after it were dropped")
        if self.unreadable:
            shown = ", ".join(str(n) for n in self.unreadable[:10])
            more = f" and {len(self.unreadable) - 10} more" if len(self.unreadable) > 10 else ""
            parts.append(
                f"{len(self.unreadable)} unreadable line(s) of {METRICS_FILE} (line {shown}"
                f"{more}: not JSON, or a step that is not a finite number) were moved to "
                f"{UNREADABLE_FILE}"
            )
        return "".join(f"; {p}" for p in parts)


def _row_step(line: str) -> float | None:
    """The step of one metrics line, or None when the line is not a usable row."""
    try:
        row = json.loads(line)
        value = row.get("step", 0)
    except (ValueError, AttributeError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- the writer
class RunWriter:
    """Writes one run directory (only rank 0 has ``enabled=True``; others do nothing).

    ``time`` in every row is ``elapsed()``: seconds since the run started, continued from
    ``time_offset`` when a run is resumed. Rows logged before :meth:`open` wait in memory and
    are written first by it, so that a run refused during set-up writes nothing.
    """

    def __init__(self, run_dir: str | Path, *, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.lock = RunLock(self.run_dir)
        self._t0 = time.monotonic()
        self._metrics: Any = None
        self._pending: list[str] = []  # rows logged before open()
        self._status: dict[str, Any] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def set_time_offset(self, offset: float) -> None:
        """Continue the clock of a resumed run from ``offset`` seconds."""
        self._t0 = time.monotonic() - offset

    def claim(self) -> str | None:
        """Take the run directory (:meth:`RunLock.acquire`): a warning or None."""
        return self.lock.acquire() if self.enabled else None

    def open(self) -> None:
        """Open ``metrics.jsonl`` for appending (claiming the directory first if needed) and
        write the rows logged so far."""
        if not self.enabled:
            return
        if not self.lock.claimed:
            self.claim()
        path = self.run_dir / METRICS_FILE
        try:
            self._metrics = open(path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise RunDirError(os_error_message(path, exc, "write")) from None
        pending, self._pending = self._pending, []
        for line in pending:
            self._append(line)

    def _append(self, line: str) -> None:
        try:
            self._metrics.write(line)
            self._metrics.flush()
        except OSError as exc:
            raise RunDirError(os_error_message(self.run_dir / METRICS_FILE, exc, "write")) from None

    def write_config(self, data: dict[str, Any]) -> None:
        if self.enabled:
            self._write_json(CONFIG_FILE, data)

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        try:
            write_json_atomic(self.run_dir / name, data)
        except OSError as exc:
            raise RunDirError(os_error_message(self.run_dir / name, exc, "write")) from None

    def log(self, kind: str, step: int, epoch: float, **values: Any) -> dict[str, Any]:
        """Append one metrics row (flushed at once; kept until :meth:`open`); returns it."""
        row = {
            "kind": kind,
            "step": step,
            "epoch": round(epoch, 4),
            "time": round(self.elapsed(), 3),
        }
        row.update(values)
        if self.enabled:
            line = dumps(row) + "\n"
            if self._metrics is not None:
                self._append(line)
            else:
                self._pending.append(line)
        return row

    def status(
        self, state: str, step: int, message: str, *, final: bool = False, **fields: Any
    ) -> None:
        """Rewrite ``status.json``; ``fields`` persist into later writes.

        ``final``: the last write of the run. When the atomic write fails (the directory became
        read-only, the disk is full) the file is then rewritten in place, which needs no new
        directory entry, so that the reason of the failure still reaches the dashboard.
        """
        self._status.update(fields)
        self._status.update(state=state, step=step, message=message, updated=time.time())
        self._status.setdefault("pid", os.getpid())
        self._status.setdefault("host", socket.gethostname())
        if not self.enabled:
            return
        try:
            write_json_atomic(self.run_dir / STATUS_FILE, self._status)
        except OSError as exc:
            path = self.run_dir / STATUS_FILE
            if not final:
                raise RunDirError(os_error_message(path, exc, "write")) from None
            try:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(dumps(self._status, indent=2) + "\n")
            except OSError:
                raise RunDirError(os_error_message(path, exc, "write")) from None

    def update(self, **fields: Any) -> None:
        """Rewrite ``status.json`` with new ``fields``, state and message unchanged."""
        current = self._status
        if "state" in current:
            self.status(current["state"], current["step"], current["message"], **fields)
        else:
            self._status.update(fields)

    def drop_metrics_after(self, step: int) -> Trimmed:
        """Remove rows logged after ``step`` (work lost since the last checkpoint, on resume).

        A line that is not a metrics row (a partial last line, corrupt bytes, a step that is
        not a finite number such as ``1e400``) is never fatal and never lost without a word:
        it is moved to :data:`UNREADABLE_FILE` beside ``metrics.jsonl`` and its line number is
        returned, so the resume event can name it.
        """
        if not self.enabled:
            return Trimmed(0, [])
        path = self.run_dir / METRICS_FILE
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            return Trimmed(0, [])
        kept, after, bad, bad_lines = [], 0, [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            row_step = _row_step(line)
            if row_step is None:
                bad.append(number)
                bad_lines.append(line)
            elif row_step > step:
                after += 1
            else:
                kept.append(line)
        if bad_lines:
            aside = self.run_dir / UNREADABLE_FILE
            try:
                with aside.open("a", encoding="utf-8") as f:
                    f.writelines(line + "\n" for line in bad_lines)
            except OSError as exc:
                raise RunDirError(os_error_message(aside, exc, "write")) from None
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise RunDirError(os_error_message(path, exc, "rewrite")) from None
        return Trimmed(after, bad)

    def close(self) -> None:
        """Close the metrics file and give the directory up (:meth:`RunLock.release`)."""
        if self._metrics is not None:
            with contextlib.suppress(OSError):  # a full disk fails the last flush too
                self._metrics.close()
            self._metrics = None
        if self.enabled:
            self.lock.release()

    def abandon(self) -> None:
        """Give the directory up after a refused set-up: nothing of this run stays in it (a
        directory :meth:`claim` created is removed again)."""
        self._pending = []
        self.close()
        self.lock._remove_dir()


# ----------------------------------------------------------------------------- resuming
def load_run_config(run_dir: str | Path, action: str = "resume") -> dict[str, Any]:
    """``config.json`` of a run to resume (or, ``action="start the planned run"``, a plan of
    :func:`~dinodiag.rundir.write_plan`), read strictly: :class:`RunDirError` naming the file
    when the directory or the file is missing, unreadable or not a JSON object (a resume
    never falls back to a preset's values, and never rewrites a file it could not read)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not run_dir.exists():
        raise RunDirError(f"cannot {action}: the run directory {run_dir} does not exist.")
    if not run_dir.is_dir():
        raise RunDirError(f"cannot {action}: --run-dir {run_dir} is a file, not a run directory.")
    if not path.exists():
        nothing = "" if (run_dir / CHECKPOINT_FILE).exists() else f" and no {CHECKPOINT_FILE}"
        what = (
            "it is not a run directory, or its run never got past its set-up): start a new run "
            "without --resume."
            if action == "resume"
            else "it is not a run directory): give a run directory with its config.json."
        )
        raise RunDirError(f"cannot {action}: {run_dir} has no {CONFIG_FILE}{nothing} ({what}")
    unchanged = "dinodiag did not change it; restore it from a backup or start a new run"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RunDirError(
            f"cannot {action}: {path} cannot be read ({exc.strerror or exc}): make it readable."
        ) from None
    except UnicodeDecodeError:
        raise RunDirError(f"cannot {action}: {path} is not text (damaged?); {unchanged}.") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunDirError(
            f"cannot {action}: {path} is not valid JSON ({exc}); {unchanged}."
        ) from None
    if not isinstance(data, dict):
        raise RunDirError(
            f"cannot {action}: {path} holds a JSON {type(data).__name__}, not the run's config "
            f"object; {unchanged}."
        )
    return data


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
