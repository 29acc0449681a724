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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported by read_metrics, when a frame is read
    import pandas as pd

from dinodiag.rundir.layout import (
    ACTIVE_STATES,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CONSOLE_FILE,
    LAUNCH_FILE,
    LISTED_MARKERS,
    METRICS_FILE,
    PLANNED,
    QUEUED_FILE,
    STARTING_FILE,
    STATUS_FILE,
    is_run_dir,
    json_lines,
    read_json,
    runs_root,
    scan_run_dirs,
)
from dinodiag.rundir.liveness import is_alive, process_alive

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


def read_status(run_dir: str | Path, alive: bool | None = None) -> dict[str, Any]:
    """``status.json`` with a live check: a "running" run whose process is gone reads as
    "failed" with a message saying so. A directory without status reads as "failed" (nothing
    ran) unless its process is alive (then "running", "starting"). ``alive``: the liveness
    the caller already probed (:func:`~dinodiag.rundir.liveness.is_alive`), so one read of a
    run probes it once."""
    run_dir = Path(run_dir)
    status = read_json(run_dir / STATUS_FILE)
    alive = is_alive(run_dir) if alive is None else alive
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


@dataclass(frozen=True)
class RunInfo:
    """One run directory as the dashboard shows it."""

    run_id: str  # the directory name: start time + label
    path: Path  # the run directory
    state: str  # one of STATES: queued | running | finished | stopped | failed
    message: str  # what it is doing, or why it ended (what to try on failure)
    step: int  # optimisation steps done
    total_steps: int | None  # planned steps (None until the run has set up)
    epoch: float | None  # passes over the training data so far
    eta_s: float | None  # estimated seconds left
    started: float | None  # unix time of the start (None while queued)
    device: str | None  # e.g. "cpu (2 threads, fp32)"
    preset: str | None  # training preset (cpu-demo ...)
    pipeline: str | None  # crop recipe name (seed-fixed ...)
    data: str | None  # dataset spec
    knn_top1: float | None  # last k-NN top-1 (%)
    knn_top1_start: float | None  # k-NN top-1 at step 0 (random weights), the baseline
    has_checkpoint: bool  # resumable / inspectable
    story: str | None = None  # id of the comparison ("yours vs reference") that launched it
    role: str | None = None  # its part in it: "yours" or "reference" (seed story: too)
    story_kind: str | None = None  # "versus" or "seed" (the seed story)

    @property
    def active(self) -> bool:
        """Queued or running: the page keeps refreshing."""
        return self.state in ACTIVE_STATES


def console_tail(run_dir: Path, lines: int = 12) -> str:
    """The last lines of the run's console output ("" when there is none)."""
    try:
        text = (Path(run_dir) / CONSOLE_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _state(run_dir: Path) -> dict[str, Any]:
    marker = next(
        (run_dir / name for name in (QUEUED_FILE, STARTING_FILE) if (run_dir / name).exists()),
        None,
    )
    queued = read_json(marker) if marker is not None else None
    if marker is not None:
        runner = (queued or {}).get("runner")
        if runner is None or process_alive(runner):
            return {"state": "queued", "step": 0, "message": "waiting for the run before it"}
        return {
            "state": "failed",
            "step": 0,
            "message": "the queue process ended before this run started: start it again.",
        }
    alive = is_alive(run_dir)  # probed once for this read
    status = read_status(run_dir, alive=alive)
    if status.get("state") != "running" and alive:
        status = {**status, "state": "running", "message": "starting (resuming)"}
    if status.get("state") == "failed" and not (run_dir / STATUS_FILE).exists():
        tail = console_tail(run_dir, 4)
        status = {**status, "message": "the run did not start" + (f": {tail}" if tail else ".")}
    elif status.get("state") == "failed" and _last_written_state(run_dir) == "running":
        tail = console_tail(run_dir, 2)  # it ended without a final status: say how, if it said
        if tail:
            status = {**status, "message": f"{status.get('message', '')} Console: {tail}"}
    return status


def _last_written_state(run_dir: Path) -> str | None:
    return (read_json(run_dir / STATUS_FILE) or {}).get("state")


def _numeric(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_run(run_dir: str | Path) -> RunInfo:
    """The state of one run directory (live-checked: a dead process reads "failed")."""
    run_dir = Path(run_dir)
    status = _state(run_dir)
    config = read_config(run_dir) or {}
    launch_info = read_json(run_dir / LAUNCH_FILE) or {}
    total = _numeric(status.get("total_steps"))
    return RunInfo(
        run_id=run_dir.name,
        path=run_dir,
        state=str(status.get("state", "failed")),
        message=str(status.get("message", "")),
        step=int(status.get("step") or 0),
        total_steps=int(total) if total else None,
        epoch=_numeric(status.get("epoch")),
        eta_s=_numeric(status.get("eta_s")),
        started=_numeric(status.get("started")),
        device=status.get("device"),
        preset=config.get("name") or launch_info.get("preset"),
        pipeline=(config.get("pipeline") or {}).get("name") or launch_info.get("pipeline"),
        data=(config.get("data") or {}).get("data") or launch_info.get("data"),
        knn_top1=_numeric(status.get("knn_top1")),
        knn_top1_start=_numeric(status.get("knn_top1_start")),
        has_checkpoint=(run_dir / CHECKPOINT_FILE).exists(),
        story=launch_info.get("story"),
        role=launch_info.get("role"),
        story_kind=launch_info.get("story_kind"),
    )


def is_listed_run_dir(path: Path) -> bool:
    """A run directory as :func:`list_runs` finds it: launch.json, status.json or config.json."""
    return is_run_dir(path, LISTED_MARKERS)


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run under ``root`` (default :func:`runs_root`), newest first. A symbolic link
    leading out of ``root`` is not followed (:func:`skipped_links` says which)."""
    root = Path(root) if root is not None else runs_root()
    return [read_run(run_dir) for run_dir in scan_run_dirs(root, LISTED_MARKERS)[0]]
