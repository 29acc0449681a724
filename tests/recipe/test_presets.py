"""Training presets: valid, resolvable, and the cpu-demo derived from the small-images pipeline."""

from __future__ import annotations

import pytest

from dinodiag.augment.presets import get_preset
from dinodiag.errors import ConfigError
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.recipe.presets import TRAIN_PRESETS, get_train_preset, train_preset_names
from dinodiag.train.builders import build_student


@pytest.mark.parametrize("name", list(TRAIN_PRESETS))
def test_every_preset_resolves(name):
    preset = get_train_preset(name)
    assert preset.config.name == name and preset.description
    pipeline = resolve_pipeline(preset.config)
    assert pipeline.global_crops_size % preset.config.model.patch_size == 0


def test_cpu_demo_is_small_images_pipeline_and_bounded_in_time():
    cfg = get_train_preset("cpu-demo").config
    pipeline = resolve_pipeline(cfg)
    small = get_preset("small-images").config
    assert cfg.data.pipeline == "small-images"
    assert (pipeline.global_crops_size, pipeline.local_crops_size, pipeline.patch_size) == (
        32,
        16,
        4,
    )
    assert pipeline.global_crops_scale == small.global_crops_scale
    assert pipeline.global1.blur_p == pipeline.global2.blur_p == pipeline.local.blur_p == 0.0
    assert cfg.data.data.startswith("generated")
    assert cfg.run.max_seconds is not None and cfg.run.max_seconds <= 280
    assert 0 < cfg.run.eval_every and cfg.model.num_prototypes <= 1024


def test_cpu_demo_model_is_small():
    cfg = get_train_preset("cpu-demo").config
    student = build_student(cfg.model, resolve_pipeline(cfg))
    weights = sum(p.numel() for p in student.parameters())
    assert weights < 2_000_000


def test_gpu_preset_is_the_dinov2_recipe():
    cfg = get_train_preset("gpu").config
    pipeline = resolve_pipeline(cfg)
    assert (pipeline.global_crops_size, pipeline.local_crops_size) == (224, 96)
    assert cfg.model.arch == "vit_small" and cfg.model.patch_size == 16
    assert cfg.run.precision == "auto"  # bf16 on CUDA


def test_tiny_test_is_tiny():
    cfg = get_train_preset("tiny-test").config
    assert cfg.model.depth == 1 and cfg.model.embed_dim == 32 and cfg.data.batch_size == 4
    assert resolve_pipeline(cfg).global_crops_size == 16


def test_unknown_preset_suggests():
    assert "cpu-demo" in train_preset_names()
    with pytest.raises(ConfigError, match="Did you mean 'cpu-demo'"):
        get_train_preset("cpu_demoo")
    assert get_train_preset("CPU_DEMO").name == "cpu-demo"
