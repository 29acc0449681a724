"""The lock of a run directory: one trainer per run, refused naming the holder, free again when
the trainer ends however it ends; and the errors of a run directory that cannot be used."""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import subprocess
import sys
import threading

import pytest

from dinodiag import rundir
from dinodiag.rundir.lock import RunDirError, RunLock, os_error_message
from tests.facts import assert_mentions


def test_the_lock_records_its_holder_and_refuses_a_second_one(tmp_path):
    run = tmp_path / "new" / "run"
    first = RunLock(run)
    assert first.acquire() is None  # None: locked, no warning
    assert first.created_dir and (run / rundir.LOCK_FILE).is_file()
    record = rundir.read_pid_file(run)
    assert record["pid"] == os.getpid() and record["locked"] is True
    assert isinstance(record["start_ticks"], int)
    assert rundir.lock_held(run) is True and rundir.is_alive(run)
    # A second trainer (here another descriptor of this very process) is refused by name.
    with pytest.raises(RunDirError) as info:
        RunLock(run).acquire(wait=0.2)
    assert_mentions(str(info.value), "another trainer", f"(pid {os.getpid()}")
    assert rundir.read_pid_file(run)["pid"] == os.getpid()  # the holder's record untouched
    first.release()
    assert not (run / rundir.LOCK_FILE).exists() and not (run / rundir.PID_FILE).exists()
    assert rundir.lock_held(run) is False and not rundir.is_alive(run)
    again = RunLock(run)
    assert again.acquire() is None and not again.created_dir  # free again: it exists now
    again.release()


def test_a_second_process_is_refused_naming_the_holder(tmp_path):
    lock = RunLock(tmp_path)
    lock.acquire()
    try:
        code = (
            "import sys; from dinodiag.rundir.lock import RunLock, RunDirError\n"
            "try:\n    RunLock(sys.argv[1]).acquire(wait=0.2)\n"
            "except RunDirError as e:\n    print(e); sys.exit(2)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
    finally:
        lock.release()
    assert done.returncode == 2, done.stderr
    assert f"pid {os.getpid()}" in done.stdout and "STOP" in done.stdout


def test_the_lock_waits_out_a_readers_probe(tmp_path):
    """A dashboard probing the lock (a shared flock for an instant) never refuses a trainer."""
    (tmp_path / rundir.LOCK_FILE).touch()
    fd = os.open(tmp_path / rundir.LOCK_FILE, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    timer = threading.Timer(0.3, os.close, (fd,))  # the "reader" lets go after 0.3 s
    timer.start()
    lock = RunLock(tmp_path)
    try:
        assert lock.acquire(wait=5.0) is None
    finally:
        timer.join()
        lock.release()


def test_a_killed_holder_frees_the_lock(tmp_path):
    """The kernel drops an flock with its process: a SIGKILLed trainer's run reads dead, even
    though its run.pid is left behind."""
    code = (
        "import sys, time; from dinodiag.rundir.lock import RunLock\n"
        "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "locked"
        assert rundir.lock_held(tmp_path) is True and rundir.is_alive(tmp_path)
        assert rundir.live_process(tmp_path)["pid"] == child.pid
    finally:
        child.kill()
        child.wait()
    assert rundir.read_pid_file(tmp_path)["locked"] is True  # left behind by the kill
    assert rundir.lock_held(tmp_path) is False
    assert not rundir.is_alive(tmp_path) and rundir.live_process(tmp_path) is None
    lock = RunLock(tmp_path)
    assert lock.acquire() is None  # a new trainer takes it over
    lock.release()


def test_forked_children_do_not_keep_a_killed_trainers_lock(tmp_path):
    """DataLoader workers are forked from the trainer: they must not hold its lock after it
    is killed (they only notice the death of their parent seconds later)."""
    code = (
        "import os, sys, time; from dinodiag.rundir.lock import RunLock\n"
        "RunLock(sys.argv[1]).acquire()\n"
        "child = os.fork()\n"
        "if child == 0:\n    time.sleep(60); os._exit(0)\n"
        "print(child, flush=True); time.sleep(60)\n"
    )
    trainer = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    worker = int(trainer.stdout.readline())
    try:
        assert rundir.lock_held(tmp_path) is True
        trainer.kill()
        trainer.wait()
        assert rundir.process_alive(rundir.process_record(worker))  # the worker lives on
        assert rundir.lock_held(tmp_path) is False and not rundir.is_alive(tmp_path)
    finally:
        trainer.kill()
        trainer.wait()
        os.kill(worker, signal.SIGKILL)


def test_a_file_or_an_unwritable_folder_is_refused_naming_the_path(tmp_path, read_only):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(RunDirError) as info:
        RunLock(a_file).acquire()
    assert_mentions(str(info.value), f"--run-dir {a_file} ", "a file", "not a directory")
    with pytest.raises(RunDirError, match="a part of the path is a file"):
        RunLock(a_file / "run").acquire()
    folder = tmp_path / "ro"
    folder.mkdir()
    read_only(folder)
    with pytest.raises(RunDirError) as info:
        RunLock(folder).acquire()
    assert f"cannot create the lock file {folder / rundir.LOCK_FILE}" in str(info.value)
    assert "Permission denied" in str(info.value) and f"chmod u+w {folder}" in str(info.value)
    with pytest.raises(RunDirError) as info:
        RunLock(folder / "new").acquire()
    assert_mentions(str(info.value), f"run directory {folder / 'new'}", f"chmod u+w {folder}")
    assert sorted(p.name for p in folder.iterdir()) == []


def test_os_error_messages_say_what_to_do(tmp_path):
    full = os_error_message(tmp_path / "x", OSError(errno.ENOSPC, "No space left"), "write")
    assert full.startswith(f"cannot write {tmp_path / 'x'}: ")
    assert_mentions(full, "No space left", "the disk is full")
    unknown = os_error_message(tmp_path / "x", None, "write the checkpoint")
    assert "write failed" in unknown and "MiB free" in unknown


def test_a_filesystem_without_flock_gets_a_warning_and_pid_liveness(tmp_path, monkeypatch):
    """Some network filesystems refuse flock: the run goes on, said so, and its liveness
    rests on the pid and its start time."""
    from dinodiag.rundir import lock as run_lock

    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    lock = RunLock(tmp_path)
    warning = lock.acquire()
    assert warning is not None
    assert_mentions(warning, "cannot be locked", "(No locks available)", "would not be refused")
    record = rundir.read_pid_file(tmp_path)
    assert record["locked"] is False and rundir.live_process(tmp_path)["pid"] == os.getpid()
    assert not (tmp_path / rundir.LOCK_FILE).exists()  # of no use there: not left behind
    lock.release()
    assert not rundir.is_alive(tmp_path) and not (tmp_path / rundir.PID_FILE).exists()
