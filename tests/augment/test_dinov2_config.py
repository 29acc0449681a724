"""DINOv2 configs merged over DINOv2's defaults, as its trainer merges them."""

from __future__ import annotations

import pytest
import yaml

from dinodiag.augment.dinov2_config import (
    DINOV2_DEFAULTS,
    is_dinov2_config,
    pipeline_values,
    resolve_dinov2_config,
)
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions

# The shape of DINOv2's configs/train files (values as REFERENCE.md states them).
PATCH14 = """
dino: {head_n_prototypes: 131072, head_bottleneck_dim: 384}
ibot: {separate_head: true, head_n_prototypes: 131072}
train: {batch_size_per_gpu: 32, centering: sinkhorn_knopp}
student: {arch: vit_large, patch_size: 14, drop_path_rate: 0.4, ffn_layer: swiglufused}
crops: {local_crops_size: 98}
"""
SHORT = """
train: {dataset_path: "ImageNet:split=TRAIN", batch_size_per_gpu: 64}
student: {block_chunks: 4}
"""


def test_file_values_override_defaults_and_the_rest_stays_default() -> None:
    resolved = resolve_dinov2_config(yaml.safe_load(PATCH14), source="vitl14.yaml")
    assert resolved.get("crops.local_crops_size") == 98
    assert resolved.get("student.patch_size") == 14
    assert resolved.get("crops.global_crops_scale") == [0.32, 1.0]
    assert resolved.get("crops.local_crops_number") == 8
    assert resolved.get("train.centering") == "sinkhorn_knopp"
    assert resolved.origin("crops.local_crops_size") == "file"
    assert resolved.origin("crops.global_crops_size") == "DINOv2 default"
    assert pipeline_values(resolved) == {
        "global_crops_scale": [0.32, 1.0],
        "local_crops_number": 8,
        "local_crops_scale": [0.05, 0.32],
        "global_crops_size": 224,
        "local_crops_size": 98,
        "patch_size": 14,
    }


def test_a_config_without_crops_is_a_dinov2_config_with_default_crops() -> None:
    data = yaml.safe_load(SHORT)
    assert is_dinov2_config(data)
    resolved = resolve_dinov2_config(data, source="vitl16_short.yaml")
    assert pipeline_values(resolved)["global_crops_scale"] == [0.32, 1.0]
    assert pipeline_values(resolved)["patch_size"] == 16
    assert resolved.from_file == {
        "train.dataset_path",
        "train.batch_size_per_gpu",
        "student.block_chunks",
    }


def test_defaults_are_not_mutated_by_a_merge() -> None:
    before = DINOV2_DEFAULTS["crops"]["local_crops_size"]
    resolve_dinov2_config({"crops": {"local_crops_size": 64}})
    assert DINOV2_DEFAULTS["crops"]["local_crops_size"] == before == 96


def test_dinodiag_pipeline_files_are_not_dinov2_configs() -> None:
    assert not is_dinov2_config({"global_crops_size": 224, "global1": {"blur_p": 1.0}})
    assert not is_dinov2_config({})
    assert not is_dinov2_config(["crops"])


def test_unknown_crop_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_dinov2_config({"crops": {"local_crop_size": 96}}, source="my.yaml")
    assert str(info.value).startswith("my.yaml: ")
    assert_mentions(str(info.value), "unknown key", "'crops.local_crop_size'", "local_crops_size")


def test_unknown_sections_and_keys_elsewhere_are_kept_and_noted() -> None:
    resolved = resolve_dinov2_config(
        {"student": {"my_flag": 1}, "custom": {"a": 1}, "compute_precision": {"grad_scaler": True}}
    )
    assert resolved.get("student.my_flag") == 1
    assert any("student.my_flag" in n for n in resolved.notes)
    assert any("'custom'" in n for n in resolved.notes)
    assert any("compute_precision" in n for n in resolved.notes)


def test_a_section_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_dinov2_config({"crops": [1, 2]}, source="f.yaml")
    assert str(info.value).startswith("f.yaml: ")
    assert_mentions(str(info.value), "section 'crops'", "mapping")


def test_the_section_the_fixes_write_reads_back_to_the_same_pipeline_values():
    """One key map both ways (PIPELINE_KEYS): what the fixes write into a DINOv2 config is
    what the reader takes from it."""
    from dinodiag.augment.presets import get_preset
    from dinodiag.checks.fixes import dinov2_section

    config = get_preset("seed-fixed").config.replace(local_crops_number=6, patch_size=8)
    written = yaml.safe_load(dinov2_section(config))
    values = pipeline_values(resolve_dinov2_config(written, source="fixed.yaml"))
    assert values == {
        "global_crops_scale": list(config.global_crops_scale),
        "local_crops_number": 6,
        "local_crops_scale": list(config.local_crops_scale),
        "global_crops_size": config.global_crops_size,
        "local_crops_size": config.local_crops_size,
        "patch_size": 8,
    }
