"""dinodiag.dashboard.sidebar_rules: the shared sidebar's decisions (app.py draws it)."""

from __future__ import annotations

import pytest

import dinodiag
from dinodiag.dashboard import links, sidebar
from dinodiag.dashboard import sidebar_rules as rules
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions


def test_a_config_text_that_cannot_be_read_keeps_the_last_valid_pipeline():
    bad = sidebar.PipelineChoice(source="config", config_text="global_crops_scale: [0.4,")
    with pytest.raises(rules.ConfigTextError) as info:
        rules.config_before_edits(bad)
    assert isinstance(info.value, ConfigError)
    assert rules.keeps_last_good(info.value, ("choice", "config", "pipeline", "key"))
    assert not rules.keeps_last_good(info.value, None)  # nothing valid yet
    assert not rules.keeps_last_good(ConfigError("solarize_p = 2"), ("kept",))  # a field edit
    preset = rules.config_before_edits(sidebar.PipelineChoice(preset="seed-broken"))
    assert preset.name == "seed-broken"


def test_sources_that_run_browser_code_are_marked_off_unless_allowed():
    off = rules.source_labels(sidebar.PIPELINE_SOURCES, False, "pipeline")
    assert (
        off["own"].endswith(rules.OFF_HERE) and off["preset"] == sidebar.PIPELINE_SOURCES["preset"]
    )
    assert (
        rules.source_labels(sidebar.PIPELINE_SOURCES, True, "pipeline") == sidebar.PIPELINE_SOURCES
    )
    data = rules.source_labels(sidebar.DATASET_SOURCES, False, "dataset")
    marked = {source for source, label in data.items() if label.endswith(rules.OFF_HERE)}
    assert marked == {"cifar10", "cifar100", "stl10"}
    assert list(data) == list(sidebar.DATASET_SOURCES)


def test_field_values_give_the_edited_config_and_the_fields_that_differ():
    base = dinodiag.load_config("dinov2")
    unchanged = rules.apply_field_values(base, {"local_crops_number": base.local_crops_number})
    assert unchanged.config == base and unchanged.edits == {} and unchanged.edited_line is None
    outcome = rules.apply_field_values(base, {"local_crops_number": 4, "mean": "0.5, 0.5, 0.5"})
    assert outcome.error is None and outcome.config.local_crops_number == 4
    assert outcome.kept_edits == {"local_crops_number": 4, "mean": (0.5, 0.5, 0.5)}
    assert outcome.edited_line.startswith("Edited: ")
    assert_mentions(outcome.edited_line, "`local_crops_number`", "`mean`")  # each field, named


def test_an_invalid_value_keeps_no_edit_and_names_itself():
    base = dinodiag.load_config("dinov2")
    unreadable = rules.apply_field_values(base, {"std": "0.5, 0.5"})
    assert unreadable.config is None and str(unreadable.error).startswith("std = ")
    assert unreadable.kept_edits == {} and unreadable.edited_line == "Edited: a field (invalid)"
    refused = rules.apply_field_values(base, {"local_crops_number": -1})
    assert refused.config is None and "local_crops_number" in str(refused.error)
    assert refused.edits == {"local_crops_number": -1} and refused.kept_edits == {}
    assert refused.edited_line.startswith("Edited: ")
    assert_mentions(refused.edited_line, "`local_crops_number`", "(invalid)")


def test_the_edit_widgets_are_new_for_a_new_base_or_a_reset():
    dinov2, broken = dinodiag.load_config("dinov2"), dinodiag.load_config("seed-broken")
    assert rules.edit_prefix(dinov2, 0) == rules.edit_prefix(dinov2, 0)
    assert rules.edit_prefix(dinov2, 0).endswith(":0")
    assert len({rules.edit_prefix(dinov2, 0), rules.edit_prefix(dinov2, 1)}) == 2
    assert rules.edit_prefix(dinov2, 0) != rules.edit_prefix(broken, 0)


def test_the_url_keeps_the_charts_view_and_is_left_alone_when_it_holds_the_choices():
    state = {"ds_source": "sample", "pl_source": "preset", "pl_preset": "seed-broken"}
    query = rules.link_query(state, False, {"local_crops_number": 4}, "", {"smooth": "0.8"})
    assert query is not None and query["smooth"] == "0.8"
    assert query == links.to_query(state, False, {"local_crops_number": 4}) | {"smooth": "0.8"}
    assert rules.link_query(state, False, {"local_crops_number": 4}, "", query) is None
    assert "smooth" not in rules.link_query(state, False, None, "", {"pipeline": "x"})
