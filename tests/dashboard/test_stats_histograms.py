"""dinodiag.dashboard.stats_histograms: the statistics page's interactive histograms (the
Vega-Lite spec: bars with hover values, shaded configured ranges, dashed reference rules,
readable text, one note line per pipeline, an empty panel that says why)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import dinodiag
from dinodiag.dashboard import stats_charts, stats_histograms
from dinodiag.dashboard.stats_histograms import STAT_PANELS
from tests.dashboard.test_stats_charts import frame
from tests.facts import assert_mentions


@pytest.fixture(scope="module")
def compared() -> dict[str, Any]:
    """seed-broken beside dinov2 against dinov2's ranges: the six specs and their inputs."""
    frames = {"seed-broken": frame("seed-broken", 40), "dinov2": frame("dinov2", 40)}
    reference = stats_charts.config_ranges(dinodiag.load_config("dinov2"))
    configured = {
        "seed-broken": stats_charts.config_ranges(dinodiag.load_config("seed-broken")),
        "dinov2": reference,
    }
    outside = stats_charts.outside_shares(frames, reference)
    charts = stats_histograms.histograms(frames, configured, reference, outside, "dinov2")
    return {"frames": frames, "outside": outside, "specs": [c.to_dict() for c in charts]}


def layers(spec: dict, mark: str) -> list[tuple[dict, pd.DataFrame]]:
    """``(layer, its data)`` of every layer of ``spec`` drawing ``mark``."""
    found = []
    for layer in spec.get("layer", []):
        kind = layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
        if kind == mark:
            data = (layer.get("data") or spec["data"])["name"]  # its own, else the chart's
            found.append((layer, pd.DataFrame(spec["datasets"][data])))
    return found


def test_each_histogram_has_its_title_hover_values_and_shares(compared):
    specs = compared["specs"]
    assert [s["title"]["text"] for s in specs] == [p.title for p in STAT_PANELS]
    layer, bars = layers(specs[0], "bar")[0]
    fields = [t["field"] for t in layer["encoding"]["tooltip"]]
    assert fields == ["pipeline", "bin", "count", "share"]  # hover: who, where, how many
    assert set(bars["pipeline"]) == {"seed-broken", "dinov2"}
    for _, rows in bars.groupby("pipeline"):  # each pipeline's bars add up to 100 %
        assert rows["share"].sum() == pytest.approx(100.0)
    globals_ = compared["frames"]["dinov2"].query("group == 'global'")
    assert bars[bars["pipeline"] == "dinov2"]["count"].sum() == len(globals_)


def test_configured_ranges_are_shaded_and_the_reference_is_dashed(compared):
    spec = compared["specs"][0]  # global crop scale
    _, shades = layers(spec, "rect")[0]
    ranges = zip(shades["lo"], shades["hi"], strict=True)
    assert dict(zip(shades["pipeline"], ranges, strict=True)) == {
        "seed-broken": (0.2, 1.0),  # seed-broken's own global range
        "dinov2": (0.32, 1.0),
    }
    colour = layers(spec, "bar")[0][0]["encoding"]["color"]["scale"]
    assert colour == {
        "domain": ["seed-broken", "dinov2"],
        "range": list(stats_charts.SERIES_COLOURS),
    }
    rule, values = layers(spec, "rule")[0]
    assert sorted(values["value"]) == [0.32, 1.0] and rule["mark"]["strokeDash"] == [6, 4]
    ratio = compared["specs"][2]
    assert ratio["layer"][1]["encoding"]["x"]["scale"]["type"] == "log"


def test_text_is_readable(compared):
    for spec in compared["specs"]:
        config = spec["config"]
        sizes = [config["axis"]["labelFontSize"], config["axis"]["titleFontSize"]]
        sizes += [config["legend"]["labelFontSize"], config["title"]["subtitleFontSize"]]
        assert min(sizes) >= 11  # the matplotlib picture's ticks were ~7 px


def test_notes_are_one_line_per_pipeline_from_the_same_computation(compared):
    outside = {(o.key, o.pipeline): o for o in compared["outside"]}
    notes = compared["specs"][0]["title"]["subtitle"]
    # lines of the subtitle: two pipelines' notes never overlap
    seed_note, dinov2_note = notes
    assert seed_note.startswith("seed-broken: ")  # the text's own words, against the reference
    assert_mentions(seed_note, outside["global", "seed-broken"].words(), "(dinov2's range)")
    assert dinov2_note.startswith("dinov2: ")
    assert_mentions(dinov2_note, "all inside", "(dinov2's range)")
    assert outside["global", "seed-broken"].below > 0
    ratio_notes = compared["specs"][2]["title"]["subtitle"]
    lines = stats_charts.outside_lines(compared["outside"], "dinov2")
    for pipeline in ("seed-broken", "dinov2"):  # chart and text agree, rounding included
        words = outside["ratio", pipeline].words()
        assert f"{pipeline}: {words} (dinov2's range)" in ratio_notes
        assert any(
            line.startswith(f"**{pipeline}**: {words} (crops, aspect ratio") for line in lines
        )


def test_a_panel_with_nothing_to_draw_says_why():
    broken = {"seed-broken": frame("seed-broken", 4)}  # no local crops
    charts = stats_histograms.histograms(broken)
    local = charts[1].to_dict()
    assert local["title"]["text"] == "Local crop area scale"
    assert local["mark"]["type"] == "text"
    assert_mentions(" ".join(local["mark"]["text"]), "No local crops", "seed-broken")


def test_histogram_table_bins_log_axes_geometrically_and_drops_non_positive_values():
    table = stats_histograms.histogram_table(
        {"a": [0.5, 1.0, 2.0, 0.0, float("nan")]}, True, bins=2
    )
    assert table["count"].sum() == 3  # 0 and NaN have no place on a log axis
    assert table["lo"].iloc[0] == pytest.approx(0.5) and table["hi"].iloc[-1] == pytest.approx(2.0)
    assert list(table["bin"]) == ["0.5–1", "1–2"]  # geometric: the middle edge is 1


def test_log_axes_keep_the_tick_at_1_when_thinned():
    # the upsampling panel (about 0.12x-2x) lost its "1" (no upsampling: where the grey line
    # is) and kept the aspect ratio's 0.75 and 1.33 instead
    ticks = stats_histograms._log_ticks(0.12, 2.0)
    assert 1.0 in ticks and len(ticks) <= 6
    assert stats_histograms._log_ticks(0.75, 1.3333) == [0.75, 1.0, 1.33]  # unthinned as before
