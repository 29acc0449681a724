"""The run directory contract: writer and the dashboard's pure readers."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from dinodiag import rundir
from dinodiag.rundir.writer import RunWriter


def _finished_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_writer_rows_status_and_config(tmp_path):
    writer = RunWriter(tmp_path / "run")
    writer.open()
    writer.write_config({"name": "x", "model": {"arch": "vit_tiny"}})
    writer.status("running", 0, "setting up", started=123.0, total_steps=10)
    writer.log("eval", 0, 0.0, knn_top1=12.5, knn_top5=50.0)
    writer.log("train", 1, 0.1, loss=float("nan"), img_per_s=10.0)
    writer.log("event", 1, 0.1, level="warning", code="x", message="try y")
    writer.status("finished", 1, "done")
    writer.close()
    run = tmp_path / "run"
    lines = (run / rundir.METRICS_FILE).read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # strict JSON: NaN written as "nan"
    assert [r["kind"] for r in rows] == ["eval", "train", "event"]
    assert all({"kind", "step", "epoch", "time"} <= set(r) for r in rows)
    assert rows[1]["loss"] == "nan"
    status = rundir.read_status(run)
    assert status["state"] == "finished" and status["step"] == 1
    assert status["total_steps"] == 10 and status["started"] == 123.0  # fields persist
    assert status["pid"] == os.getpid()
    assert rundir.read_config(run)["model"]["arch"] == "vit_tiny"
    assert not (run / rundir.PID_FILE).exists()  # removed on close
    assert not list(run.glob(".*tmp"))  # atomic writes leave no temporary file


def test_read_metrics_ignores_partial_last_line_and_counts_bad_lines(tmp_path):
    path = tmp_path / rundir.METRICS_FILE
    path.write_text(
        '{"kind": "train", "step": 1, "epoch": 0, "time": 1.0, "loss": 5.0}\n'
        "not json\n"
        '{"kind": "eval", "step": 1, "epoch": 0, "time": 2.0, "knn_top1": "nan"}\n'
        '{"kind": "train", "step": 2, "epo'  # being written
    )
    frame = rundir.read_metrics(tmp_path)
    assert list(frame["step"]) == [1, 1]
    assert frame.attrs["bad_lines"] == 1
    assert math.isnan(frame.loc[1, "knn_top1"])
    train = rundir.read_metrics(tmp_path, kind="train")
    assert list(train["loss"]) == [5.0]
    empty = rundir.read_metrics(tmp_path / "missing")
    assert empty.empty and "step" in empty.columns


def test_read_status_marks_a_dead_running_process_failed(tmp_path):
    pid = _finished_pid()
    rundir.write_json_atomic(
        tmp_path / rundir.STATUS_FILE,
        {"state": "running", "step": 7, "pid": pid, "message": "training"},
    )
    assert not rundir.is_alive(tmp_path)
    status = rundir.read_status(tmp_path)
    assert status["state"] == "failed"
    assert "no longer running" in status["message"] and "step 7" in status["message"]


def test_is_alive_with_pid_file_of_this_process(tmp_path):
    rundir.write_pid_file(tmp_path)
    assert rundir.is_alive(tmp_path)
    rundir.write_json_atomic(
        tmp_path / rundir.STATUS_FILE, {"state": "running", "step": 1, "pid": os.getpid()}
    )
    assert rundir.read_status(tmp_path)["state"] == "running"
    # A recorded start time that does not match means the pid was reused: not our run.
    info = json.loads((tmp_path / rundir.PID_FILE).read_text())
    assert isinstance(info["start_ticks"], int)  # Linux: /proc gives every process's start
    info["start_ticks"] += 1
    rundir.write_json_atomic(tmp_path / rundir.PID_FILE, info)
    assert not rundir.is_alive(tmp_path)
    assert rundir.read_status(tmp_path)["state"] == "failed"


def test_liveness_is_pid_and_start_time_never_the_host():
    me = rundir.process_record()
    assert me["pid"] == os.getpid() and me["host"]
    assert rundir.process_alive(me)
    assert rundir.process_alive({**me, "host": "another-machine"})  # the host is not asked
    gone = {"pid": _finished_pid(), "start_ticks": None, "host": "another-machine"}
    assert not rundir.process_alive(gone)  # a foreign host does not keep a dead run alive
    for bad in (None, {}, {"pid": None}, {"pid": True}, {"pid": -1}, {"pid": "12"}):
        assert not rundir.process_alive(bad), bad
    # A record without a start time cannot be checked here (it came from another machine or
    # container): even a pid that exists, such as 1, is not taken for the run.
    assert not rundir.process_alive({"pid": 1, "start_ticks": None, "host": "old-container"})


def test_a_restarted_container_does_not_leave_a_run_running_forever(tmp_path):
    """After a container restart the recorded pid may belong to another process (pid 1 always
    exists there): status.json's pid is no liveness, nor a record whose lock is free."""
    rundir.write_json_atomic(
        tmp_path / rundir.STATUS_FILE,
        {"state": "running", "step": 5, "pid": 1, "host": "old-container", "checkpoint_step": 4},
    )
    status = rundir.read_status(tmp_path)
    assert status["state"] == "failed"
    assert "from its checkpoint at step 4" in status["message"]
    assert "out of memory?" not in status["message"]
    # A trainer's record (locked) of a live process with the right start time, whose lock is
    # free: the trainer that wrote it is gone, whoever has its pid now.
    rundir.write_pid_file(tmp_path, locked=True)
    (tmp_path / rundir.LOCK_FILE).touch()
    assert rundir.live_process(tmp_path) is None and not rundir.is_alive(tmp_path)
    rundir.write_pid_file(tmp_path, locked=False)  # the dashboard's record of its child
    assert rundir.live_process(tmp_path)["pid"] == os.getpid() and rundir.is_alive(tmp_path)


def test_zombie_child_counts_as_dead(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # wait until it has exited, without reaping it
            stat = open(f"/proc/{proc.pid}/stat").read()
            if stat[stat.rfind(")") + 2] == "Z":
                break
            import time

            time.sleep(0.01)
        rundir.write_json_atomic(
            tmp_path / rundir.STATUS_FILE, {"state": "running", "step": 0, "pid": proc.pid}
        )
        assert not rundir.is_alive(tmp_path)
    finally:
        proc.wait()


def test_missing_status(tmp_path):
    status = rundir.read_status(tmp_path)
    assert status["state"] == "failed" and "did not start" in status["message"]
    assert rundir.read_json(tmp_path / "nope.json") is None
    (tmp_path / rundir.STATUS_FILE).write_text('{"state": "runn')  # half written
    assert rundir.read_json(tmp_path / rundir.STATUS_FILE) is None


def test_states_are_one_list():
    assert set(rundir.ACTIVE_STATES) < set(rundir.STATES)
    assert rundir.STATES[0] == "queued"  # before a process exists; status.json has the others


def test_list_runs_newest_first(tmp_path):
    for name, started, state in (("a", 1.0, "finished"), ("b", 2.0, "stopped")):
        run = tmp_path / name
        run.mkdir()
        rundir.write_json_atomic(
            run / rundir.STATUS_FILE, {"state": state, "step": 3, "started": started}
        )
        rundir.write_json_atomic(
            run / rundir.CONFIG_FILE, {"name": "cpu-demo", "data": {"data": "generated"}}
        )
    (tmp_path / "not-a-run").mkdir()
    runs = rundir.list_runs(tmp_path)  # the one list of runs (RunInfo), the dashboard's too
    assert [r.run_id for r in runs] == ["b", "a"]
    assert runs[0].state == "stopped" and runs[0].preset == "cpu-demo"
    assert runs[0].data == "generated" and runs[0].has_checkpoint is False
    assert rundir.list_runs(tmp_path / "missing") == []


def test_a_link_out_of_the_runs_folder_is_not_followed(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "elsewhere"
    for folder in (root / "20260101-inside", outside / "20260102-secret"):
        folder.mkdir(parents=True)
        rundir.write_json_atomic(folder / rundir.STATUS_FILE, {"state": "finished", "step": 1})
    (root / "20260103-link-out").symlink_to(outside / "20260102-secret")
    (root / "20260104-link-in").symlink_to(root / "20260101-inside")
    found, skipped = rundir.scan_run_dirs(root)
    assert [p.name for p in found] == ["20260104-link-in", "20260101-inside"]
    assert len(skipped) == 1 and "20260103-link-out" in skipped[0]
    assert "outside the runs folder" in skipped[0]
    with pytest.warns(rundir.RunLinkSkipped, match="20260103-link-out"):
        rundir.find_run_dirs(root)  # scripts hear of it; the page lists scan_run_dirs' sentences
    runs = rundir.list_runs(root)
    assert [r.run_id for r in runs] == ["20260104-link-in", "20260101-inside"]


def test_request_stop_and_run_ids(tmp_path):
    assert not rundir.stop_requested(tmp_path)
    path = rundir.request_stop(tmp_path)
    assert path.name == "STOP" and rundir.stop_requested(tmp_path)
    rundir.clear_stop(tmp_path)
    assert not rundir.stop_requested(tmp_path) and not path.exists()
    rundir.clear_stop(tmp_path)  # nothing to clear: no error
    run_id = rundir.new_run_id("cpu demo/1", now=0)
    assert run_id.endswith("-cpu-demo-1") and " " not in run_id


def test_drop_metrics_after(tmp_path):
    writer = RunWriter(tmp_path)
    writer.open()
    for step in range(5):
        writer.log("train", step, 0.0, loss=1.0)
    writer.close()
    with open(tmp_path / rundir.METRICS_FILE, "a") as f:
        f.write('{"kind": "train", "st')  # a crash mid-line
    trimmed = RunWriter(tmp_path).drop_metrics_after(2)
    assert trimmed.after == 2 and trimmed.unreadable == [6]  # steps 3, 4; the partial line
    assert list(rundir.read_metrics(tmp_path)["step"]) == [0, 1, 2]


def test_disabled_writer_writes_nothing(tmp_path):
    writer = RunWriter(tmp_path / "rank1", enabled=False)
    writer.open()
    writer.log("train", 1, 0.0, loss=1.0)
    writer.status("running", 1, "x")
    writer.write_config({})
    writer.close()
    assert not (tmp_path / "rank1").exists()


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_dumps_is_strict_json(value):
    text = rundir.dumps({"x": value, "y": [1.0, value]})
    assert "Infinity" not in text and json.loads(text)["x"] in ("inf", "-inf")
