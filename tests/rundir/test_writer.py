"""The writer of a run directory: rows held until set-up passes, a final status that survives
a directory made read-only, failures that name the file; and the strict config read of a
resume."""

from __future__ import annotations

import errno
import json

import pytest

from dinodiag import rundir
from dinodiag.rundir.lock import RunDirError
from dinodiag.rundir.writer import RunWriter, load_run_config
from tests.facts import assert_mentions


def test_abandon_leaves_no_half_made_run_directory(tmp_path):
    writer = RunWriter(tmp_path / "run")
    writer.claim()
    writer.log("event", 0, 0.0, level="info", code="x", message="held until open")
    writer.abandon()
    assert not (tmp_path / "run").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "launch.json").write_text("{}")  # the dashboard's file stays
    writer = RunWriter(existing)
    writer.claim()
    writer.abandon()
    assert sorted(p.name for p in existing.iterdir()) == ["launch.json"]


def test_rows_logged_before_open_are_written_first(tmp_path):
    writer = RunWriter(tmp_path / "run")
    writer.claim()
    writer.log("event", 0, 0.0, level="info", code="early", message="from set-up")
    assert not (tmp_path / "run" / rundir.METRICS_FILE).exists()  # nothing before open
    writer.open()
    writer.log("train", 1, 0.1, loss=1.0)
    writer.close()
    rows = rundir.read_metrics(tmp_path / "run")
    assert list(rows["kind"]) == ["event", "train"] and rows["code"].iloc[0] == "early"


def test_a_directory_made_read_only_keeps_the_final_status(tmp_path, read_only):
    run = tmp_path / "run"
    writer = RunWriter(run)
    writer.open()
    writer.status("running", 3, "training")
    read_only(run)
    with pytest.raises(RunDirError) as info:
        writer.status("running", 4, "training")
    assert_mentions(
        str(info.value), f"cannot write {run / rundir.STATUS_FILE}", "Permission denied"
    )
    writer.log("train", 4, 0.1, loss=1.0)  # the open metrics file still takes rows
    writer.status("failed", 4, "the reason", final=True)  # rewritten in place
    writer.close()  # cannot remove run.pid / run.lock: ignored, the lock is free anyway
    status = rundir.read_status(run)
    assert status["state"] == "failed" and status["message"] == "the reason"
    assert not rundir.is_alive(run)
    assert list(rundir.read_metrics(run)["step"]) == [4]


def test_a_full_disk_while_writing_metrics_names_the_file(tmp_path):
    writer = RunWriter(tmp_path)
    writer.open()

    class FullDisk:
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            raise OSError(errno.ENOSPC, "No space left on device")

    writer._metrics = FullDisk()
    with pytest.raises(RunDirError) as info:
        writer.log("train", 1, 0.0, loss=1.0)
    text = str(info.value)
    assert_mentions(text, f"cannot write {tmp_path / rundir.METRICS_FILE}", "No space left")
    assert "the disk is full" in text and "MiB free" in text
    writer.close()  # the failing close is ignored


def test_load_run_config_is_strict(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        load_run_config(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError) as info:
        load_run_config(tmp_path / "file")
    assert_mentions(str(info.value), f"{tmp_path / 'file'} is a file", "not a run directory")
    with pytest.raises(RunDirError) as info:
        load_run_config(tmp_path)
    assert_mentions(str(info.value), "no config.json", "no checkpoint.pt", "without --resume")
    path = tmp_path / rundir.CONFIG_FILE
    path.write_text("{not json")
    with pytest.raises(RunDirError) as info:
        load_run_config(tmp_path)
    assert_mentions(str(info.value), f"{path} is not valid JSON", "(Expecting", "backup")
    path.write_text("[1, 2]")
    with pytest.raises(RunDirError, match="holds a JSON list"):
        load_run_config(tmp_path)
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(RunDirError, match="is not text"):
        load_run_config(tmp_path)
    path.write_text(json.dumps({"name": "x"}))
    assert load_run_config(tmp_path) == {"name": "x"}
