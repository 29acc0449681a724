"""Can a planned run conclude: the test set against the 200-image rule, the evidence of
earlier runs and of the benchmark, and the steps (and seconds) that would be enough."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dinodiag.train.knn_horizon import (
    bench_evidence,
    first_clear_step,
    judge_plan,
    runs_evidence,
)
from tests.knn_runs import fake_run


def test_the_first_step_beyond_the_noise():
    assert first_clear_step([(0, 14.0), (100, 16.0), (200, 23.0)], 500) == 200
    assert first_clear_step([(0, 14.0), (100, 16.0)], 500) is None  # +2 on 500: noise
    assert first_clear_step([(0, 14.0), (100, 60.0)], 8) is None  # too few images
    assert first_clear_step([(0, 14.0)], 500) is None


def test_the_benchmark_is_evidence_when_the_checkout_has_it(tmp_path: Path):
    curve = [{"step": 0, "knn_top1": 14.0}, {"step": 100, "knn_top1": 16.0}]
    runs = [
        {"curve": [*curve, {"step": 200, "knn_top1": 23.0}]},
        {"curve": [*curve, {"step": 200, "knn_top1": 15.0}]},
    ]
    (tmp_path / "cpu_demo.json").write_text(json.dumps({"commit": "abc", "runs": runs}))
    evidence = bench_evidence("cpu-demo", 500, tmp_path)
    assert evidence.clear_steps == (200,) and evidence.never == (200,)
    assert "cpu_demo.json" in evidence.source and "abc" in evidence.source
    assert bench_evidence("gpu", 500, tmp_path) is None


def test_earlier_runs_of_the_same_preset_and_data_are_evidence(tmp_path: Path):
    fake_run(tmp_path, "a", [14.0, 20.0, 26.4])  # beyond the noise of 1000 images by step 100
    fake_run(tmp_path, "b", [14.0, 14.1])  # never
    evidence = runs_evidence(tmp_path, "cpu-demo", None)
    assert evidence.clear_steps == (100,) and evidence.never == (100,)
    assert runs_evidence(tmp_path, "small-images", None) is None
    assert runs_evidence(tmp_path / "absent", "cpu-demo", None) is None


def evidence(*steps: int):
    from dinodiag.train.knn_horizon import Evidence

    return Evidence("test", tuple(steps), ())


def test_a_plan_shorter_than_the_evidence_is_too_short_by_how_much():
    plan = judge_plan(50, 500, [evidence(100, 200, 100)], eval_every=100, step_s=0.5, setup_s=5)
    assert (plan.status, plan.needed_steps, plan.short_by) == ("too_short", 100, 50)
    assert plan.needed_seconds == pytest.approx(5 + 100 * 0.5)
    assert plan.resolves == pytest.approx(6.3, abs=0.05)
    assert judge_plan(930, 500, [evidence(100)]).status == "long_enough"


def test_what_is_known_before_the_run_and_what_is_not():
    assert judge_plan(50, 32, [evidence(100)]).status == "too_few_images"
    assert judge_plan(50, 1000, [None]).status == "unknown"  # no evidence: says so
    assert judge_plan(50, 1000, [evidence()]).needed_steps is None
    assert judge_plan(50, 1000, [evidence(100)], eval_every=0).status == "no_knn"
    assert judge_plan(50, None, [evidence(100)]).status == "no_knn"
