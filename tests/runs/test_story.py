"""Yours vs the reference and the seed story: their two runs, how they start, which runs make
the latest one, the verdict against the k-NN noise."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.rundir import RunInfo
from dinodiag.runs import manager, story
from dinodiag.runs.story import (
    knn_gain,
    latest_story,
    story_pipeline,
    story_plans,
    story_verdict,
    verdict_band,
    versus_plans,
    versus_verdict,
)
from dinodiag.train.eval.knn import knn_noise
from dinodiag.train.pipelines import with_own_pipeline
from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]


def test_the_story_keeps_the_seeds_counts_and_scales_at_the_demo_size():
    plans = story_plans("cpu-demo", 90)
    broken, fixed = plans["yours"], plans["reference"]  # the seed's broken one is "yours"
    assert broken.recipe is not None and fixed.recipe is not None
    assert broken.pipeline.local_crops_number == 0 and broken.config.data.local_crops == 0
    assert broken.pipeline.global_crops_scale == (0.2, 1.0)
    assert fixed.pipeline.local_crops_number == 8 and fixed.config.data.local_crops == 8
    assert fixed.pipeline.global_crops_scale == (0.4, 1.0)
    assert fixed.pipeline.local_crops_scale == (0.05, 0.4)
    assert fixed.pipeline.name == "seed-fixed@32px"
    assert (broken.label, fixed.label) == ("story-yours", "story-reference")
    for plan in (broken, fixed):  # the only difference is the recipe
        assert plan.pipeline.global_crops_size == plan.pipeline.local_crops_size == 32
        config = plan.config
        assert config.name == "cpu-demo" and config.run.max_seconds is None
        assert config.run.eval_every == 18 and config.run.max_steps == 90
        assert plan.steps is None  # the data is opened at launch (manager.prepare)
    assert story_pipeline("reference", 64, 8).local_crops_size == 64
    assert story_pipeline("fixed", 64, 8) == story_pipeline("reference", 64, 8)  # old names
    with pytest.raises(ConfigError, match="at least 1 step"):
        story_plans("cpu-demo", 0)


def test_yours_vs_the_reference_differ_only_in_the_pipeline():
    yours = get_train_preset("cpu-demo").config.with_overrides({"data.batch_size": 32})
    plans = versus_plans(
        yours,
        get_preset("dinov2").config,
        steps=120,
        max_seconds=200,
        recipe=get_preset("seed-fixed").config,
    )
    mine, reference = plans["yours"], plans["reference"]
    assert mine.pipeline.name == "seed-fixed" and reference.pipeline.name == "dinov2@32px"
    a, b = mine.config, reference.config
    assert (a.data.local_crops, b.data.local_crops) == (8, 8)  # each recipe's own counts
    # the same crop sizes: the reference's locals at yours' size (32 px, as the seed's)
    assert (b.data.global_crops_size, b.data.local_crops_size) == (32, 32)
    assert reference.pipeline.global1.blur_p == get_preset("dinov2").config.global1.blur_p
    assert a.to_dict()["run"] == b.to_dict()["run"] and a.model == b.model and a.optim == b.optim
    assert {k: v for k, v in a.to_dict()["data"].items() if "crop" not in k} == {
        k: v for k, v in b.to_dict()["data"].items() if "crop" not in k
    }  # the same data, batch and k-NN; only the crops differ
    assert (a.run.max_steps, a.run.max_seconds, a.run.eval_every) == (120, 200, 24)
    assert a.run.fit_to_time  # with a budget yours' schedules end at its last step
    assert [p.config.data.batch_size for p in (mine, reference)] == [32, 32]
    assert [p.pipeline.local_crops_number for p in (mine, reference)] == [8, 8]
    assert mine.train_images == reference.train_images == 2000


def test_yours_can_be_your_code_and_the_reference_takes_its_measured_sizes():
    code = f"{REPO / 'examples/seed_pipeline.py'}:build_multicrop_augment"
    yours = with_own_pipeline(
        get_train_preset("tiny-test").config, code, '{"img_size": 16, "num_local_crops": 2}'
    )
    plans = versus_plans(yours, get_preset("dinov2").config, steps=10, max_seconds=None)
    mine, reference = plans["yours"], plans["reference"]
    assert mine.config.data.pipeline == code and mine.recipe is None and mine.own
    assert mine.config.model.patch_size == reference.config.model.patch_size == 4
    assert reference.recipe is not None and not reference.own
    assert reference.config.data.pipeline_kwargs == ""
    sizes = (reference.config.data.global_crops_size, reference.config.data.local_crops_size)
    assert sizes == (16, 96)  # the example's 96 px locals
    assert reference.pipeline.local_crops_number == 8  # the reference's own count
    assert mine.config.run.max_seconds is None and reference.config.run.max_seconds is None
    assert not mine.config.run.fit_to_time


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], list[Any]]]:
    """Record what start_story asks the manager to start (nothing starts)."""
    calls: list[tuple[str, list[Any], list[Any]]] = []

    def launch(plan: Any, root: Any = None, extra: Any = None) -> Path:
        calls.append(("launch", [plan], [extra]))
        return Path(plan.label)

    def launch_queue(plans: Any, root: Any = None, extra: Any = None) -> list[Path]:
        calls.append(("queue", list(plans), list(extra)))
        return [Path(p.label) for p in plans]

    monkeypatch.setattr(manager, "launch", launch)
    monkeypatch.setattr(manager, "launch_queue", launch_queue)
    monkeypatch.setattr(story.os, "cpu_count", lambda: 4)
    return calls


def test_the_story_queues_its_runs_or_starts_both_with_half_the_cores(launched):
    assert story.start_story(40, together=False) == [Path("story-yours"), Path("story-reference")]
    ((kind, plans, extras),) = launched
    assert kind == "queue" and [p.config.run.max_steps for p in plans] == [40, 40]
    assert [p.config.run.threads for p in plans] == [1, 1]  # cpu-demo's one thread each
    assert [e["role"] for e in extras] == ["yours", "reference"]
    assert [e.get(manager.SAME_STEPS) for e in extras] == [None, True]  # yours' steps
    assert {e["story_kind"] for e in extras} == {"seed"}
    assert extras[0]["story"] == extras[1]["story"]  # one story id tags both runs
    launched.clear()
    story.start_story(40, together=True)
    assert [kind for kind, _, _ in launched] == ["launch", "launch"]
    assert [plans[0].config.run.threads for _, plans, _ in launched] == [2, 2]  # 4 cores shared
    assert all(manager.SAME_STEPS not in extras[0] for _, _, extras in launched)


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
        run("new-ref", "20260102-000000", "reference"),
        run("plain", None, None),
        run("old-broken", "20260101-000000", "broken"),  # a seed story of an earlier version
        run("new-yours", "20260102-000000", "yours"),
        run("old-fixed", "20260101-000000", "fixed"),
    ]
    latest = latest_story(infos)
    assert list(latest) == ["yours", "reference"]
    assert [r.run_id for r in latest.values()] == ["new-yours", "new-ref"]
    assert latest_story([infos[0]]) == {"reference": infos[0]}  # a story half started
    assert latest_story([infos[1]]) == {}
    assert latest_story([replace(infos[0], role="other")]) == {}
    old = latest_story([infos[2], infos[4]])
    assert [r.run_id for r in old.values()] == ["old-broken", "old-fixed"]
    assert story.story_labels(old) is story.SEED_LABELS
    assert story.story_labels(latest) is story.ROLE_LABELS


def knn(*values: float, test: int | None = 1000) -> pd.DataFrame:
    """A metrics frame with one k-NN evaluation per value (step 0 first), on ``test`` images."""
    return pd.DataFrame(
        [
            {"kind": "eval", "step": 10 * i, "time": float(i), "knn_top1": v, "knn_test": test}
            for i, v in enumerate(values)
        ]
    )


def test_the_gain_and_its_noise_come_from_the_evaluations():
    gain = knn_gain(knn(14.0, 20.0, 30.0))
    assert gain is not None and gain.gain == 16.0 and gain.steps == 20 and gain.evaluations == 3
    assert gain.noise == pytest.approx(math.hypot(knn_noise(14.0, 1000), knn_noise(30.0, 1000)))
    assert gain.clear and not knn_gain(knn(14.0, 16.0)).clear  # 2 points on 1000: noise
    assert knn_gain(knn(14.0)) is None  # nothing after step 0 yet


def test_the_verdict_says_who_learns_more_or_that_it_is_too_short():
    outcome, level, text = versus_verdict(knn(14.0, 40.0), knn(14.0, 25.0))
    assert (outcome, level) == ("yours", "success")
    # each side's gain, steps and k-NN range, yours first; the difference and its noise
    assert text.startswith("Yours ") and text.index("+26.0") < text.index("+11.0")
    assert_mentions(text, "+26.0 k-NN points", "in 10 steps", "(14.0% → 40.0%)", "(14.0% → 25.0%)")
    assert_mentions(text, "reference +11.0", "clearly more", "15.0 points", "±4.1")
    outcome, level, text = versus_verdict(knn(14.0, 20.0), knn(14.0, 40.0))
    assert (outcome, level) == ("reference", "warning") and "holds the model back" in text
    outcome, level, text = versus_verdict(knn(14.0, 30.0), knn(14.0, 32.0))
    assert (outcome, level) == ("same", "success") and "about as much as" in text
    outcome, level, text = versus_verdict(knn(14.0, 13.8), knn(14.0, 15.0))  # "-0.2 vs +1"
    assert (outcome, level) == ("too_short", "info") and "Too short to judge" in text
    assert "on 1000 held-out images" in text
    outcome, level, _ = versus_verdict(knn(14.0, 14.0, 17.0, test=32), knn(14.0, 30.0, test=32))
    assert outcome == "too_short"  # 32 images: even 16 points are within the noise
    assert versus_verdict(knn(14.0), knn(14.0, 20.0))[:2] == ("pending", "info")


def test_story_verdict_says_which_pipeline_learned():
    level, text = story_verdict(knn(10.0, 11.0), knn(10.0, 30.0))
    assert level == "success" and "+1.0 k-NN points" in text and "+20.0 k-NN points" in text
    assert_mentions(text, "multi-crop", "clearly faster", "19.0 points")  # +20 - +1
    level, text = story_verdict(knn(10.0, 24.0), knn(10.0, 25.0))  # +1 point is not clear
    assert level == "warning" and "more steps" in text
    level, text = story_verdict(knn(10.0, 10.5), knn(10.0, 11.0))
    assert level == "info" and "Too short to judge" in text
    level, _ = story_verdict(knn(10.0), pd.DataFrame(columns=["kind", "step", "time"]))
    assert level == "info"


def test_the_verdicts_band_is_where_yours_ends_for_the_same_gain_as_the_reference():
    yours, reference = knn(14.0, 40.0), knn(14.0, 25.0)
    (band,) = verdict_band(yours, reference).to_dict("records")
    _, difference, noise = story.compare_gains(knn_gain(yours), knn_gain(reference))
    assert band["value"] == pytest.approx(25.0)  # the same gain as the reference's +11
    assert band["high"] - band["value"] == pytest.approx(2.0 * noise)
    assert difference > band["high"] - band["value"]  # yours above the band: "yours" wins
    assert band["run"] == "yours"
    assert_mentions(band["label"], "noise", "about as much as", "reference", "±4.1 points")
    shifted = verdict_band(knn(20.0, 40.0), knn(14.0, 25.0)).iloc[0]  # other step-0 values
    assert shifted["value"] == pytest.approx(31.0)
    same = verdict_band(knn(14.0, 30.0), knn(14.0, 32.0)).iloc[0]
    assert same["low"] <= 30.0 <= same["high"]  # "same": yours' last point inside the band
    assert verdict_band(knn(14.0, 13.8), knn(14.0, 15.0)).empty  # too short: no band
    assert verdict_band(knn(14.0), knn(14.0, 20.0)).empty  # pending
