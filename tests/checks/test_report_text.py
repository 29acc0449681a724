"""The terminal table reads as the page does: values in words, not Python reprs; counts
pluralised."""

from __future__ import annotations

from dinodiag.checks.report import CheckReport, CheckResult, count_words, plain_value


def test_values_are_printed_as_people_read_them():
    measured = {"differences": {"global_crops_size": "96 (expected 224)"}, "matches": []}
    assert (
        plain_value(measured) == "differences: global_crops_size = 96 (expected 224); matches: none"
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
