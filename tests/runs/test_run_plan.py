"""What a dashboard run trains: a preset's TrainConfig with the form's changes, validated with
messages that name the field, the recipe scaled to the run's crop size, your code measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError, DataError
from dinodiag.recipe.plan import PIPELINE_FILE, scaled_pipeline
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.run_plan import (
    form_defaults,
    plan_run,
    preset_plan,
    recipe_overrides,
    reference_at,
)
from dinodiag.train.pipelines import with_own_pipeline
from tests.facts import assert_mentions


def preset(name: str) -> Any:
    return get_train_preset(name).config


def test_a_preset_alone_resolves_to_its_config_and_step_count():
    plan = plan_run(preset("tiny-test"))
    assert plan.config.name == "tiny-test" and plan.recipe is None and not plan.own
    assert plan.pipeline.global_crops_size == 16 and plan.pipeline.local_crops_number == 2
    assert plan.train_images == 64
    assert plan.steps == 4  # 16 steps per epoch, capped by the preset's max_steps 4


def test_changes_are_config_fields_and_zero_means_no_limit():
    changes = {
        "data.batch_size": 32,
        "optim.base_lr": 1e-3,
        "run.max_seconds": 0,
        "run.max_steps": 0,
        "data.local_crops": 2,
        "run.device": "cpu",
        "run.seed": 3,
    }
    plan = plan_run(preset("cpu-demo"), changes, check_data=False)
    config = plan.config
    assert config.data.batch_size == 32 and config.optim.base_lr == 1e-3
    assert config.run.max_seconds is None and config.run.max_steps is None
    assert config.run.seed == 3 and plan.train_images is None
    assert plan.pipeline.local_crops_number == 2


def test_changing_the_architecture_drops_the_presets_custom_width():
    small = plan_run(preset("cpu-demo"), {"model.arch": "vit_small"}, check_data=False).config
    assert small.model.embed_dim is None and small.model.num_heads is None
    tiny = plan_run(preset("cpu-demo"), {"model.arch": "vit_tiny"}, check_data=False).config
    assert tiny.model.embed_dim == 64  # the preset's own arch keeps its width


@pytest.mark.parametrize(
    ("name", "changes", "recipe", "facts"),
    [
        (
            "tiny-test",
            {"data.global_crops_size": 18},
            None,
            ["global_crops_size = 18", "patch size 4", "16 or 20"],
        ),
        ("tiny-test", {"data.batch_size": 100}, None, ["batch size 100", "training set (64"]),
        ("tiny-test", {"data.batch_size": 1}, None, ["KoLeo", "at least 2 images"]),
        ("tiny-test", {"run.device": "cuda:99"}, None, ["'cuda:99'", "not available"]),
        ("tiny-test", {"optim.base_lr": -1.0}, None, ["optim.base_lr = -1.0", "invalid"]),
        (
            "tiny-test",
            {"data.local_crops": 0, "data.global_crops_size": 16},
            get_preset("seed-broken").config.replace(global_crops_number=1),
            ["single view"],
        ),
        ("cpu-demmo", {}, None, ["'cpu-demmo'", "Did you mean 'cpu-demo'"]),
    ],
)
def test_bad_changes_give_messages_that_name_them(name, changes, recipe, facts):
    with pytest.raises(ConfigError) as error:
        plan_run(get_train_preset(name).config, changes, recipe=recipe)
    assert_mentions(str(error.value), *facts)


def test_a_missing_dataset_is_a_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="does_not_exist"):
        plan_run(preset("tiny-test"), {"data.data": str(tmp_path / "does_not_exist")})


def test_scaled_pipeline_keeps_at_least_one_patch_and_rejects_sizes_below_one():
    # (counts, scales and proportional sizes: tests/runs/test_manager.py)
    assert scaled_pipeline(get_preset("dinov2").config, 8, 8).local_crops_size == 8
    with pytest.raises(ConfigError, match="must be >= 1"):
        scaled_pipeline(get_preset("dinov2").config, 0, 4)


def test_the_forms_starting_values_are_the_presets_knobs():
    knobs = form_defaults("cpu-demo")
    assert (knobs["run.epochs"], knobs["run.max_seconds"], knobs["run.max_steps"]) == (30.0, 270, 0)
    assert (knobs["data.batch_size"], knobs["model.arch"]) == (64, "vit_tiny")
    assert (knobs["model.patch_size"], knobs["model.depth"]) == (4, 4)
    crops = ("data.local_crops", "data.global_crops_size", "data.local_crops_size")
    assert tuple(knobs[k] for k in crops) == (4, 32, 16)
    fixed = form_defaults("cpu-demo", get_preset("seed-fixed").config)  # 96 / 96 px, 8 locals
    assert tuple(fixed[k] for k in crops) == (8, 32, 32)
    plan = plan_run(preset("cpu-demo"), knobs, check_data=False)  # the starting values are valid
    assert plan.config.run.max_seconds == 270 and plan.config.run.max_steps is None


def test_the_sidebar_recipe_is_trained_at_the_runs_crop_size():
    changes = {"data.global_crops_size": 32, "model.patch_size": 4}
    plan = plan_run(
        preset("cpu-demo"), changes, recipe=get_preset("dinov2").config, check_data=False
    )
    recipe = plan.recipe
    assert recipe is not None and recipe == plan.pipeline  # written as pipeline.yaml
    assert (recipe.global_crops_size, recipe.local_crops_size, recipe.patch_size) == (32, 12, 4)
    assert recipe.local_crops_number == 4  # cpu-demo's data.local_crops applies to it
    assert plan.config.data.pipeline == PIPELINE_FILE and plan.config.data.pipeline_kwargs == ""
    pinned = plan_run(
        preset("cpu-demo"),
        recipe_overrides(scaled_pipeline(get_preset("dinov2").config, 32, 4), 4),
        recipe=get_preset("dinov2").config,
        check_data=False,
    )
    assert pinned.pipeline.local_crops_number == 8  # the recipe's own count, pinned


def test_the_plan_summary_says_steps_views_and_budget():
    plan = plan_run(preset("tiny-test"), {"run.max_seconds": 90})
    summary = plan.summary()
    assert summary.startswith("Up to 4 steps")  # a budget: the steps are at most
    assert_mentions(summary, "of 4 images", "64 training images", "90 s", "set-up and k-NN")
    assert_mentions(summary, "2 × 16 px + 2 × 8 px", "`small-images`")  # the views, the pipeline
    plain = plan_run(preset("tiny-test"), {"data.local_crops": 0, "run.max_seconds": 0})
    assert ", stopping" not in plain.summary() and "views per image: 2 × 16 px;" in plain.summary()
    assert plain.summary().startswith("4 steps of 4 images")  # no budget: the count is the plan


SEED_CODE = f"{Path(__file__).resolve().parents[2] / 'examples/seed_pipeline.py'}"


def test_a_plan_of_your_code_is_measured_and_its_patch_adapted():
    base = with_own_pipeline(
        preset("tiny-test"), f"{SEED_CODE}:build_two_view_augment", '{"img_size": 18}'
    )
    assert base.data.local_crops is None  # the crop fields are the code's
    plan = plan_run(base)
    assert plan.own and plan.config.model.patch_size == 3
    assert "patch size 3 instead of 4" in plan.adapted
    assert plan.pipeline.global_crops_size == 18 and plan.views is not None
    assert plan.views.global_number == 2 and plan.views.global_size == (18, 18)
    assert plan.train_images == 64  # the images were opened to measure the code
    assert plan.config.data.pipeline_kwargs == '{"img_size": 18}' and plan.recipe is None
    summary = plan.summary()
    assert_mentions(
        summary, "2 × 18 px;", "your code `seed_pipeline.py:", "build_two_view_augment`"
    )
    # the patch changed, why (the code's crops) and how to choose another, said last
    assert summary.rstrip(".").endswith(plan.adapted)
    assert_mentions(plan.adapted, "build_two_view_augment", "18x18 px", "of 4", "--patch-size")
    with pytest.raises(ConfigError, match="--patch-size 3 or 6 or 2"):
        plan_run(base, {"model.patch_size": 4})  # a patch the user chose is not changed
    with pytest.raises(ConfigError) as info:
        plan_run(base, {"data.global_crops_size": 32})
    # the flag and its field, whose pipeline it cannot change, and where the sizes go instead
    facts = ["--global-crops-size", "data.global_crops_size", "your own", "--pipeline-kwargs"]
    assert_mentions(str(info.value), *facts)


def test_the_reference_is_scaled_to_the_crop_sizes_of_yours():
    base = with_own_pipeline(
        preset("tiny-test"),
        f"{SEED_CODE}:build_multicrop_augment",
        '{"img_size": 16, "num_local_crops": 2}',
    )
    plan = plan_run(base)
    dinov2 = get_preset("dinov2").config
    reference = reference_at(plan, dinov2)
    assert (reference.global_crops_size, reference.local_crops_size) == (16, 96)
    assert reference.local_crops_number == dinov2.local_crops_number == 8
    assert reference.name == "dinov2@16px" and reference.patch_size == 4
    two_views = plan_run(preset("tiny-test"), {"data.local_crops": 0})
    assert reference_at(two_views, dinov2).local_crops_size == 8  # 224 / 96 scaled to 16 px
    pinned = recipe_overrides(reference, 4)
    assert pinned == {
        "data.local_crops": 8,
        "data.global_crops_size": 16,
        "data.local_crops_size": 96,
        "model.patch_size": 4,
    }


def test_a_preset_plan_does_not_open_the_data_and_with_run_changes_run_fields_only():
    plan = preset_plan("cpu-demo")
    assert plan.train_images is None and plan.config.name == "cpu-demo"
    assert plan.with_run({"run.threads": 2}).config.run.threads == 2
    with pytest.raises(ConfigError, match="run.\\* fields only"):
        plan.with_run({"data.batch_size": 2})


def test_runs_of_your_code_compare_by_their_files_hash():
    from dinodiag.runs.compare import config_diff

    def config(sha: str) -> dict:
        return {"data": {"pipeline": "aug.py:build"}, "own_pipeline": {"sha256": sha}}

    diff = config_diff({"a": config("1" * 64), "b": config("2" * 64)})
    assert list(diff.index) == ["own_pipeline.sha256"]
