"""Apply the fixes with "Keep my resolution": the reference scaled to your global size."""

from __future__ import annotations

from apphelpers import assert_no_exception, texts

from dinodiag.augment.presets import get_preset
from dinodiag.checks.fixes import at_resolution
from tests.facts import assert_mentions


def test_keep_my_resolution_scales_the_reference_to_your_globals(app):
    at = app()
    at.selectbox(key="pl_preset").set_value("seed-broken").run()  # 96 px globals, no locals
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    at.button(key="val_fix").click().run()
    at.toggle(key="val_fix_size").set_value(True).run()
    assert_no_exception(at)
    fixes = at.dataframe[0].value.set_index("field")
    assert "global_crops_size" not in fixes.index  # 96 px kept, not raised to 224
    assert fixes.loc["local_crops_size", "dinov2"] == "48"  # 96 x 96 / 224 = 41 -> 3 patches
    assert_mentions(texts(at), "96 / 48 px", "(patch 16)")  # the sizes kept, patch-aligned


def test_at_resolution_is_patch_aligned():
    dinov2 = get_preset("dinov2").config
    assert at_resolution(dinov2, 224) == (dinov2, "")
    scaled, note = at_resolution(dinov2, 100)  # 100 px: rounded to 96, six patches
    assert (scaled.global_crops_size, scaled.local_crops_size) == (96, 48)
    assert_mentions(note, "224 / 96 px", "scaled", "96 / 48 px")  # from the reference's, to
    tiny, _ = at_resolution(dinov2, 20)  # never below one patch
    assert (tiny.global_crops_size, tiny.local_crops_size) == (16, 16)
