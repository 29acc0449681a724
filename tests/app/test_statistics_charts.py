"""The statistics page's charts in AppTest: interactive histograms and rates (Vega-Lite specs,
not pictures), notes that agree with the text under them, an empty local-view panel that
says why, metric deltas and pipeline names that fit."""

from __future__ import annotations

import json
from typing import Any

from apphelpers import assert_no_exception, texts
from streamlit.testing.v1 import AppTest

from dinodiag.dashboard.stats_histograms import STAT_PANELS
from dinodiag.dashboard.stats_rates import RATE_PANELS
from tests.facts import assert_mentions


def chart_specs(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]


def title(spec: dict[str, Any]) -> str:
    return spec.get("title", {}).get("text", "")


def test_compare_mode_draws_charts_whose_notes_agree_with_the_text(app):
    at = app(stats_n=100, stats_compare="seed-broken")
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    specs = chart_specs(at)
    assert [title(s) for s in specs] == [p.title for p in STAT_PANELS] + [t for _, t in RATE_PANELS]
    ratio = next(s for s in specs if title(s).startswith("Aspect ratio"))
    notes = ratio["title"]["subtitle"]
    assert [n.split(":")[0] for n in notes] == ["dinov2", "seed-broken"]  # a line each
    text = texts(at)
    for note in notes:  # "seed-broken: all inside (dinov2's range)" <-> the same words below
        pipeline, words = note.removesuffix(" (dinov2's range)").split(": ")
        assert f"**{pipeline}**: {words} (crops, aspect ratio" in text
    local = next(s for s in specs if title(s) == "Local views")
    subtitle = " ".join(line.strip() for line in local["title"]["subtitle"])
    assert subtitle.startswith("seed-broken ")  # which pipeline, and the field that says why
    assert_mentions(subtitle, "no local views", "local_crops_number is 0")
    deltas = [m.proto.delta for m in at.metric if m.proto.delta]
    assert deltas and all(d[0] in "+-" and " " not in d for d in deltas)  # the number alone
    assert_mentions(text, "dinov2 minus seed-broken")  # which way the differences go
    rates = next(d for d in at.dataframe if "operation" in d.value.columns)
    assert json.loads(rates.proto.columns)["pipeline"]["width"] == "medium"


def test_an_empty_local_panel_says_why(app):
    at = app(stats_n=50)
    at.selectbox(key="pl_preset").set_value("seed-broken").run()
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    specs = {title(s): s for s in chart_specs(at)}
    for name in ("Local views", "Local crop area scale"):
        spec = specs[name]
        assert spec["mark"]["type"] == "text"
        reason = " ".join(spec["mark"]["text"])
        assert "seed-broken" in reason and "local" in reason
    assert "local_crops_number is 0" in " ".join(specs["Local views"]["mark"]["text"])
