"""dinodiag.dashboard.launch_form: the training form's knobs, plan caching and estimates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import dinodiag
from dinodiag.dashboard import launch_form as lf
from dinodiag.recipe.config import ARCHS
from dinodiag.recipe.knobs import knob_table
from dinodiag.runs.estimates import EstimateStatus
from dinodiag.runs.run_plan import form_defaults, plan_run, preset_plan
from dinodiag.train.estimate import TimeEstimate
from dinodiag.train.pipelines import with_own_pipeline

FORM_KNOBS = [knob for row in lf.FORM_ROWS for knob in row]


@pytest.fixture(scope="module")
def preset():
    return preset_plan("cpu-demo")


def test_every_form_knob_is_a_knob_of_the_table_with_a_default_and_its_own_key(preset):
    fields = {knob.field for knob in knob_table()}
    defaults, _ = lf.knob_start("cpu-demo", None, preset.pipeline)
    assert all(knob.field in fields and knob.field in defaults for knob in FORM_KNOBS)
    assert len({knob.key for knob in FORM_KNOBS}) == len(FORM_KNOBS)
    assert [len(row) for row in lf.FORM_ROWS] == [5, 4, 4]
    crops = [knob.field for knob in FORM_KNOBS if knob.crop]
    assert crops == ["data.local_crops", "data.global_crops_size", "data.local_crops_size"]
    assert defaults[lf.ARCH_FIELD] in ARCHS


def test_number_widgets_take_the_default_key_and_the_knob_tables_bounds(preset):
    defaults, prefix = lf.knob_start("cpu-demo", None, preset.pipeline)
    by_field = {knob.field: knob for knob in FORM_KNOBS}
    epochs = lf.number_widget(by_field["run.epochs"], defaults, prefix)
    assert isinstance(epochs["value"], float) and epochs["key"] == prefix + "ep"
    assert epochs["value"] == preset.config.run.epochs
    seconds = lf.number_widget(by_field["run.max_seconds"], defaults, prefix)
    assert (seconds["min_value"], seconds["step"]) == (0.0, 30.0)  # 0 = no limit
    lr = lf.number_widget(by_field["optim.base_lr"], defaults, prefix)
    assert (lr["step"], lr["format"], lr["value"]) == (1e-4, "%.5f", preset.config.optim.base_lr)
    batch = lf.number_widget(by_field["data.batch_size"], defaults, prefix)
    assert batch["min_value"] == 1 and "step" not in batch and "format" not in batch


def test_knob_keys_follow_the_preset_and_the_pipeline(preset):
    recipe = dinodiag.load_config("dinov2")
    own, key = lf.knob_start("cpu-demo", None, preset.pipeline)
    scaled, recipe_key = lf.knob_start("cpu-demo", recipe, preset.pipeline)
    assert key == f"tr_cpu-demo_{preset.pipeline.name}_" and recipe_key == "tr_cpu-demo_dinov2_"
    assert own == form_defaults("cpu-demo") and scaled == form_defaults("cpu-demo", recipe)
    assert scaled["data.local_crops"] == recipe.local_crops_number


def test_a_code_plan_sets_the_patch_and_keys_the_knobs_on_the_code(preset):
    code = with_own_pipeline(preset.config, "aug.py:build").with_overrides({"model.patch_size": 4})
    plan = dataclasses.replace(preset, config=code)  # as measured: the patch fits the views
    defaults, key = lf.knob_start("cpu-demo", None, preset.pipeline, plan)
    assert defaults["model.patch_size"] == 4 and key == "tr_cpu-demo_aug.py:build_"


def test_only_a_plan_of_code_without_a_recipe_is_cached(preset):
    code = with_own_pipeline(preset.config, "aug.py:build")
    assert lf.trains_code(code, None) is True
    assert lf.trains_code(preset.config, None) is False
    assert lf.trains_code(code, dinodiag.load_config("dinov2")) is False
    assert lf.plan_cache_key(code, {"run.seed": 1}) != lf.plan_cache_key(code, {"run.seed": 2})
    assert lf.plan_cache_key(code, {"run.seed": 1}) == lf.plan_cache_key(code, {"run.seed": 1})


def test_estimates_are_kept_per_config_and_recipe(preset):
    plan = plan_run(preset.config, {}, check_data=False)
    same = plan_run(preset.config, {}, check_data=False)
    other = plan_run(preset.config, {"run.seed": 7}, check_data=False)
    recipe = plan_run(preset.config, {}, recipe=dinodiag.load_config("dinov2"), check_data=False)
    assert lf.estimate_key(plan) == lf.estimate_key(same)
    assert len({lf.estimate_key(plan), lf.estimate_key(other), lf.estimate_key(recipe)}) == 3


def test_running_jobs_are_the_answers_still_measuring():
    found = {"a": {"job": "/tmp/a"}, "b": {"text": "done"}, "c": {"error": "failed"}}
    assert lf.running_jobs(found) == {"a": Path("/tmp/a")}
    assert lf.running_jobs({}) == {}


def status(**changes: object) -> EstimateStatus:
    return EstimateStatus(**{"state": "done", "stage": "knn", "steps_done": 4, "steps": 4,
                             "elapsed_s": 9.0, "left_s": 0.0, **changes})  # fmt: skip


def test_a_failed_estimate_keeps_its_error(preset, tmp_path):
    plan = plan_run(preset.config, {}, check_data=False)
    assert lf.estimate_answer(status(state="failed", error="out of memory"), plan, tmp_path) == {
        "error": "out of memory"
    }
    assert "error" in lf.estimate_answer(status(state="failed"), plan, tmp_path)


def test_a_finished_estimate_gives_the_times_and_the_judgement(preset, tmp_path):
    plan = plan_run(preset.config, {}, check_data=False)
    measured = TimeEstimate(5.0, 0.5, 0.4, 1.5, 100, 50, None, 50, 2, 28.0, knn_test=500)
    answer = lf.estimate_answer(status(estimate=measured), plan, tmp_path)
    assert list(answer) == ["text"]
    measured_part, judged_part = answer["text"].split("\n\n")
    assert measured_part == measured.sentence() and "50" in judged_part


def test_a_planner_message_names_the_forms_widgets_not_the_command_lines_flags():
    from dinodiag.dashboard.launch_form import in_form_words

    said = in_form_words("use --patch-size 3 or 6; --global-crops-size 32; --device cuda:1")
    assert "**Patch size** 3 or 6" in said and "**Global crop (px)** 32" in said
    assert "--patch-size" not in said and "--device cuda:1" in said  # no widget: the flag stays
    assert in_form_words("--local-crops-size 8") == "**Local crop (px)** 8"  # not Local crops
