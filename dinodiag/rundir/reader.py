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
  second trainer on the same directory is refused (:mod:`dinodiag.rundir.lock`). The
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

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported by read_metrics, when a frame is read
    import pandas as pd

from dinodiag.rundir.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    PLANNED,
    STATUS_FILE,
    find_run_dirs,
    json_lines,
    read_json,
)
from dinodiag.rundir.liveness import is_alive

_TEXT_KEYS = ("kind", "level", "code", "message", "term")


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
    import pandas as pd

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
