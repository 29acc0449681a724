"""What the training page says in words (issue 23): what a run trains and why, the
comparison rows at launch, unequal steps, and why an ended run has no k-NN."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from dinodiag.augment.presets import get_preset
from dinodiag.dashboard.run_status import knn_absence, steps_note, story_rows, what_trains
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.run_plan import form_defaults, plan_run, preset_plan
from tests.facts import assert_mentions

LABELS = {"yours": "yours", "reference": "the reference"}


def info(state: str, step: int = 0, message: str = "waiting for the run before it"):
    return SimpleNamespace(
        state=state, step=step, message=message, active=state in ("queued", "running")
    )


def test_the_form_says_the_sidebar_recipe_is_rescaled_to_the_presets_resolution():
    dinov2 = get_preset("dinov2").config
    base = get_train_preset("cpu-demo").config
    plan = plan_run(base, form_defaults("cpu-demo", dinov2), recipe=dinov2, check_data=False)
    text = what_trains("recipe", "cpu-demo", plan.pipeline, plan.config.model.patch_size, dinov2)
    assert "the sidebar's recipe `dinov2`" in text
    assert_mentions(text, "32 px globals", "8×8 patches of 4 px", "12 px locals", "3×3 patches")
    assert "rescaled from its 224 / 96 px" in text and "not the `cpu-demo` set-up" in text
    own = preset_plan("cpu-demo")
    text = what_trains("preset", "cpu-demo", own.pipeline, own.config.model.patch_size)
    assert_mentions(text, "the `cpu-demo` set-up", "as it is")
    assert "small-images" not in text


def test_at_launch_the_first_queued_run_starts_and_the_second_waits_for_it():
    rows = story_rows({"yours": info("queued"), "reference": info("queued")}, LABELS)
    assert rows.keys() == {"yours", "reference"}
    assert rows["yours"].startswith("starting: ") and "queue" in rows["yours"]
    assert_mentions(rows["reference"], "waiting for yours", "one run at a time")
    later = story_rows({"yours": info("running", 5, "step 5"), "reference": info("queued")}, LABELS)
    assert later["yours"] == "step 5" and later["reference"].startswith("waiting for yours")


def test_unequal_steps_are_said():
    both = {"yours": info("finished", 43), "reference": info("finished", 29)}
    assert_mentions(steps_note(both, LABELS), "Not the same number", "yours 43", "29")
    assert (
        steps_note({"yours": info("finished", 40), "reference": info("finished", 40)}, LABELS)
        is None
    )
    assert (
        steps_note({"yours": info("running", 4), "reference": info("finished", 9)}, LABELS) is None
    )


def test_an_ended_run_without_k_nn_says_why():
    empty = pd.DataFrame()
    assert "none was planned" in knn_absence(info("finished"), {"run": {"eval_every": 0}}, empty)
    failed = knn_absence(info("failed"), {"run": {"eval_every": 5}}, empty)
    assert_mentions(failed, "ended (failed)", "before the first")
    assert knn_absence(info("running"), {"run": {"eval_every": 0}}, empty) is None
    evals = pd.DataFrame({"kind": ["eval"], "knn_top1": [10.0]})
    assert knn_absence(info("finished"), {"run": {"eval_every": 0}}, evals) is None
