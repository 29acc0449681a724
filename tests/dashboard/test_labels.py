"""dinodiag.dashboard.labels: badges, the check table, headline numbers of sampled statistics."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import dinodiag
from dinodiag.checks.report import CheckReport, CheckResult, markdown_table
from dinodiag.dashboard import labels
from tests.facts import assert_mentions


def cells(row: str) -> list[str]:
    """The cells of a Markdown table row, split at the pipes that are not escaped."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_report_table_puts_failures_first_with_badges():
    results = [
        CheckResult("dtype", "floating point", "pass", "float32", "float32", "ok"),
        CheckResult(
            "view_count", "number | of views", "fail", "2 global + 0 local", "2 + 8", "add locals"
        ),
        CheckResult("normalization", "mean/std", "warn", [0.1234567, 2.0], None, "check"),
    ]
    report = CheckReport(results, "seed-broken", "dinov2", "sample", 4, 0)
    table = labels.report_markdown_table(report).splitlines()
    failed = cells(table[2])
    assert failed[0] == ":red-badge[FAIL]"
    # the title's pipe escaped, so the row keeps its columns
    assert_mentions(failed[1], "**number \\| of views**", "`view_count`")
    assert (
        table[3].startswith("| :orange-badge[WARN]")
        and "(0.123, 2)" in table[3]
        and "| – |" in table[3]
    )
    assert table[4].startswith("| :green-badge[PASS]")
    assert cells(table[0]) == ["status", "check", "measured", "expected", "what to do"]
    assert labels.status_badge("skip") == ":gray-badge[SKIP]"
    assert labels.short_value("x" * 200).endswith("…")


def test_the_report_file_and_the_page_share_one_table():
    results = [
        CheckResult("a", "first", "pass", {"k": "v|w"}, None, "fine"),
        CheckResult("b", "second", "fail", "x\ny", 3, "fix | it"),
    ]
    report = CheckReport(results, "p", "dinov2", "sample", 4, 0)
    plain = markdown_table(report.sorted())
    assert [cells(row) for row in plain.splitlines()[2:]] == [
        ["FAIL", "`b`", "x y", "3", "fix \\| it"],
        ["PASS", "`a`", "{'k': 'v\\|w'}", "None", "fine"],
    ]
    assert plain in report.to_markdown()  # the downloaded report holds the same table
    page = labels.report_markdown_table(report).splitlines()
    assert page[:2] == plain.splitlines()[:2]
    assert [cells(row) for row in page[2:]] == [
        [":red-badge[FAIL]", "**second** · `b`", "x y", "3", "fix \\| it"],
        [":green-badge[PASS]", "**first** · `a`", "k: v\\|w", "–", "fine"],
    ]


def test_headline_numbers_and_share_smaller():
    frame = pd.DataFrame(
        {
            "sample": [0, 0, 0, 1, 1, 1],
            "group": ["global", "global", "local", "global", "global", "local"],
            "scale": [0.5, 0.7, 0.1, 0.9, 0.3, 0.2],
            "upsampling": [1, 1, 2.0, 1, 1, 4.0],
            "global_iou": [0.4, 0.4, math.nan, 0.6, 0.6, math.nan],
            "local_coverage": [math.nan, math.nan, 1.0, math.nan, math.nan, 0.5],
            "fallback": [False, True, False, False, False, False],
        }
    )
    numbers = labels.headline_numbers(frame)
    assert numbers["samples"] == 2 and numbers["views"] == 6
    assert numbers["fallback_rate"] == pytest.approx(1 / 6)
    assert numbers["global_scale"] == 0.7  # upper median of 0.3, 0.5, 0.7, 0.9
    assert numbers["local_upsampling"] == 4.0 and numbers["local_coverage"] == 1.0
    assert labels.share_smaller([(500, 375), (96, 96), (300, 200)], 224) == pytest.approx(2 / 3)
    assert math.isnan(labels.share_smaller([], 224))


def test_short_source_strips_the_root(tmp_path):
    assert labels.short_source(str(tmp_path / "a" / "b.png"), tmp_path) == "a/b.png"
    assert labels.short_source("/elsewhere/b.png", tmp_path) == "/elsewhere/b.png"
    assert labels.short_source("generated #3", tmp_path) == "generated #3"


def test_nested_measured_values_read_as_text() -> None:
    from dinodiag.dashboard.labels import short_value

    text = short_value({"differences": {"global_crops_size": "96 (expected 224)"}, "matches": []})
    assert text == (  # wording is the feature: this text is the format
        "differences: global_crops_size = 96 (expected 224); matches: none"
    )
    assert "{" not in short_value({"differences": {}, "matches": ["dino"]})


def test_verdict_lines_of_the_home_and_validation_pages():
    assert "NOT RUN" in labels.last_validation(None)
    results = [
        CheckResult("a", "a", "fail", 1, 2, "x"),
        CheckResult("b", "b", "warn", 1, 2, "y"),
        CheckResult("c", "c", "pass", 1, 1, "z"),
        CheckResult("d", "d", "pass", 1, 1, "z"),
    ]
    line = labels.last_validation(CheckReport(results, "seed-broken", "dinov2", "sample", 4, 0))
    assert line.startswith("**Last validation:** ")
    assert_mentions(
        line, ":red-badge[FAIL]", "`seed-broken`", "`dinov2`", "1 failed", "1 warning", "2 passed"
    )
    assert set(labels.VERDICT_SENTENCES) == {"fail", "warn", "pass"}


def test_headline_metrics_with_the_difference_to_the_compared_pipeline():
    numbers = dict.fromkeys(
        ("global_scale", "local_scale", "local_upsampling", "global_iou"), math.nan
    )
    numbers.update(global_scale=0.61, local_upsampling=2.54, fallback_rate=0.012)
    other = {**numbers, "global_scale": 0.42, "fallback_rate": math.nan}
    config = dinodiag.load_config("dinov2")
    metrics = labels.headline_metrics(numbers, config, other, "seed-broken")
    by_label = {m.label: m for m in metrics}
    assert list(by_label) == [
        "Global scale",
        "Local scale",
        "Local upsampling",
        "Global-pair IoU",
        "Fallback rate",
    ]
    scale = by_label["Global scale"]
    assert (scale.value, scale.delta) == ("0.61", "+0.19")  # a tile has no room for more
    assert scale.help.startswith("median; ")
    assert_mentions(scale.help, "configured 0.32–1", "difference to seed-broken")
    assert_mentions(labels.delta_line("mine", "seed-broken"), "mine minus seed-broken")
    assert by_label["Local scale"].value == "–" and by_label["Local scale"].delta is None
    assert by_label["Local upsampling"].value == "2.5×"
    assert by_label["Fallback rate"].value == "1.2%" and by_label["Fallback rate"].delta is None
    alone = labels.headline_metrics(numbers, None)
    assert alone[0].help == "median" and all(m.delta is None for m in alone)


def test_number_text_progress_and_the_upsampled_share():
    assert labels.number_text(None) == labels.number_text(math.nan) == "–"
    assert labels.number_text(0.456, "{:.0%}") == "46%"
    assert labels.sampling_progress(24, 100) is None
    assert labels.sampling_progress(25, 100) == (0.25, "Sampling: 25 / 100 images")
    assert labels.sampling_progress(99, 99) == (1.0, "Sampling: 99 / 99 images")
    line = labels.upsampled_line([(500, 375), (96, 96), (300, 200)], 224)
    assert line.startswith("67% of 3 images ")
    assert_mentions(line, "shorter side", "224 px global crop")
    assert labels.upsampled_line([], 224).startswith("– of 0 images")
