"""dinodiag.dashboard.run_status: which run to show, its progress, numbers and alerts."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd

from dinodiag.dashboard import run_status
from dinodiag.rundir import RunInfo
from tests.facts import assert_mentions

RUN = RunInfo(
    run_id="r",
    path=Path("/nowhere/r"),
    state="running",
    message="training",
    step=30,
    total_steps=100,
    epoch=1.5,
    eta_s=90.0,
    started=0.0,
    device="cpu (1 thread)",
    preset="cpu-demo",
    pipeline="seed-fixed",
    data="generated",
    knn_top1=None,
    knn_top1_start=None,
    has_checkpoint=False,
)


def runs(*states: str) -> list[RunInfo]:
    return [replace(RUN, run_id=f"r{i}", state=state) for i, state in enumerate(states)]


def test_the_run_shown_is_the_new_one_then_the_same_then_an_active_one():
    infos = runs("finished", "queued", "running", "failed")
    assert run_status.selected_run(infos, current=None, pending=None) == "r2"  # running first
    assert run_status.selected_run(runs("finished", "queued"), None, None) == "r1"
    assert run_status.selected_run(runs("finished", "failed"), None, None) == "r0"  # the newest
    assert run_status.selected_run(infos, current="r3", pending=None) == "r3"
    assert run_status.selected_run(infos, current="r3", pending="r0") == "r0"
    assert run_status.selected_run(infos, current="gone", pending="gone") == "r2"
    assert run_status.run_label(RUN) == "r  ·  running  ·  seed-fixed"
    assert run_status.run_label(replace(RUN, pipeline=None)).endswith("·  ?")


def test_progress_counts_steps_or_time_whichever_is_further():
    fraction, text = run_status.run_progress(RUN, elapsed=30.0)  # 30 % of the steps
    assert fraction == 0.3
    assert text.split(" · ") == ["step 30 / 100", "epoch 1.50", "ETA 1 min 30 s"]
    fraction, _ = run_status.run_progress(RUN, elapsed=210.0)  # a time budget 70 % used
    assert fraction == 0.7
    done = replace(RUN, state="finished", step=60, eta_s=None)  # stopped early by its budget
    assert run_status.run_progress(done, elapsed=300.0) == (1.0, "step 60 / 100 · epoch 1.50")
    over = replace(RUN, state="stopped", step=120, epoch=None)
    assert run_status.run_progress(over, 0.0) == (1.0, "step 120 / 100")
    waiting = replace(RUN, total_steps=None, state="queued")
    assert run_status.run_progress(waiting, 0.0) == (0.0, "waiting to start…")
    assert run_status.run_progress(replace(waiting, state="running"), 0.0)[1] == "setting up…"
    assert run_status.run_progress(replace(waiting, state="failed"), 0.0) is None


def test_headline_numbers_of_a_run():
    frame = pd.DataFrame(
        [
            {"kind": "eval", "step": 0, "time": 0.0, "knn_top1": 10.0},
            {"kind": "train", "step": 10, "time": 65.0, "loss": 5.25},
            {"kind": "eval", "step": 10, "time": 70.0, "knn_top1": 14.5},
            {"kind": "train", "step": 20, "time": 125.0, "loss": math.nan, "peak_mem_mb": 1500},
        ]
    )
    knn, loss, speed, memory, time = run_status.run_metrics(RUN, frame)
    assert (knn.label, knn.value) == ("k-NN top-1", "14.5%")
    assert knn.delta.startswith("+4.5 vs step 0")  # no test count: its noise is unknown,
    assert knn.delta_color == "off"  # so the change is not coloured as a result
    assert loss.value == "nan"  # a NaN loss is shown, not hidden
    assert speed.value == "–"  # never logged
    assert (memory.value, memory.help) == ("1.5 GiB", "cpu (1 thread)")  # 1500 MiB, short
    assert time.value == "2m05s"  # compact: a tile is narrow
    assert run_status.memory_value(900) == "900 MiB" and run_status.memory_value(None) == "–"
    empty = run_status.run_metrics(RUN, pd.DataFrame())
    assert [m.value for m in empty] == ["–"] * 5 and empty[0].delta is None
    assert run_status.logged_value("x", "{:.1f}") == "–"
    assert run_status.logged_value(float("inf"), "{:.1f}") == "inf"


def test_alerts_show_the_latest_event_of_each_code():
    events = pd.DataFrame(
        [
            {"step": 5, "level": "warning", "code": "loss_flat", "message": "old"},
            {"step": 9, "level": "warning", "code": "loss_flat", "message": "new"},
            {"step": 7, "level": "error", "code": "nan_loss", "message": "NaN"},
            {"step": 0, "level": "note", "code": "knn_skipped", "message": "no labels"},
            {"step": 1, "level": "note", "code": "resumed", "message": "from 1"},
        ]
    )
    latest = [  # (alert level, code, step, message): the latest of each code, newest first
        ("warning", "loss_flat", 9, "new"),
        ("error", "nan_loss", 7, "NaN"),
        ("info", "knn_skipped", 0, "no labels"),
    ]
    alerts = run_status.event_alerts(events)
    assert [level for level, _ in alerts] == [level for level, *_ in latest]
    for (_, text), (_, code, step, message) in zip(alerts, latest, strict=True):
        assert_mentions(text, f"**{code}**", f"step {step}", message)
    assert run_status.event_alerts(pd.DataFrame()) == []


def test_a_warning_before_sharing_the_machine_and_the_runs_overlaid_first():
    assert run_status.active_runs_warning([]) is None
    text = run_status.active_runs_warning(runs("running", "queued"))
    assert text is not None and text.startswith("2 run(s) already active ")
    assert_mentions(text, "(r0, r1)")
    plain = runs("finished", "finished", "finished")
    assert run_status.default_overlay(plain) == ["r0", "r1"]
    story = [
        replace(plain[0], story="s1", role="fixed"),
        plain[1],
        replace(plain[2], story="s1", role="broken"),
    ]
    assert run_status.default_overlay(story) == ["r2", "r0"]  # broken, fixed
