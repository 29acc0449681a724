"""Time estimates before launch: what fits in a budget, measured on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.estimate import evaluations_for, fit_steps
from dinodiag.train.warmup import estimate_training
from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]


def test_evaluations_count_step_0_every_n_and_the_end():
    assert evaluations_for(300, 100) == 4  # 0, 100, 200, 300
    assert evaluations_for(250, 100) == 4  # 0, 100, 200 and the last at 250
    assert evaluations_for(50, 0) == 0


def test_fit_steps_stops_where_steps_evaluations_and_checkpoint_meet_the_budget():
    # set-up 10 s (with the step-0 k-NN), first step 2 s, then 1 s a step, k-NN 5 s every 10
    steps, evaluations, total = fit_steps(10.0, 2.0, 1.0, 5.0, 10, 1000, 100.0)
    assert (steps, evaluations) == (58, 7)  # 0, 10, ..., 50 and the last at 58
    assert total == pytest.approx(10 + 2 + 57 + 6 * 5 + 1.0) and total <= 100.0
    assert fit_steps(10.0, 2.0, 1.0, 5.0, 10, 1000, 100.0 + 0.99)[0] == 58
    assert fit_steps(10.0, 2.0, 1.0, 5.0, 10, 1000, None)[0] == 1000  # no budget: all
    assert fit_steps(10.0, 2.0, 1.0, 5.0, 10, 20, 100.0)[:2] == (20, 3)  # all fit
    assert fit_steps(30.0, 2.0, 1.0, 5.0, 10, 100, 20.0)[0] == 0  # the set-up alone is over


def test_the_estimate_measures_a_tiny_run_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = get_train_preset("tiny-test").config.with_overrides(
        {"run.eval_every": 2, "run.max_seconds": 600.0}
    )
    estimate = estimate_training(config)
    assert estimate.step_s > 0 and estimate.first_step_s > 0 and estimate.eval_s > 0
    assert estimate.planned_steps == 4 and estimate.steps == 4  # 600 s is plenty
    assert estimate.evaluations == 3
    assert estimate.knn_test is not None and 0 < estimate.knn_test <= 32  # tiny-test's at most
    sentence = estimate.sentence()
    # every planned step fits the budget: all of them, the evaluations and the time they take
    assert_mentions(sentence, "All 4 steps", "3 k-NN evaluations", f"{estimate.total_s:.0f} s.")
    assert "budget" not in sentence
    assert list(tmp_path.iterdir()) == []  # no run directory, no lock


# slow (~25 s: two subprocesses); the estimate is measured in-process above, and its JSON on
# standard output by test_train_yours' test_machine_read_output_stays_json_...
@pytest.mark.slow
def test_train_estimate_prints_json_and_says_when_the_budget_is_too_short():
    command = [sys.executable, "-m", "dinodiag", "train", "--preset", "tiny-test"]
    done = subprocess.run(
        [*command, "--max-seconds", "0.5", "--estimate", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout.strip().splitlines()[-1])
    assert data["budget_s"] == 0.5 and data["steps"] == 0
    assert data["setup_s"] > 0.5  # the imports alone take longer: counted from the start
    assert data["knn_plan"]["status"] == "no_knn"  # tiny-test evaluates no k-NN
    text = subprocess.run(
        [*command, "--max-seconds", "0.5", "--estimate"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    ).stdout
    assert "Too short to learn anything" in text and "set-up" in text
