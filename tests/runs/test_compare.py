"""The runs table, config diffs and the seed story's verdict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dinodiag.printable import duration
from dinodiag.rundir import RunInfo
from dinodiag.runs.compare import (
    config_diff,
    flatten_dict,
    metrics_summary,
    runs_table,
)


def frame(knn: list[float], loss: list[float], seconds: float = 125.0) -> pd.DataFrame:
    rows = [
        {"kind": "eval", "step": 10 * i, "time": 1.0 * i, "knn_top1": v} for i, v in enumerate(knn)
    ]
    rows += [
        {"kind": "train", "step": i + 1, "time": seconds * (i + 1) / len(loss), "loss": v}
        for i, v in enumerate(loss)
    ]
    return pd.DataFrame(rows)


def info(run_id: str, state: str = "finished") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        path=Path("/nowhere") / run_id,
        state=state,
        message="done",
        step=40,
        total_steps=50,
        epoch=1.0,
        eta_s=None,
        started=None,
        device="cpu",
        preset="cpu-demo",
        pipeline="seed-fixed",
        data="generated",
        knn_top1=30.0,
        knn_top1_start=10.0,
        has_checkpoint=True,
    )


def test_one_duration_formatter_for_pages_and_the_console():
    assert [duration(s) for s in (None, float("nan"), 5, 95, 3700)] == [
        "–",
        "–",
        "5 s",
        "1 min 35 s",
        "1 h 01 min",
    ]
    assert [duration(s, compact=True) for s in (None, 42, 192, 3900)] == [
        "?",
        "42s",
        "3m12s",
        "1h05m",
    ]


def test_metrics_summary_and_the_runs_table():
    summary = metrics_summary(frame([10.0, 35.0, 30.0], [8.0, 7.0]))
    assert summary == {
        "knn_start": 10.0,
        "knn_best": 35.0,
        "knn_last": 30.0,
        "loss_last": 7.0,
        "elapsed": 125.0,
    }
    empty = metrics_summary(pd.DataFrame(columns=["kind", "step", "time"]))
    assert empty["knn_best"] is None and empty["elapsed"] is None
    table = runs_table(
        [info("b"), info("a", "running")], {"b": frame([10.0, 35.0], [1.0]), "a": frame([], [])}
    )
    assert list(table["run"]) == ["b", "a"]
    assert table.loc[0, "best k-NN (%)"] == 35.0 and table.loc[0, "steps"] == "40/50"
    assert table.loc[0, "time"] == "2 min 05 s" and table.loc[1, "state"] == "running"
    assert pd.isna(table.loc[1, "best k-NN (%)"])


def test_config_diff_lists_only_the_differing_fields():
    a = {
        "name": "cpu-demo",
        "optim": {"base_lr": 0.004},
        "pipeline": {"local_crops_number": 0, "global_crops_scale": [0.2, 1.0]},
        "data": {"batch_size": 64},
    }
    b = {
        "name": "cpu-demo",
        "optim": {"base_lr": 0.004},
        "pipeline": {"local_crops_number": 8, "global_crops_scale": [0.4, 1.0]},
        "data": {"batch_size": 64, "workers": None},
    }
    diff = config_diff({"broken": a, "fixed": b})
    assert list(diff.index) == [
        "data.workers",
        "pipeline.global_crops_scale",
        "pipeline.local_crops_number",
    ]
    assert diff.loc["pipeline.global_crops_scale"].tolist() == ["0.2, 1", "0.4, 1"]
    assert diff.loc["data.workers"].tolist() == ["–", "none"]
    assert config_diff({"a": a, "b": a}).empty
    assert flatten_dict({"x": {"y": {"z": 1}}}) == {"x.y.z": 1}
