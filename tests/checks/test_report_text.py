"""The terminal table reads as the page does: values in words, not Python reprs; counts
pluralised."""

from __future__ import annotations

from dinodiag.checks.report import CheckReport, CheckResult, count_words, plain_value
from tests.facts import assert_mentions


def test_values_are_printed_as_people_read_them():
    measured = {"differences": {"global_crops_size": "96 (expected 224)"}, "matches": []}
    assert plain_value(measured) == (  # wording is the feature: this text is the format
        "differences: global_crops_size = 96 (expected 224); matches: none"
    )
    assert plain_value([0.4, 1.0]) == "(0.4, 1)"
    assert plain_value({}) == "none"
    table = CheckReport(
        [CheckResult("reference_diff", "Diff", "warn", measured, "equal", "x")],
        "mine",
        "dinov2",
        "sample",
        4,
        0,
    ).to_table()
    assert "{" not in table and "'" not in table
    assert "verdict: WARN  1 warning" in table


def test_counts_are_pluralised():
    assert [count_words(n, "warn") for n in (0, 1, 2)] == ["0 warnings", "1 warning", "2 warnings"]
    assert count_words(1, "fail") == "1 failed"


def test_source_size_says_true_things_when_it_passes_with_some_small_images():
    from types import SimpleNamespace

    from dinodiag.augment.presets import get_preset
    from dinodiag.checks.crops import check_source_size

    sizes = [(300, 300)] * 17 + [(100, 150)] * 3
    ev = SimpleNamespace(max_global_side=224, expect=get_preset("dinov2").config, image_sizes=sizes)
    result = check_source_size(ev)
    assert result.status == "pass"
    assert result.message.startswith("17 of 20 images ")
    assert_mentions(result.message, "large enough", "3 smaller than 224 px", "(15%")
    ev.image_sizes = [(300, 300)] * 20
    every = check_source_size(ev).message
    assert_mentions(every, "Every image", "large enough", "global crops")
    assert "smaller" not in every and "of 20" not in every
    ev.image_sizes = sizes[:10] + [(100, 100)] * 10
    message = check_source_size(ev).message
    assert message.startswith("10 of 20 images ")
    assert_mentions(message, "smaller than 224 px")
