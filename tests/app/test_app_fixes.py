"""Validation's "Apply the fixes": the corrected config, its diff, downloads, and a re-check."""

from __future__ import annotations

import yaml
from apphelpers import assert_no_exception, texts

from tests.facts import assert_mentions


def test_apply_the_fixes_shows_the_diff_and_a_reload_re_checks_to_pass(app):
    at = app()
    at.selectbox(key="pl_preset").set_value("seed-broken").run()
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    assert at.session_state["dinodiag_last_report"].verdict == "fail"
    at.button(key="val_fix").click().run()
    assert_no_exception(at)
    table = at.dataframe[0].value
    assert list(table["field"]) == [
        "global_crops_size",
        "global_crops_scale",
        "local_crops_number",
        "local_crops_size",
        "local_crops_scale",
    ]
    assert table.set_index("field").loc["global_crops_scale", "dinov2"] == "(0.32, 1)"
    diff = at.code[0].value
    assert "-global_crops_size: 96\n" in diff and "+global_crops_size: 224\n" in diff
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Download (dinodiag YAML)", "Download (DINOv2 crops:)"} <= labels
    at.button(key="val_fix_load").click().run()
    assert_no_exception(at)
    ctx = at.session_state["dinodiag_context"]
    assert at.radio(key="pl_source").value == "config"
    assert ctx.config.name == "seed-broken-fixed" and ctx.config.local_crops_number == 8
    assert yaml.safe_load(at.text_area(key="pl_text").value)["global_crops_size"] == 224
    report = at.session_state["dinodiag_last_report"]  # checked again, at once
    assert report.pipeline == "seed-broken-fixed" and report.verdict == "pass"
    assert "Nothing to fix" in texts(at)


def test_only_failures_when_the_warnings_are_switched_off(app):
    at = app()
    at.selectbox(key="pl_preset").set_value("dino").run()  # DINO v1 scales: warnings only
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    at.button(key="val_fix").click().run()
    assert list(at.dataframe[0].value["field"]) == ["global_crops_scale", "local_crops_scale"]
    at.toggle(key="val_fix_warn").set_value(False).run()
    assert_no_exception(at)
    [success] = at.success  # the warnings' fixes gone, the failures need no config value
    assert_mentions(success.value, "No config value")


def test_a_sample_count_larger_than_the_dataset_says_so(app):
    at = app(val_samples=50)
    at.switch_page("pages/validation.py").run()
    assert_mentions(texts(at), "50 samples", "20 images", "drawn 2–3 times")
