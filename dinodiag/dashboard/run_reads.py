"""Small reads of the runs directory for the pages' caches: a file's version (the cache key
that makes a page read a file again only when it changed), a run's start and the ids of every
run (over which each run's colour is assigned).

    stamp = file_stamp(run_dir, rundir.METRICS_FILE)   # (mtime, size), (0.0, 0) when absent
    started_at(run_dir)                                # unix time the run started, or None
"""

from __future__ import annotations

from pathlib import Path

from dinodiag import rundir


def file_stamp(folder: str | Path, name: str) -> tuple[float, int]:
    """``(modification time, size)`` of ``folder / name``, ``(0.0, 0)`` when it cannot be
    read: part of a cache key, so an appended or rewritten file is read again."""
    try:
        stat = (Path(folder) / name).stat()
    except OSError:
        return 0.0, 0
    return stat.st_mtime, stat.st_size


def started_at(run_dir: str | Path) -> float | None:
    """When a run started (unix seconds, its status file's ``started``); None when the
    status is missing or holds no number there."""
    started = (rundir.read_json(Path(run_dir) / rundir.STATUS_FILE) or {}).get("started")
    return float(started) if isinstance(started, (int, float)) else None


def known_runs(root: str | Path) -> list[str]:
    """The id of every run folder under the runs directory ``root``."""
    return [path.name for path in rundir.scan_run_dirs(root)[0]]
