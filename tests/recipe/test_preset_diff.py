"""Each preset's differences from DINOv2 are computed from the configs, and the list in
docs/training.md is that computation (it cannot drift)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dinodiag.recipe import preset_diff
from dinodiag.recipe.presets import get_train_preset

DOC = Path(__file__).resolve().parents[2] / preset_diff.DOC


def _fields(name: str, size: bool = False) -> dict[str, tuple[object, object]]:
    diffs = preset_diff.differences(get_train_preset(name).config)
    return {d.field: (d.value, d.dinov2) for d in diffs if d.size == size}


def test_cpu_demo_lists_every_recipe_knob_it_changes():
    recipe = _fields("cpu-demo")
    assert recipe["optim.ibot_weight"] == (0.0, 1.0)
    assert recipe["optim.momentum_start"] == (0.95, 0.992)
    assert recipe["optim.teacher_temp_end"] == (0.04, 0.07)
    assert recipe["model.drop_path_rate"] == (0.0, 0.3)
    assert recipe["model.layerscale_init"] == (None, 1e-5)
    assert recipe["pipeline.global1.blur_p"] == (0.0, 1.0)  # no blur at 32 px
    assert "model.arch" not in recipe and "model.arch" in _fields("cpu-demo", size=True)


def test_the_gpu_preset_is_dinov2s_recipe_at_another_size():
    assert _fields("gpu") == {}
    assert _fields("gpu", size=True) == {
        "model.arch": ("vit_small", "vit_large"),
        "data.batch_size": (128, 64),
    }


def test_a_changed_knob_shows_and_the_documented_list_is_the_code():
    config = get_train_preset("gpu").config.with_overrides({"optim.koleo_weight": 0.0})
    assert [d.field for d in preset_diff.differences(config) if not d.size] == [
        "optim.koleo_weight"
    ]
    text = DOC.read_text(encoding="utf-8")
    assert preset_diff.rewrite(text) == text, (
        f"{preset_diff.DOC}'s preset differences are out of date: run "
        "python -m dinodiag.recipe.preset_diff --write"
    )


def test_rewriting_a_file_without_the_markers_names_the_page():
    with pytest.raises(ValueError, match="docs/training.md"):
        preset_diff.rewrite("# a page without the list\n")
