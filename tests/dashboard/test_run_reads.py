"""dinodiag.dashboard.run_reads: file versions, a run's start and the runs of a folder."""

from __future__ import annotations

import json
import os

from dinodiag import rundir
from dinodiag.dashboard.run_reads import file_stamp, known_runs, started_at


def test_a_file_stamp_changes_with_the_file_and_is_zero_when_absent(tmp_path):
    assert file_stamp(tmp_path, "metrics.jsonl") == (0.0, 0)
    path = tmp_path / "metrics.jsonl"
    path.write_text("{}\n")
    os.utime(path, (1000.0, 1000.0))
    assert file_stamp(str(tmp_path), "metrics.jsonl") == (1000.0, 3)
    path.write_text("{}\n{}\n")
    os.utime(path, (1000.0, 1000.0))
    assert file_stamp(tmp_path, "metrics.jsonl") == (1000.0, 6)  # appended, same second


def test_started_at_reads_the_status_number_only(tmp_path):
    assert started_at(tmp_path) is None
    status = tmp_path / rundir.STATUS_FILE
    status.write_text(json.dumps({"state": "running", "started": 1700000000}))
    assert started_at(tmp_path) == 1.7e9
    status.write_text(json.dumps({"state": "running", "started": "yesterday"}))
    assert started_at(str(tmp_path)) is None


def test_known_runs_are_the_run_folders(tmp_path):
    assert known_runs(tmp_path) == []
    for run in ("20260509-220101-cpu-demo", "20260509-221500-gpu"):
        (tmp_path / run).mkdir()
        (tmp_path / run / rundir.STATUS_FILE).write_text(json.dumps({"state": "finished"}))
    (tmp_path / "notes").mkdir()  # no run's files: not a run
    assert sorted(known_runs(tmp_path)) == ["20260509-220101-cpu-demo", "20260509-221500-gpu"]
