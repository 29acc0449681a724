"""The engine and its run directory: one trainer per directory, checkpoints on a clock, and a
directory that cannot be written (a file, read-only from the start or mid-run, a full disk):
each ends with a message naming the path, never a traceback."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from dinodiag import rundir
from dinodiag.recipe.presets import get_train_preset
from dinodiag.rundir import lock as run_lock
from dinodiag.rundir.lock import RunLock
from dinodiag.train import checkpoint as ckpt
from dinodiag.train import engine
from tests.facts import assert_mentions


def tiny(**overrides):
    return get_train_preset("tiny-test").config.with_overrides(overrides)


def quiet(line: str) -> None:
    pass


def checkpoint_step(run) -> int | None:
    path = ckpt.checkpoint_path(run)
    return ckpt.load_checkpoint(run)["step"] if path.exists() else None


def test_a_second_trainer_is_refused_naming_the_first(tmp_path):
    run = tmp_path / "run"
    holder = RunLock(run)
    holder.acquire()
    try:
        result = engine.run_training(tiny(), run, progress=quiet)
        resumed = engine.run_training(tiny(), run, resume=True, progress=quiet)
    finally:
        kept = sorted(p.name for p in run.iterdir())
        holder.release()
    for refused in (result, resumed):
        assert refused.refused and refused.state == "failed"
        assert_mentions(refused.message, "another trainer", f"pid {os.getpid()}")
    assert kept == [rundir.LOCK_FILE, rundir.PID_FILE]  # the holder's own, nothing added


def test_the_lock_is_held_for_the_whole_run_and_given_back(tmp_path):
    run = tmp_path / "run"
    seen = []
    engine.run_training(
        tiny(), run, progress=quiet, on_step=lambda step: seen.append(rundir.lock_held(run))
    )
    assert seen == [True] * 4
    assert rundir.lock_held(run) is False and not rundir.is_alive(run)
    assert not (run / rundir.PID_FILE).exists() and not (run / rundir.LOCK_FILE).exists()


def test_checkpoints_after_the_first_step_then_on_the_clock(tmp_path):
    seen: dict[str, list] = {}
    for name, overrides in (
        ("default", {}),  # 60 s: only the first step's checkpoint in a short run
        ("every step", {"run.checkpoint_seconds": 1e-9}),
        ("off", {"run.checkpoint_seconds": 0}),  # and checkpoint_every 0: only at the end
        ("every 2 steps", {"run.checkpoint_seconds": 0, "run.checkpoint_every": 2}),
    ):
        run = tmp_path / name
        steps: list = []
        cfg = tiny(**{"run.max_steps": 5, **overrides})
        result = engine.run_training(
            cfg,
            run,
            progress=quiet,
            on_step=lambda step, run=run, steps=steps: steps.append(checkpoint_step(run)),
        )
        assert result.state == "finished" and checkpoint_step(run) == 5
        assert rundir.read_status(run)["checkpoint_step"] == 5
        seen[name] = steps
    # The last step's checkpoint is written after the loop (after the final k-NN).
    assert seen["default"] == [1, 1, 1, 1, 1]
    assert seen["every step"] == [1, 2, 3, 4, 4]
    assert seen["off"] == [None] * 5
    assert seen["every 2 steps"] == [None, 2, 2, 4, 4]


def test_a_run_dir_that_is_a_file_is_refused(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    result = engine.run_training(tiny(), a_file, progress=quiet)
    assert result.refused and f"--run-dir {a_file} is a file" in result.message
    assert a_file.read_text() == "mine"


def test_a_read_only_run_dir_is_refused(tmp_path, read_only, capsys):
    run = tmp_path / "run"
    run.mkdir()
    read_only(run)
    result = engine.run_training(tiny(), run, progress=quiet)
    assert result.refused and f"cannot create the lock file {run / rundir.LOCK_FILE}" in (
        result.message
    )
    assert "Permission denied" in result.message and f"chmod u+w {run}" in result.message
    assert "Traceback" not in capsys.readouterr().err


def test_a_run_dir_made_read_only_mid_run_fails_with_the_reason(tmp_path, read_only, capsys):
    run = tmp_path / "run"

    def lock_up(step: int) -> None:
        if step == 2:
            read_only(run)

    cfg = tiny(**{"run.max_steps": 6})
    result = engine.run_training(cfg, run, progress=quiet, on_step=lock_up)
    assert result.state == "failed" and not result.refused and result.step == 3
    assert_mentions(result.message, str(run / rundir.STATUS_FILE), "Permission denied")
    assert_mentions(result.message, "checkpoint of step 1", "kept")
    assert "Traceback" not in capsys.readouterr().err
    status = rundir.read_status(run)  # rewritten in place: no new directory entry needed
    assert status["state"] == "failed" and status["message"] == result.message
    assert "out of memory" not in status["message"]
    assert not rundir.is_alive(run) and checkpoint_step(run) == 1


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real_save, calls = ckpt.torch.save, []

    def save(state, handle):
        calls.append(state["step"])
        if state["step"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(state, handle)

    monkeypatch.setattr(ckpt.torch, "save", save)
    cfg = tiny(**{"run.max_steps": 4, "run.checkpoint_every": 2})
    result = engine.run_training(cfg, run, progress=quiet)
    assert calls == [1, 2]
    assert result.state == "failed" and not result.refused and result.step == 2
    message = result.message
    assert_mentions(message, str(run / rundir.CHECKPOINT_FILE), "No space left")
    assert "the disk is full" in message and "MiB free" in message
    assert_mentions(message, "checkpoint of step 1", "kept", "--resume")
    assert "Traceback" not in capsys.readouterr().err
    assert rundir.read_status(run)["state"] == "failed"
    assert rundir.read_status(run)["message"] == message
    assert checkpoint_step(run) == 1 and not list(run.glob(".*.tmp"))
    monkeypatch.setattr(ckpt.torch, "save", real_save)  # space freed: the run resumes
    again = engine.run_training(cfg, run, resume=True, progress=quiet)
    assert again.state == "finished" and again.step == 4


@pytest.mark.parametrize("free_mib, words", [(10.0, "the disk is full (10 MiB free"), (5e5, "")])
def test_torchs_own_write_error_is_read_as_a_disk_problem(tmp_path, monkeypatch, free_mib, words):
    """A really full disk makes torch's zip writer raise a RuntimeError without an errno
    (measured on a 300 KiB tmpfs); this one fails at the last checkpoint, after the loop."""

    def save(state, handle):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 640 vs 534")

    usage = shutil.disk_usage(tmp_path)._replace(free=int(free_mib * 2**20))
    monkeypatch.setattr(run_lock.shutil, "disk_usage", lambda path: usage)
    monkeypatch.setattr(ckpt.torch, "save", save)
    cfg = tiny(**{"run.checkpoint_seconds": 0})  # only the final checkpoint
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "failed" and result.step == 4  # not "finished"
    assert "cannot write the checkpoint" in result.message and "write failed" in result.message
    assert words in result.message and "(torch: [enforce fail" in result.message
    assert_mentions(result.message, "No checkpoint", "written")
    assert rundir.read_status(tmp_path / "run")["state"] == "failed"


@pytest.mark.parametrize("damage", ["{not json", '{"name": "x", "model": {"arc": "vit_tiny"}}'])
def test_a_damaged_config_is_refused_on_resume_and_left_alone(tmp_path, damage, capsys):
    from dinodiag.cli import main

    run = tmp_path / "run"
    engine.run_training(tiny(**{"run.max_steps": 2}), run, progress=quiet)
    (run / rundir.CONFIG_FILE).write_text(damage)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    code = main(["train", "--run-dir", str(run), "--resume", "--max-steps", "3"])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot resume: {run / rundir.CONFIG_FILE}" in err
    assert ("not valid JSON" if damage.startswith("{not") else "unknown key 'model.arc'") in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # no rewrite, no status
    assert rundir.read_status(run)["step"] == 2


def test_a_run_dir_deleted_mid_run_does_not_promise_a_checkpoint(tmp_path, capsys):
    """The directory deleted under a running trainer: the failure says the checkpoint is gone
    (it once said "the checkpoint of step 1 is kept")."""
    run = tmp_path / "run"

    def delete(step: int) -> None:
        if step == 2:
            shutil.rmtree(run)

    result = engine.run_training(tiny(**{"run.max_steps": 6}), run, progress=quiet, on_step=delete)
    assert result.state == "failed" and not result.refused
    assert "is kept" not in result.message
    assert_mentions(result.message, "checkpoint of step 1", "gone")
    assert "Traceback" not in capsys.readouterr().err
