"""Dashboard runs as real processes: launch, state, stop, resume, queue, delete, dead processes.

Each run is a planned ``tiny-test`` run (16 px, one block) started as ``python -m dinodiag
train --run-dir D``: seconds long, most of it the import of torch.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dinodiag import rundir, runs
from dinodiag.errors import TrainingError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.compare import metrics_json
from dinodiag.runs.run_plan import plan_run
from tests.facts import assert_mentions

BASE = get_train_preset("tiny-test").config
TINY = plan_run(BASE, {"run.eval_every": 2}, check_data=False)  # 4 steps, k-NN at 0, 2, 4
LONG = plan_run(  # until stopped
    BASE, {"run.epochs": 10000.0, "run.max_steps": 0, "run.max_seconds": 0}, check_data=False
)


def wait_for(check: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_state(run_dir: Path, states: tuple[str, ...], timeout: float = 60.0) -> runs.RunInfo:
    wait_for(lambda: runs.read_run(run_dir).state in states, timeout, f"{run_dir.name} {states}")
    return runs.read_run(run_dir)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny run, launched and finished (shared by the read-only tests)."""
    root = tmp_path_factory.mktemp("runs")
    run_dir = runs.launch(TINY, root=root)
    info = wait_state(run_dir, ("finished", "failed"))
    assert info.state == "finished", runs.console_tail(run_dir)
    return run_dir


def test_runs_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path))
    assert runs.runs_root() == tmp_path
    monkeypatch.delenv(runs.RUNS_ENV)
    assert runs.runs_root() == Path("runs")


def test_a_launched_run_writes_its_directory_and_finishes(finished: Path):
    info = runs.read_run(finished)
    assert info.state == "finished" and not info.active
    assert info.step == 4 and info.total_steps == 4
    assert info.preset == "tiny-test" and info.pipeline == "small-images"
    assert info.knn_top1 is not None and info.knn_top1_start is not None
    assert info.has_checkpoint
    for name in (
        "config.json",
        "metrics.jsonl",
        "status.json",
        "checkpoint.pt",
        "launch.json",
        "console.log",
    ):
        assert (finished / name).is_file(), name
    command = runs.read_launch(finished)["command"]
    assert command[2:] == ["dinodiag", "train", "--run-dir", str(finished)]  # the plan says all
    config = rundir.read_config(finished)
    assert "planned" not in config and config["run"]["eval_every"] == 2  # resolved by the run
    assert "finished 4 steps" in runs.console_tail(finished)
    rows = json.loads(metrics_json(finished))
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [0, 2, 4]
    assert [r.run_id for r in runs.list_runs(finished.parent)] == [finished.name]


def test_stop_keeps_a_checkpoint_and_resume_continues(tmp_path: Path):
    run_dir = runs.launch(LONG, root=tmp_path)
    assert runs.read_run(run_dir).state == "running"  # at once, before torch is imported
    wait_for(lambda: runs.read_run(run_dir).step >= 3, what="a few steps")
    assert "stop requested" in runs.stop_run(run_dir)
    stopped = wait_state(run_dir, ("stopped", "failed"))
    assert stopped.state == "stopped" and stopped.has_checkpoint, stopped.message
    assert "SIGTERM" in stopped.message or "STOP" in stopped.message
    runs.resume_run(run_dir, more_steps=3)
    assert runs.read_run(run_dir).state == "running"  # "starting (resuming)" until set up
    resumed = wait_state(run_dir, ("finished", "failed"))
    assert resumed.state == "finished", resumed.message
    assert resumed.step == stopped.step + 3
    events = rundir.read_events(run_dir)
    assert "resumed" in set(events["code"])


def test_resume_refuses_an_active_run_and_a_run_without_checkpoint(tmp_path: Path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    rundir.write_json_atomic(run_dir / "status.json", {"state": "stopped", "step": 0})
    with pytest.raises(TrainingError, match="no checkpoint.pt"):
        runs.resume_run(run_dir)
    (run_dir / "QUEUED").write_text("{}")
    with pytest.raises(TrainingError, match="stop it before resuming"):
        runs.resume_run(run_dir)


def test_a_dead_process_reads_failed_not_running(tmp_path: Path):
    run_dir = tmp_path / "20260101-000000-dead"
    run_dir.mkdir()
    status = {"state": "running", "step": 7, "pid": 999_999_999, "message": "training"}
    rundir.write_json_atomic(run_dir / "status.json", status)
    info = runs.read_run(run_dir)
    assert info.state == "failed" and info.step == 7
    assert "no longer running" in info.message
    launched = tmp_path / "20260101-000001-never"  # launched, died before writing a status
    launched.mkdir()
    rundir.write_json_atomic(launched / runs.LAUNCH_FILE, {"command": ["x"], "preset": "p"})
    (launched / runs.CONSOLE_FILE).write_text("ModuleNotFoundError: No module named 'dinodiag'\n")
    info = runs.read_run(launched)
    assert info.state == "failed" and "ModuleNotFoundError" in info.message
    assert [r.state for r in runs.list_runs(tmp_path)] == ["failed", "failed"]


def test_stop_while_starting_ends_it_as_stopped(tmp_path: Path):
    run_dir = runs.launch(LONG, root=tmp_path)
    message = runs.stop_run(run_dir)  # torch is still importing: no status, no signal handler
    info = wait_state(run_dir, ("stopped", "failed"))
    assert info.state == "stopped", (message, info.message)
    assert runs.stop_run(run_dir) == "not running"


def test_a_queue_runs_one_after_the_other_and_a_queued_run_can_be_cancelled(tmp_path: Path):
    first, second, third = runs.launch_queue([LONG, TINY, TINY], root=tmp_path)
    wait_for(lambda: runs.read_run(first).step >= 1, what="the first run to train")
    assert runs.read_run(second).state == "queued" and runs.read_run(third).state == "queued"
    assert_mentions(runs.stop_run(second), "cancelled", "not started")
    assert runs.read_run(second).state == "stopped" and runs.read_run(second).step == 0
    runs.stop_run(first)
    assert wait_state(first, ("stopped", "failed")).state == "stopped"
    assert wait_state(third, ("finished", "failed")).state == "finished"
    cancelled = runs.read_run(second)
    assert cancelled.state == "stopped" and "cancelled" in cancelled.message
    assert rundir.read_config(second)["planned"] is True  # it never ran: still its plan
    end_first = rundir.read_json(first / "status.json")["updated"]
    assert rundir.read_json(third / "status.json")["started"] >= end_first


def test_a_queue_whose_process_died_marks_its_waiting_runs_failed(tmp_path: Path):
    run_dir = tmp_path / "20260101-000000-q"
    run_dir.mkdir()
    rundir.write_json_atomic(run_dir / runs.LAUNCH_FILE, {"command": ["x"]})
    rundir.write_json_atomic(run_dir / runs.QUEUED_FILE, {"runner": {"pid": 999_999_999}})
    info = runs.read_run(run_dir)
    assert info.state == "failed" and "queue process ended" in info.message
    # While the queue process starts a run it holds QUEUED renamed to STARTING: the run never
    # reads "failed: did not start" in the instant before its own process is recorded.
    (run_dir / runs.QUEUED_FILE).rename(run_dir / runs.manager.STARTING_FILE)
    assert runs.read_run(run_dir).state == "failed"  # that queue process is dead
    rundir.write_json_atomic(
        run_dir / runs.manager.STARTING_FILE, {"runner": rundir.process_record()}
    )
    assert runs.read_run(run_dir).state == "queued"


def test_delete_refuses_active_runs_and_foreign_folders(finished: Path, tmp_path: Path):
    copy = tmp_path / finished.name
    shutil.copytree(finished, copy)
    (copy / "QUEUED").write_text("{}")
    with pytest.raises(TrainingError, match="stop it before deleting"):
        runs.delete_run(copy, root=tmp_path)
    (copy / "QUEUED").unlink()
    with pytest.raises(TrainingError, match="not a run directory"):
        runs.delete_run(tmp_path, root=tmp_path)
    with pytest.raises(TrainingError, match="not a run directory"):
        runs.delete_run(copy, root=finished.parent)
    runs.delete_run(copy, root=tmp_path)
    assert not copy.exists()


def test_scaled_pipeline_keeps_counts_and_scales():
    from dinodiag.augment.presets import get_preset
    from dinodiag.recipe.plan import scaled_pipeline

    dinov2 = scaled_pipeline(get_preset("dinov2").config, 32, 4)
    assert (dinov2.global_crops_size, dinov2.local_crops_size) == (32, 12)
    assert dinov2.local_crops_number == 8 and dinov2.local_crops_scale == (0.05, 0.32)
    fixed = scaled_pipeline(get_preset("seed-fixed").config, 32, 4)
    assert (fixed.global_crops_size, fixed.local_crops_size, fixed.patch_size) == (32, 32, 4)


def test_stop_never_signals_a_process_that_is_not_the_run(tmp_path: Path, monkeypatch):
    """A pid from the record whose start time differs (reused after the run died, or after a
    container restart), or a trainer's record whose lock is free, gets no signal."""
    import os
    import signal

    signals: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: signals.append(sig) if sig else None)
    run_dir = tmp_path / "20260101-000000-x"
    run_dir.mkdir()
    rundir.write_json_atomic(run_dir / "status.json", {"state": "running", "step": 3, "pid": 1})
    me = rundir.process_record()
    rundir.write_json_atomic(
        run_dir / rundir.PID_FILE, {**me, "start_ticks": me["start_ticks"] + 1}
    )
    assert runs.stop_run(run_dir) == "not running"
    rundir.write_pid_file(run_dir, locked=True)  # the right start time, but the lock is free
    (run_dir / rundir.LOCK_FILE).touch()
    assert runs.stop_run(run_dir) == "not running"
    assert signal.SIGTERM not in signals and not (run_dir / rundir.STOP_FILE).exists()
    assert runs.read_run(run_dir).state == "failed"


def test_a_run_held_by_a_trainer_cannot_be_started_twice(tmp_path: Path):
    from dinodiag.rundir.lock import RunLock

    run_dir = tmp_path / "20260101-000000-held"
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        assert runs.read_run(run_dir).state == "running"  # the lock says so, no status yet
        with pytest.raises(TrainingError) as info:
            runs.manager.start_process(["true"], run_dir)
        # which run, who holds it (this process's lock), and what to do
        assert_mentions(str(info.value), run_dir.name, f"pid {os.getpid()}", "another", "stop it")
        assert rundir.read_pid_file(run_dir)["locked"] is True  # its record left alone
        (run_dir / rundir.PID_FILE).unlink()  # a trainer whose record was lost
        assert "STOP file" in runs.stop_run(run_dir) and rundir.stop_requested(run_dir)
    finally:
        lock.release()


def test_links_out_of_the_runs_folder_are_skipped_and_named(tmp_path: Path):
    root, outside = tmp_path / "runs", tmp_path / "other" / "20260101-000000-o"
    root.mkdir()
    outside.mkdir(parents=True)
    rundir.write_json_atomic(outside / "status.json", {"state": "finished", "step": 1})
    (root / "20260101-000000-o").symlink_to(outside)
    assert runs.list_runs(root) == []
    (note,) = runs.manager.skipped_links(root)
    assert "20260101-000000-o" in note and "outside the runs folder" in note
    with pytest.raises(TrainingError, match="not a run directory"):
        runs.delete_run(root / "20260101-000000-o", root=root)
    assert outside.exists()


def test_a_run_that_died_shows_its_last_console_lines(tmp_path: Path):
    run_dir = tmp_path / "20260101-000000-killed"
    run_dir.mkdir()
    rundir.write_json_atomic(
        run_dir / "status.json",
        {"state": "running", "step": 9, "pid": 999_999_999, "checkpoint_step": 8},
    )
    (run_dir / runs.CONSOLE_FILE).write_text("step 9\nKilled\n")
    info = runs.read_run(run_dir)
    assert info.state == "failed" and "from its checkpoint at step 8" in info.message
    assert info.message.endswith("Console: step 9\nKilled")


def test_a_plan_is_the_run_directorys_config_and_its_recipe_a_file_next_to_it(tmp_path: Path):
    from dinodiag.augment.presets import get_preset, load_config

    recipe = get_preset("seed-fixed").config
    plan = plan_run(BASE, {"data.local_crops": 2}, recipe=recipe, label="mine")
    run_dir = runs.prepare(plan, root=tmp_path, extra={"story": "s1"})
    assert run_dir.name.endswith("-mine") and rundir.is_planned(run_dir)
    config = rundir.read_config(run_dir)
    assert config["data"]["pipeline"] == str(run_dir / "pipeline.yaml")
    assert config["data"]["local_crops"] == 2 and config["name"] == "tiny-test"
    written = load_config(str(run_dir / "pipeline.yaml"))
    assert (written.global_crops_size, written.local_crops_number) == (16, 2)
    launch = runs.read_launch(run_dir)
    assert launch["pipeline"] == "seed-fixed" and launch["story"] == "s1"
    info = runs.read_run(run_dir)  # not started: no process, no status
    assert info.preset == "tiny-test" and info.pipeline == "seed-fixed"


def test_match_steps_plans_as_many_steps_as_the_run_before_without_a_time_limit(tmp_path: Path):
    timed = plan_run(BASE, {"run.max_seconds": 600, "run.max_steps": 50}, check_data=False)
    before, after = tmp_path / "before", tmp_path / "after"
    runs.manager.write_run_plan(timed, after)
    rundir.write_json_atomic(after / runs.LAUNCH_FILE, {"command": ["x"]})
    before.mkdir()
    rundir.write_json_atomic(before / "status.json", {"state": "finished", "step": 0})
    assert runs.manager.match_steps(after, before) is None  # no step done: the plan is kept
    assert rundir.read_config(after)["run"]["max_steps"] == 50
    rundir.write_json_atomic(before / "status.json", {"state": "finished", "step": 7})
    assert runs.manager.match_steps(after, before) == 7
    config = rundir.read_config(after)
    assert config["planned"] is True and config["run"]["max_steps"] == 7
    assert config["run"]["max_seconds"] is None and config["data"]["batch_size"] == 4
    assert runs.read_launch(after)["matched_steps"] == 7


def test_a_queued_run_with_same_steps_trains_the_steps_of_the_run_before(tmp_path: Path):
    three = plan_run(BASE, {"run.max_steps": 3}, check_data=False)
    timed = plan_run(BASE, {"run.max_seconds": 600}, check_data=False)  # 4 steps planned
    first, second = runs.launch_queue(
        [three, timed], root=tmp_path, extra=[{}, {runs.manager.SAME_STEPS: True}]
    )
    assert wait_state(first, ("finished", "failed")).step == 3
    info = wait_state(second, ("finished", "failed"), timeout=90)
    assert info.state == "finished" and info.step == 3, info.message
    assert rundir.read_config(second)["run"]["max_seconds"] is None
