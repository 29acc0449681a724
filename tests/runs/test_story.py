"""The seed story: its two runs, how they start, which runs make the latest one, the verdict."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dinodiag.errors import ConfigError
from dinodiag.runs import manager, story
from dinodiag.runs.launch_spec import resolve_launch
from dinodiag.runs.manager import RunInfo
from dinodiag.runs.story import latest_story, story_pipeline, story_specs, story_verdict


def test_the_story_keeps_the_seeds_counts_and_scales_at_the_demo_size():
    specs = story_specs("cpu-demo", 90)
    broken, fixed = specs["broken"], specs["fixed"]
    assert broken.pipeline is not None and fixed.pipeline is not None
    assert broken.pipeline.local_crops_number == 0 and broken.local_crops == 0
    assert broken.pipeline.global_crops_scale == (0.2, 1.0)
    assert fixed.pipeline.local_crops_number == 8 and fixed.local_crops == 8
    assert fixed.pipeline.global_crops_scale == (0.4, 1.0)
    assert fixed.pipeline.local_crops_scale == (0.05, 0.4)
    for spec in (broken, fixed):  # the only difference is the recipe
        assert spec.pipeline.global_crops_size == spec.pipeline.local_crops_size == 32
        assert spec.max_steps == 90 and spec.max_seconds == 0 and spec.preset == "cpu-demo"
        plan = resolve_launch(spec, check_data=False)
        assert plan.pipeline.global_crops_size == 32
        assert plan.config.run.max_seconds is None and plan.config.run.eval_every == 18
        assert plan.steps is None and plan.config.run.max_steps == 90
    assert story_pipeline("fixed", 64, 8).local_crops_size == 64
    with pytest.raises(ConfigError, match="at least 1 step"):
        story_specs("cpu-demo", 0)


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], list[Any]]]:
    """Record what start_story asks the manager to start (nothing starts)."""
    calls: list[tuple[str, list[Any], list[Any]]] = []

    def launch(spec: Any, root: Any = None, extra: Any = None) -> Path:
        calls.append(("launch", [spec], [extra]))
        return Path(spec.label)

    def launch_queue(specs: Any, root: Any = None, extra: Any = None) -> list[Path]:
        calls.append(("queue", list(specs), list(extra)))
        return [Path(s.label) for s in specs]

    monkeypatch.setattr(manager, "launch", launch)
    monkeypatch.setattr(manager, "launch_queue", launch_queue)
    monkeypatch.setattr(story.os, "cpu_count", lambda: 4)
    return calls


def test_the_story_queues_its_runs_or_starts_both_with_half_the_cores(launched):
    assert story.start_story(40, together=False) == [Path("story-broken"), Path("story-fixed")]
    ((kind, specs, extras),) = launched
    assert kind == "queue" and [s.max_steps for s in specs] == [40, 40]
    assert [s.threads for s in specs] == [None, None]
    assert [e["role"] for e in extras] == ["broken", "fixed"]
    assert extras[0]["story"] == extras[1]["story"]  # one story id tags both runs
    launched.clear()
    story.start_story(40, together=True)
    assert [kind for kind, _, _ in launched] == ["launch", "launch"]
    assert [specs[0].threads for _, specs, _ in launched] == [2, 2]  # 4 cores shared


def run(run_id: str, story_id: str | None, role: str | None) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        path=Path(run_id),
        state="finished",
        message="",
        step=1,
        total_steps=1,
        epoch=None,
        eta_s=None,
        started=None,
        device=None,
        preset=None,
        pipeline=None,
        data=None,
        knn_top1=None,
        knn_top1_start=None,
        has_checkpoint=False,
        story=story_id,
        role=role,
    )


def test_latest_story_takes_the_newest_story_in_role_order():
    infos = [
        run("new-fixed", "20260102-000000", "fixed"),
        run("plain", None, None),
        run("old-broken", "20260101-000000", "broken"),
        run("new-broken", "20260102-000000", "broken"),
        run("old-fixed", "20260101-000000", "fixed"),
    ]
    latest = latest_story(infos)
    assert list(latest) == ["broken", "fixed"]
    assert [r.run_id for r in latest.values()] == ["new-broken", "new-fixed"]
    assert latest_story([infos[0]]) == {"fixed": infos[0]}  # a story half started
    assert latest_story([infos[1]]) == {}
    assert latest_story([replace(infos[0], role="other")]) == {}


def knn(*values: float) -> pd.DataFrame:
    """A metrics frame with one k-NN evaluation per value (step 0 first)."""
    return pd.DataFrame(
        [
            {"kind": "eval", "step": 10 * i, "time": float(i), "knn_top1": v}
            for i, v in enumerate(values)
        ]
    )


def test_story_verdict_says_which_pipeline_learned():
    level, text = story_verdict(knn(10.0, 11.0), knn(10.0, 30.0))
    assert level == "success" and "+1.0 points" in text and "+20.0 points" in text
    level, text = story_verdict(knn(10.0, 20.0), knn(10.0, 21.0))  # +1 point is not clear
    assert level == "warning" and "more steps" in text
    level, _ = story_verdict(knn(10.0), pd.DataFrame(columns=["kind", "step", "time"]))
    assert level == "info"
