"""When a run directory is read again: the modification times of the files a run is read from
(:func:`run_stamp`, the page's cache key and ``--follow``'s trigger) and whether it may still
be training (:func:`log_is_growing`, so its report is re-read)."""

from __future__ import annotations

import time
from pathlib import Path

from dinodiag.runs.dinov2_metrics import METRICS_FILE
from dinodiag.runs.launches import RUNNING_SECONDS

STAMPED = (METRICS_FILE, "logs/log.txt", "log.txt", "config.yaml", "metrics.jsonl", "config.json")


def run_stamp(path: str | Path) -> tuple[float, ...]:
    """Modification times of the files a run is read from (0 for a missing one): a changed
    stamp means the log grew and the run is read again (the page's cache, ``--follow``)."""
    path = Path(path)
    names = (*STAMPED, "eval")
    return tuple((path / n).stat().st_mtime if (path / n).exists() else 0.0 for n in names)


def log_is_growing(path: str | Path, now: float | None = None) -> bool:
    """A file of the run was written within :data:`~dinodiag.runs.launches.RUNNING_SECONDS`:
    it may still be training, so its report is re-read."""
    newest = max(run_stamp(path), default=0.0)
    return newest > 0 and (now if now is not None else time.time()) - newest < RUNNING_SECONDS
