"""The launch form's spec: validation with messages, the command line, the scaled recipe."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError, DataError
from dinodiag.runs.launch_spec import (
    LaunchSpec,
    build_command,
    overrides,
    preset_knobs,
    reference_at,
    resolve_launch,
    scaled_pipeline,
    spec_for_recipe,
)


def test_a_preset_alone_resolves_to_its_config_and_step_count():
    plan = resolve_launch(LaunchSpec(preset="tiny-test"))
    assert plan.config.name == "tiny-test"
    assert plan.pipeline.global_crops_size == 16 and plan.pipeline.local_crops_number == 2
    assert plan.train_images == 64
    assert plan.steps == 4  # 16 steps per epoch, capped by the preset's max_steps 4


def test_knobs_become_config_fields_and_zero_means_no_limit():
    spec = LaunchSpec(
        preset="cpu-demo",
        batch_size=32,
        lr=1e-3,
        max_seconds=0,
        max_steps=0,
        local_crops=2,
        device="cpu",
        seed=3,
    )
    changes = overrides(spec)
    assert changes["data.batch_size"] == 32 and changes["optim.base_lr"] == 1e-3
    assert changes["run.max_seconds"] is None and changes["run.max_steps"] is None
    plan = resolve_launch(spec, check_data=False)
    assert plan.config.run.max_seconds is None and plan.config.run.seed == 3
    assert plan.pipeline.local_crops_number == 2


def test_changing_the_architecture_drops_the_presets_custom_width():
    changes = overrides(LaunchSpec(preset="cpu-demo", arch="vit_small"))
    assert changes["model.embed_dim"] is None and changes["model.num_heads"] is None
    assert "model.embed_dim" not in overrides(LaunchSpec(preset="cpu-demo", arch="vit_tiny"))


def test_build_command_is_the_cli_with_one_flag_per_knob(tmp_path: Path):
    spec = LaunchSpec(preset="tiny-test", epochs=2.5, max_seconds=0, batch_size=8, arch="vit_tiny")
    command = build_command(spec, tmp_path / "r", tmp_path / "p.yaml")
    assert command[:4] == [sys.executable, "-m", "dinodiag", "train"]
    joined = " ".join(command)
    assert (
        f"--preset tiny-test --run-dir {tmp_path / 'r'} --pipeline {tmp_path / 'p.yaml'}" in joined
    )
    assert "--epochs 2.5" in joined and "--batch-size 8" in joined and "--arch vit_tiny" in joined
    assert "--set run.max_seconds=none" in joined
    assert "--lr" not in joined  # knobs left at None keep the preset's value


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (LaunchSpec(preset="tiny-test", global_size=18), "not a multiple of the ViT patch size 4"),
        (LaunchSpec(preset="tiny-test", batch_size=100), "larger than the training set (64"),
        (LaunchSpec(preset="tiny-test", batch_size=1), "KoLeo needs at least 2 images"),
        (LaunchSpec(preset="tiny-test", device="cuda:99"), "is not available"),
        (LaunchSpec(preset="tiny-test", lr=-1.0), "optim.base_lr = -1.0 is invalid"),
        (
            LaunchSpec(
                preset="tiny-test",
                local_crops=0,
                global_size=16,
                pipeline=get_preset("seed-broken").config.replace(global_crops_number=1),
            ),
            "single view",
        ),
        (LaunchSpec(preset="cpu-demmo"), "Did you mean 'cpu-demo'"),
    ],
)
def test_bad_knobs_give_messages_that_name_them(spec: LaunchSpec, message: str):
    with pytest.raises(ConfigError, match=None) as error:
        resolve_launch(spec)
    assert message in str(error.value)


def test_a_missing_dataset_is_a_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="does_not_exist"):
        resolve_launch(LaunchSpec(preset="tiny-test", data=str(tmp_path / "does_not_exist")))


def test_scaled_pipeline_keeps_at_least_one_patch_and_rejects_sizes_below_one():
    # (counts, scales and proportional sizes: tests/runs/test_manager.py)
    assert scaled_pipeline(get_preset("dinov2").config, 8, 8).local_crops_size == 8
    with pytest.raises(ConfigError, match="must be >= 1"):
        scaled_pipeline(get_preset("dinov2").config, 0, 4)


def test_the_forms_starting_values_are_the_presets_knobs():
    knobs = preset_knobs("cpu-demo")
    assert (knobs.epochs, knobs.max_seconds, knobs.max_steps) == (30.0, 270, 0)
    assert (knobs.batch_size, knobs.arch, knobs.patch_size, knobs.depth) == (64, "vit_tiny", 4, 4)
    assert (knobs.local_crops, knobs.global_size, knobs.local_size) == (4, 32, 16)
    fixed = preset_knobs("cpu-demo", get_preset("seed-fixed").config)  # 96 / 96 px, 8 locals
    assert (fixed.local_crops, fixed.global_size, fixed.local_size) == (8, 32, 32)
    plan = resolve_launch(knobs, check_data=False)  # the starting values are valid
    assert plan.config.run.max_seconds == 270 and plan.config.run.max_steps is None


def test_the_sidebar_recipe_is_trained_at_the_forms_crop_size():
    spec = LaunchSpec(preset="cpu-demo", global_size=32, patch_size=4)
    recipe = spec.with_recipe(get_preset("dinov2").config).pipeline
    assert (recipe.global_crops_size, recipe.local_crops_size, recipe.patch_size) == (32, 12, 4)
    assert recipe.local_crops_number == 8
    assert spec.with_recipe(None).pipeline is None


def test_the_plan_summary_says_steps_views_and_budget():
    plan = resolve_launch(LaunchSpec(preset="tiny-test", max_seconds=90))
    assert plan.summary() == (
        "Up to 4 steps of 4 images (64 training images), stopping at 90 s (set-up and k-NN "
        "included); views per image: "
        "2 × 16 px + 2 × 8 px; pipeline `small-images`."
    )
    plain = resolve_launch(LaunchSpec(preset="tiny-test", local_crops=0, max_seconds=0))
    assert ", stopping" not in plain.summary() and "views per image: 2 × 16 px;" in plain.summary()
    assert plain.summary().startswith("4 steps of 4 images")  # no budget: the count is the plan


SEED_CODE = f"{Path(__file__).resolve().parents[2] / 'examples/seed_pipeline.py'}"


def test_a_spec_of_your_code_is_measured_and_its_patch_adapted(tmp_path: Path):
    spec = LaunchSpec(preset="tiny-test", local_crops=3).with_code(
        f"{SEED_CODE}:build_two_view_augment", '{"img_size": 18}'
    )
    assert spec.brought and spec.local_crops is None  # the crop knobs are the code's
    plan = resolve_launch(spec)
    assert plan.config.model.patch_size == 3 and "patch size 3 instead of 4" in plan.adapted
    assert plan.pipeline.global_crops_size == 18 and plan.run_pipeline is not None
    assert plan.config.data.pipeline_kwargs == '{"img_size": 18}'
    summary = plan.summary()
    assert "2 × 18 px; your code `seed_pipeline.py:build_two_view_augment`" in summary
    assert summary.endswith(
        "ViT patch size 3 instead of 4: the crops of seed_pipeline.py:build_two_view_augment "
        "(18x18 px) are not multiples of 4 (give --patch-size to choose another)."
    )
    command = build_command(spec, tmp_path / "run")
    at = command.index("--pipeline")
    assert command[at + 1 : at + 4] == [
        f"{SEED_CODE}:build_two_view_augment",
        "--pipeline-kwargs",
        '{"img_size": 18}',
    ]
    assert "--local-crops" not in command and "--global-size" not in command
    with pytest.raises(ConfigError, match="--patch-size 3 or 6 or 2"):
        resolve_launch(replace(spec, patch_size=4))  # a patch the user chose is not changed
    with pytest.raises(ConfigError, match="--global-size cannot change your own pipeline"):
        resolve_launch(replace(spec, global_size=32))
    assert spec.with_recipe(None).pipeline_spec is None  # back to the preset's recipe


def test_the_reference_is_scaled_to_the_crop_sizes_of_yours():
    code = LaunchSpec(preset="tiny-test").with_code(
        f"{SEED_CODE}:build_multicrop_augment", '{"img_size": 16, "num_local_crops": 2}'
    )
    plan = resolve_launch(code)
    dinov2 = get_preset("dinov2").config
    reference = reference_at(plan, dinov2)
    assert (reference.global_crops_size, reference.local_crops_size) == (16, 96)
    assert reference.local_crops_number == dinov2.local_crops_number == 8
    assert reference.name == "dinov2@16px" and reference.patch_size == 4
    two_views = resolve_launch(LaunchSpec(preset="tiny-test", local_crops=0))
    assert reference_at(two_views, dinov2).local_crops_size == 8  # 224 / 96 scaled to 16 px
    pinned = spec_for_recipe(LaunchSpec(preset="tiny-test"), reference, 4)
    assert (pinned.local_crops, pinned.global_size, pinned.local_size) == (8, 16, 96)


def test_runs_of_your_code_compare_by_their_files_hash():
    from dinodiag.runs.compare import config_diff

    def config(sha: str) -> dict:
        return {"data": {"pipeline": "aug.py:build"}, "brought_pipeline": {"sha256": sha}}

    diff = config_diff({"a": config("1" * 64), "b": config("2" * 64)})
    assert list(diff.index) == ["brought_pipeline.sha256"]
