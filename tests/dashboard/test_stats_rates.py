"""dinodiag.dashboard.stats_rates: the photometric rates per view kind as Vega-Lite specs
(bars, the reference's tick and interval, hover values, far rates outlined) and a panel that
says why it is empty."""

from __future__ import annotations

import pandas as pd
import pytest

import dinodiag
from dinodiag.dashboard import stats_rates
from dinodiag.stats import rates, sample_views
from tests.dashboard.test_stats_charts import Images, frame
from tests.dashboard.test_stats_histograms import layers
from tests.facts import assert_mentions


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    dinov2, broken = dinodiag.load_config("dinov2"), dinodiag.load_config("seed-broken")
    released = dinodiag.load_config("dinov2-released")
    views = sample_views(dinodiag.build_pipeline(released), Images(), 20, seed=0)
    return {
        "released": rates(views, released, dinov2),
        "seed-broken": rates(frame("seed-broken", 20), broken, dinov2),
    }


def test_bars_ticks_and_intervals_with_hover_values(tables):
    spec = stats_rates.rates_chart("global1", "Global view 1", {"released": tables["released"]})
    assert spec.to_dict()["title"]["text"] == "Global view 1"
    spec = spec.to_dict()
    bar, rows = layers(spec, "bar")[0]
    assert {t["field"] for t in bar["encoding"]["tooltip"]} >= {"measured", "expected", "verdict"}
    blur = rows[rows["operation"] == "blur"].iloc[0]
    assert blur["measured"] == 0.0 and blur["expected"] == 1.0 and blur["far"]  # never blurred
    assert bar["encoding"]["stroke"]["condition"]["value"] == stats_rates.FAR_COLOUR
    assert layers(spec, "tick")  # the reference's rate
    assert min(spec["config"]["axis"]["labelFontSize"], spec["config"]["title"]["fontSize"]) >= 11


def test_an_empty_local_panel_says_why(tables):
    broken = dinodiag.load_config("seed-broken")
    alone = stats_rates.rates_charts(
        {"seed-broken": tables["seed-broken"]}, {"seed-broken": broken}
    )
    local = alone[2].to_dict()
    assert local["title"]["text"] == "Local views" and local["mark"]["type"] == "text"
    reason = " ".join(local["mark"]["text"])
    why = ("seed-broken", "no local views", "(local_crops_number is 0)")  # who, what, the cause
    assert_mentions(reason, *why)
    both = stats_rates.rates_chart("local", "Local views", tables, {"seed-broken": broken})
    spec = both.to_dict()  # the other pipeline's bars drawn, the missing one named
    assert set(layers(spec, "bar")[0][1]["pipeline"]) == {"released"}
    subtitle = " ".join(line.strip() for line in spec["title"]["subtitle"])
    assert_mentions(subtitle, *why)
    assert max(len(line) for line in spec["title"]["subtitle"]) <= 50  # wrapped, never cut


def test_missing_reason_tells_unsampled_from_unmeasured():
    table = pd.DataFrame({"kind": ["global1"], "operation": ["fallback"]})
    unsampled = stats_rates.missing_reason("global2", "mine", table, None)
    assert_mentions(unsampled, "mine", "no global view 2", "samples")
    assert "could be measured" in stats_rates.missing_reason("global1", "mine", table, None)
    assert (
        stats_rates.missing_reason("global1", "mine", table.assign(operation="flip"), None) is None
    )
