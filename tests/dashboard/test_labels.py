"""dinodiag.dashboard.labels: badges, the check table, headline numbers of sampled statistics."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dinodiag.checks.report import CheckReport, CheckResult, markdown_table
from dinodiag.dashboard import labels


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
    assert table[2].startswith("| :red-badge[FAIL] | **number \\| of views** · `view_count`")
    assert (
        table[3].startswith("| :orange-badge[WARN]")
        and "(0.123, 2)" in table[3]
        and "| – |" in table[3]
    )
    assert table[4].startswith("| :green-badge[PASS]")
    assert table[0] == "| status | check | measured | expected | what to do |"
    assert labels.status_badge("skip") == ":gray-badge[SKIP]"
    assert labels.short_value("x" * 200).endswith("…")


def test_the_report_file_and_the_page_share_one_table():
    results = [
        CheckResult("a", "first", "pass", {"k": "v|w"}, None, "fine"),
        CheckResult("b", "second", "fail", "x\ny", 3, "fix | it"),
    ]
    report = CheckReport(results, "p", "dinov2", "sample", 4, 0)
    plain = markdown_table(report.sorted())
    assert plain.splitlines()[2:] == [
        "| FAIL | `b` | x y | 3 | fix \\| it |",
        "| PASS | `a` | {'k': 'v\\|w'} | None | fine |",
    ]
    assert plain in report.to_markdown()  # the downloaded report holds the same table
    page = labels.report_markdown_table(report).splitlines()
    assert page[:2] == plain.splitlines()[:2]
    assert page[2] == "| :red-badge[FAIL] | **second** · `b` | x y | 3 | fix \\| it |"
    assert page[3] == "| :green-badge[PASS] | **first** · `a` | k: v\\|w | – | fine |"


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
    assert text == "differences: global_crops_size = 96 (expected 224); matches: none"
    assert "{" not in short_value({"differences": {}, "matches": ["dino"]})
