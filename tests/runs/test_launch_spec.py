"""The launch form's spec: validation with messages, the command line, the seed story's runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError, DataError
from dinodiag.runs.launch_spec import (
    LaunchSpec,
    build_command,
    detect_devices,
    device_summary,
    overrides,
    resolve_launch,
    story_pipeline,
    story_specs,
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


def test_the_seed_story_keeps_the_seeds_counts_and_scales_at_the_demo_size():
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


def test_detected_devices_end_with_the_cpu_and_its_cores():
    devices = detect_devices()
    assert devices[-1].value == "cpu" and "core" in devices[-1].label
    assert all(d.value.startswith("cuda:") for d in devices[:-1])
    assert device_summary()
