"""A DINOv2 log split into the launches that wrote it, and how each one ended.

DINOv2 appends every launch and every resume to the same ``training_metrics.json`` and
``logs/log.txt``: the iteration goes back (to 0 for a fresh start, to the checkpoint's for a
resume) at each new launch. Read as one run, six one-row launches look like a loss "unchanged
for a stretch" and an old launch's last row looks like the final loss. Here:

- :func:`launch_ids` numbers the launches of rows in file order (a new one where the iteration
  does not increase, or after a ``Starting training from iteration`` line of the console log);
- :func:`lineage` is what the chosen launch's model went through: its own rows, and for a
  resume the rows of the launch it resumed from, before the resume point;
- :func:`describe_launches` says for each launch where it started and stopped, whether it
  reached its planned iterations, and why not where the console log tells (DINOv2's NaN
  assert, the data loader running out) or that it cannot tell (killed, crashed, or running).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

RUNNING_SECONDS = 600.0  # a log written this recently may belong to a run still going


@dataclass(frozen=True)
class Launch:
    """One launch (or resume) of a DINOv2 run, from its rows of the log."""

    index: int  # 0-based, in file order
    first: int  # first logged iteration
    last: int  # last logged iteration
    rows: int  # log rows
    planned: int | None  # iterations the launch was to run (console [i/n], or the config)
    end: str  # "finished" | "nan" | "data_end" | "running" | "stopped" | "unknown"
    end_evidence: str  # what the end rests on, in words
    final_loss: float | None  # total_loss of its last row

    @property
    def resumed(self) -> bool:
        return self.first > 0

    @property
    def early(self) -> bool:
        """Ended before its planned iterations (not counting a run still going)."""
        return self.end in ("nan", "data_end", "stopped", "unknown") and (
            self.planned is None or self.last < self.planned - 1
        )

    def line(self) -> str:
        """``launch 3: iterations 0-1230 (124 rows), stopped at 1230 of 125000: ...``"""
        start = "resumed at" if self.resumed else "from"
        of = f" of {self.planned}" if self.planned else ""
        loss = (
            f", final total_loss {self.final_loss:.4f}"
            if self.final_loss is not None and math.isfinite(self.final_loss)
            else f", final total_loss {self.final_loss}"
            if self.final_loss is not None
            else ""
        )
        return (
            f"launch {self.index + 1}: {start} iteration {self.first} to {self.last}{of} "
            f"({self.rows} row{'s' if self.rows != 1 else ''}){loss}; {self.end_evidence}"
        )


def launch_ids(iterations: Sequence[float], start_rows: Sequence[int] = ()) -> np.ndarray:
    """Launch number of each row (file order): a new launch where the iteration does not
    increase, or at a row index in ``start_rows`` (the first row after a "Starting training"
    line). NaN iterations stay in the current launch."""
    ids = np.zeros(len(iterations), dtype=np.int64)
    starts = set(start_rows)
    current, previous = 0, -math.inf
    for i, value in enumerate(iterations):
        value = float(value)
        new = i > 0 and (i in starts or (math.isfinite(value) and value <= previous))
        if new:
            current += 1
        ids[i] = current
        if math.isfinite(value):
            previous = value
    return ids


def lineage(frame: pd.DataFrame, launch: int) -> pd.DataFrame:
    """The rows the model of ``launch`` went through (``frame`` with ``launch`` and
    ``iteration`` columns): its own rows, preceded, for a resume, by the earlier launches' rows
    before its first iteration (walking back through resumes of resumes)."""
    if frame.empty:
        return frame
    own = frame[frame["launch"] == launch]
    parts = [own]
    start = float(own["iteration"].min()) if len(own) else 0.0
    for earlier in range(launch - 1, -1, -1):
        if start <= 0:
            break
        rows = frame[(frame["launch"] == earlier) & (frame["iteration"] < start)]
        if rows.empty:
            continue
        parts.insert(0, rows)
        start = float(rows["iteration"].min())
    return pd.concat(parts).reset_index(drop=True)


def describe_launches(
    frame: pd.DataFrame,
    *,
    planned_total: int | None,
    nan_lines: Sequence[int] = (),
    total_time_lines: Sequence[int] = (),
    start_lines: Sequence[int] = (),
    console: bool = False,
    log_file: Path | None = None,
    now: float | None = None,
) -> list[Launch]:
    """One :class:`Launch` per launch of ``frame`` (``launch``, ``iteration``, ``total_loss``,
    optionally ``planned`` and ``line``: the console line of each row). ``planned_total`` is
    the config's ``optim.epochs x OFFICIAL_EPOCH_LENGTH`` when known; ``nan_lines`` /
    ``total_time_lines`` / ``start_lines`` the console lines of those records; ``console``
    whether a console log was read at all; ``log_file`` the newest log (its age tells a run
    that may still be going)."""
    if frame.empty:
        return []
    launches = []
    count = int(frame["launch"].max()) + 1
    age = None
    if log_file is not None and log_file.exists():
        age = (now if now is not None else time.time()) - log_file.stat().st_mtime
    for index in range(count):
        rows = frame[frame["launch"] == index]
        if rows.empty:
            continue
        its = pd.to_numeric(rows["iteration"], errors="coerce").dropna()
        first, last = int(its.min()), int(its.max())
        planned = planned_total
        if "planned" in rows and rows["planned"].notna().any():
            planned = int(rows["planned"].dropna().iloc[-1])
        loss = None
        if "total_loss" in rows and rows["total_loss"].notna().any():
            loss = float(rows["total_loss"].dropna().iloc[-1])
        end, evidence = _end(
            index == count - 1,
            last,
            planned,
            _lines_between(rows, index, frame, nan_lines, start_lines),
            _lines_between(rows, index, frame, total_time_lines, start_lines),
            console and "line" in rows,
            age,
        )
        launches.append(Launch(index, first, last, len(rows), planned, end, evidence, loss))
    return launches


def _lines_between(
    rows: pd.DataFrame,
    index: int,
    frame: pd.DataFrame,
    lines: Sequence[int],
    start_lines: Sequence[int],
) -> list[int]:
    """The console ``lines`` after this launch's first row and before the next launch's."""
    if "line" not in rows or not len(lines) or rows["line"].isna().all():
        return []
    begin = float(rows["line"].min())
    following = frame[frame["launch"] == index + 1]
    end = math.inf
    if len(following) and "line" in following and following["line"].notna().any():
        end = float(following["line"].min())
    later_starts = [s for s in start_lines if s > float(rows["line"].max())]
    if later_starts:
        end = min(end, float(later_starts[0]))
    return [n for n in lines if begin < n < end]


def _end(
    is_last: bool,
    last: int,
    planned: int | None,
    nan: list[int],
    total_time: list[int],
    console: bool,
    age: float | None,
) -> tuple[str, str]:
    of = f" of {planned}" if planned else ""
    if planned is not None and last >= planned - 1:
        return "finished", f"reached its planned {planned} iterations"
    if nan:
        return "nan", (
            f'stopped after iteration {last}{of}: "NaN detected" at log line {nan[0]} '
            "(DINOv2 stops on a NaN loss; an inf does not stop it)"
        )
    if total_time:
        return "data_end", (
            f'ended at iteration {last}{of} with "Total time" (log line {total_time[0]}): '
            "the loop finished early, so the data loader ran out (a finite dataset or sampler)"
        )
    if is_last and age is not None and age < RUNNING_SECONDS:
        return "running", (
            f"last logged at iteration {last}{of}, {age:.0f} s ago: it may still be running"
        )
    if not console:
        return "unknown", (
            f"stopped at iteration {last}{of}; without the console log (logs/log.txt) it "
            "cannot be told whether a NaN loss, the data running out or a kill stopped it"
        )
    followed = "" if is_last else " before the next launch"
    return "stopped", (
        f"stopped at iteration {last}{of}{followed} with no NaN and no end of the loop in "
        "the log: killed (out of memory, a job time limit, Ctrl-C) or crashed; the log "
        "cannot tell which (the job's stderr or the scheduler's record can)"
    )
