"""Training runs seen from the dashboard: launch ``python -m dinodiag train`` as its own
process, find the runs in the runs directory, stop / resume / delete them.

The dashboard never trains in its own process: :func:`launch` starts the CLI with
``subprocess.Popen`` (its own session, console output in ``console.log`` of the run
directory) and the page reads the run directory back (:mod:`dinodiag.rundir`). A run
survives page switches, closed browsers and restarts of the app: :func:`list_runs` finds it
again, and a run whose process died without a final status reads "failed".

    plan = plan_run(get_train_preset("cpu-demo").config, {"run.max_seconds": 120})
    run_dir = launch(plan)                        # runs/20260509-220101-cpu-demo
    read_run(run_dir).state                       # queued | running | finished | stopped | failed
    stop_run(run_dir); resume_run(run_dir, more_seconds=60); delete_run(run_dir)

A run is launched by its plan (:mod:`dinodiag.runs.run_plan`): ``config.json`` holds the whole
TrainConfig with ``"planned": true`` (:func:`dinodiag.rundir.write_plan`) and the process
is ``python -m dinodiag train --run-dir D``, which trains it (the trainer rewrites config.json,
resolved, when it starts). Besides the engine's files a dashboard run directory holds
``launch.json`` (the command), ``console.log``, ``pipeline.yaml`` (a recipe of the plan, which
its data.pipeline names) and, while it waits in a queue (:func:`launch_queue`), ``QUEUED``
(``STARTING`` while the queue process starts it). A run queued with ``same_steps`` trains as
many steps as the run before it in the queue reached, without a time limit. A
run the trainer holds (its ``run.lock``) is never started twice, and Stop signals only a
process whose pid and start time match the run's record (``rundir.live_process``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dinodiag import rundir
from dinodiag.augment.config import save_config
from dinodiag.errors import TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.plan import PIPELINE_FILE, RunPlan
from dinodiag.rundir.layout import (
    CONSOLE_FILE,
    LAUNCH_FILE,
    LISTED_MARKERS,
    QUEUED_FILE,
    STARTING_FILE,
    runs_root,
)
from dinodiag.rundir.reader import is_listed_run_dir, read_run
from dinodiag.runs.run_plan import with_data_checked

SAME_STEPS = "same_steps"  # launch.json: train as many steps as the run before it in the queue

_children: dict[int, subprocess.Popen[bytes]] = {}  # processes this one started (to reap)
_children_lock = threading.Lock()


# ----------------------------------------------------------------------------- processes
def _reap() -> None:
    """Collect children that ended (else they linger as zombies while the app runs)."""
    with _children_lock:
        for pid, process in list(_children.items()):
            if process.poll() is not None:
                del _children[pid]


def spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session (it outlives the app), its output and the command
    line itself appended to ``log_path``; kept in ``_children`` to be reaped."""
    _reap()
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    with _children_lock:
        _children[process.pid] = process
    return process


def start_process(command: list[str], run_dir: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session, console output appended to ``console.log``.

    The pid file is written at once (not ``locked``), so the run reads "running" before the
    training has imported torch; the trainer rewrites it when it takes the run's lock. Raises
    :class:`TrainingError` while another trainer holds the lock (its record is left alone).
    """
    if rundir.lock_held(run_dir):
        holder = (rundir.read_pid_file(run_dir) or {}).get("pid")
        raise TrainingError(
            f"run {Path(run_dir).name} is being trained by another process (pid {holder}): "
            "stop it before starting it again."
        )
    process = spawn(command, run_dir / CONSOLE_FILE)
    rundir.write_pid_file(run_dir, process.pid)
    return process


# ----------------------------------------------------------------------------- launching
def _new_run_dir(root: Path, label: str) -> Path:
    base = rundir.new_run_id(label)
    path, n = root / base, 2
    while path.exists():
        path, n = root / f"{base}-{n}", n + 1
    return path


def write_run_plan(plan: RunPlan, run_dir: Path) -> TrainConfig:
    """Write ``plan`` into the new or empty ``run_dir``: its recipe as ``pipeline.yaml`` (the
    config's data.pipeline then names that file) and ``config.json``, the planned config that
    ``train --run-dir run_dir`` trains. Returns the config written."""
    config = plan.config
    run_dir.mkdir(parents=True, exist_ok=True)
    if plan.recipe is not None:
        path = save_config(plan.recipe, run_dir / PIPELINE_FILE)
        config = config.with_overrides({"data.pipeline": str(path)})
    rundir.write_plan(run_dir, config.to_dict())
    return config


def train_command(run_dir: Path) -> list[str]:
    """``python -m dinodiag train --run-dir D``: the process that trains a planned run."""
    return [sys.executable, "-m", "dinodiag", "train", "--run-dir", str(run_dir)]


def prepare(plan: RunPlan, root: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Create the run directory of ``plan``: its plan (:func:`write_run_plan`) and
    ``launch.json``. The training images are counted first when the plan has not opened them.

    Raises :class:`DataError` (the dataset cannot be opened, the batch is larger than it)
    before anything is written.
    """
    plan = with_data_checked(plan)
    root = Path(root) if root is not None else runs_root()
    run_dir = _new_run_dir(root, plan.label or plan.config.name)
    run_dir.mkdir(parents=True)
    config = write_run_plan(plan, run_dir)
    record = {
        "command": train_command(run_dir),
        "created": time.time(),
        "preset": config.name,
        "pipeline": plan.pipeline.name,
        "data": config.data.data,
        **(extra or {}),
    }
    rundir.write_json_atomic(run_dir / LAUNCH_FILE, record)
    return run_dir


def launch(plan: RunPlan, root: Path | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Start a training run now; returns its run directory (the process runs on its own)."""
    run_dir = prepare(plan, root, extra)
    start_process(read_launch(run_dir)["command"], run_dir)
    return run_dir


def launch_queue(
    plans: list[RunPlan], root: Path | None = None, extra: list[dict[str, Any]] | None = None
) -> list[Path]:
    """Prepare every run, then start them one after the other in a detached queue process
    (``python -m dinodiag.runs.manager queue DIR ...``), so that they do not share the cores.
    An ``extra`` with ``"same_steps": True`` gives its run as many steps as the one before
    it reached (:func:`match_steps`)."""
    extras = extra or [{} for _ in plans]
    run_dirs = [prepare(plan, root, more) for plan, more in zip(plans, extras, strict=True)]
    for run_dir in run_dirs:
        rundir.write_json_atomic(run_dir / QUEUED_FILE, {"queued": time.time()})
    command = [sys.executable, "-m", "dinodiag.runs.manager", "queue", *map(str, run_dirs)]
    runner = spawn(command, run_dirs[0] / "queue.log")
    info = rundir.process_record(runner.pid)
    for run_dir in run_dirs:
        _update_json(run_dir / QUEUED_FILE, runner=info)
    return run_dirs


def match_steps(run_dir: Path, previous: Path) -> int | None:
    """Plan ``run_dir`` (not started yet) to train as many steps as ``previous`` reached, with
    no time limit, so that two runs of a comparison see the same steps whatever their speed.
    Returns the steps, or None (nothing changed) when ``previous`` did no step."""
    steps = int(rundir.read_status(previous).get("step") or 0)
    if steps < 1 or not rundir.is_planned(run_dir):
        return None
    config = TrainConfig.from_run_dir(run_dir, "match the steps of").with_overrides(
        {"run.max_steps": steps, "run.max_seconds": None}
    )
    rundir.write_json_atomic(
        run_dir / rundir.CONFIG_FILE, {rundir.PLANNED: True, **config.to_dict()}
    )
    _update_json(run_dir / LAUNCH_FILE, matched_steps=steps)
    return steps


def _update_json(path: Path, **changes: Any) -> None:
    data = rundir.read_json(path)
    if data is not None:  # the runner may have claimed the marker meanwhile
        rundir.write_json_atomic(path, {**data, **changes})


def run_queue(run_dirs: list[Path]) -> None:
    """The queue process: start each prepared run that was not cancelled, wait for it."""
    for previous, run_dir in zip([None, *run_dirs], run_dirs, strict=False):
        starting = run_dir / STARTING_FILE
        try:  # claims the run (a cancel removed QUEUED first); readers see "queued" meanwhile
            os.rename(run_dir / QUEUED_FILE, starting)
        except FileNotFoundError:
            continue
        try:
            if previous is not None and read_launch(run_dir).get(SAME_STEPS):
                match_steps(run_dir, previous)
            process = start_process(read_launch(run_dir)["command"], run_dir)
        finally:
            starting.unlink(missing_ok=True)  # its pid file says "running" from now on
        process.wait()


def read_launch(run_dir: Path) -> dict[str, Any]:
    data = rundir.read_json(Path(run_dir) / LAUNCH_FILE)
    if data is None:
        raise TrainingError(f"{run_dir} has no readable {LAUNCH_FILE}: it was not started here.")
    return data


# ----------------------------------------------------------------------------- reading runs
def skipped_links(root: str | Path | None = None) -> list[str]:
    """A sentence for each symbolic link in ``root`` that :func:`list_runs` did not follow
    because it leads out of the runs folder (for the page to show)."""
    root = Path(root) if root is not None else runs_root()
    return rundir.scan_run_dirs(root, LISTED_MARKERS)[1]


# ----------------------------------------------------------------------------- control
def stop_run(run_dir: str | Path, wait: float = 3.0) -> str:
    """Stop a run cleanly: the engine checkpoints and ends "stopped" at its next step.

    Writes the ``STOP`` file and sends SIGTERM. A queued run is cancelled; a process still
    importing (no status yet) is ended and marked "stopped". Returns what was done.
    """
    run_dir = Path(run_dir)
    try:
        (run_dir / QUEUED_FILE).unlink()
        rundir.write_json_atomic(
            run_dir / rundir.STATUS_FILE,
            {"state": "stopped", "step": 0, "message": "cancelled before it started"},
        )
        return "cancelled (it had not started)"
    except FileNotFoundError:
        pass
    info = rundir.live_process(run_dir)  # pid and start time checked: never a reused pid
    if info is None:
        if rundir.lock_held(run_dir):  # a trainer whose run.pid is gone: the STOP file reaches it
            rundir.request_stop(run_dir)
            return "stop requested (STOP file): it stops at its next step and keeps a checkpoint"
        return "not running"
    had_status = (run_dir / rundir.STATUS_FILE).exists()
    rundir.request_stop(run_dir)
    try:
        os.kill(info["pid"], signal.SIGTERM)  # the engine handles it like the STOP file
    except ProcessLookupError:
        return "not running (it ended just now)"
    if had_status:
        return "stop requested: it stops at its next step and keeps a checkpoint"
    deadline = time.monotonic() + wait
    while rundir.process_alive(info) and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap()
    if not (run_dir / rundir.STATUS_FILE).exists():
        rundir.write_json_atomic(
            run_dir / rundir.STATUS_FILE,
            {"state": "stopped", "step": 0, "message": "stopped while starting (no step done)"},
        )
    return "stopped while starting"


def resume_run(
    run_dir: str | Path,
    *,
    more_steps: int | None = None,
    more_seconds: float | None = None,
    threads: int | None = None,
) -> Path:
    """Continue a stopped / finished / failed run from its checkpoint in a new process.

    Without options it continues to its planned end (a stopped run). ``more_steps`` trains
    that many steps past the current one, without time limit; ``more_seconds`` extends a
    time-limited run (its clock continues on resume). Raises :class:`TrainingError` when it
    cannot resume.
    """
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    if info.active:
        raise TrainingError(f"run {info.run_id} is still {info.state}: stop it before resuming.")
    if not info.has_checkpoint:
        raise TrainingError(
            f"run {info.run_id} has no {rundir.CHECKPOINT_FILE} (it ended before its first "
            "checkpoint): start a new run instead."
        )
    command = [sys.executable, "-m", "dinodiag", "train", "--run-dir", str(run_dir), "--resume"]
    if more_steps:
        target = info.step + int(more_steps)
        resolved = (rundir.read_config(run_dir) or {}).get("resolved") or {}
        per_epoch = max(1, int(resolved.get("steps_per_epoch") or 1))
        command += [
            "--max-steps",
            str(target),
            "--epochs",
            f"{target / per_epoch + 1:g}",
            "--set",
            "run.max_seconds=none",
        ]
    if more_seconds:
        command += ["--max-seconds", f"{elapsed_seconds(run_dir) + float(more_seconds):g}"]
    if threads:
        command += ["--threads", str(int(threads))]
    rundir.clear_stop(run_dir)
    start_process(command, run_dir)
    return run_dir


def elapsed_seconds(run_dir: str | Path) -> float:
    """Training time of a run so far (the ``time`` of its last metrics row), 0 when none."""
    frame = rundir.read_metrics(run_dir)
    times = frame["time"].dropna() if "time" in frame else []
    return float(times.max()) if len(times) else 0.0


def delete_run(run_dir: str | Path, root: str | Path | None = None) -> None:
    """Delete a run directory (refused while it runs or outside the runs directory)."""
    run_dir = Path(run_dir).resolve()
    root = (Path(root) if root is not None else runs_root()).resolve()
    if run_dir.parent != root or not is_listed_run_dir(run_dir):
        raise TrainingError(f"{run_dir} is not a run directory of {root}: nothing deleted.")
    info = read_run(run_dir)
    if info.active:
        raise TrainingError(f"run {info.run_id} is {info.state}: stop it before deleting it.")
    shutil.rmtree(run_dir)


def main(argv: list[str] | None = None) -> int:
    """``python -m dinodiag.runs.manager queue DIR ...``: the queue process of
    :func:`launch_queue`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "queue":
        print("usage: python -m dinodiag.runs.manager queue RUN_DIR [RUN_DIR ...]", file=sys.stderr)
        return 2
    run_queue([Path(a) for a in args[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
