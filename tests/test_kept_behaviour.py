"""Facts the suite asserted before issue 22's refactoring that no test asserted after it.

``tests/tools/compare_test_ids.py 4c3e911 HEAD`` lists every test of 4c3e911 (the commit
before the refactoring) that is gone; /work/notes/test_counts.md says where each went. Four
of them drew the statistics page with matplotlib (``stats_figure``, ``rates_figure``), which
4392368 replaced by Vega-Lite charts (issue 23) and whose new tests re-assert most of their
facts. The facts below still hold on the new charts but were asserted nowhere any more.
"""

from __future__ import annotations

import pandas as pd
import pytest

import dinodiag
from dinodiag.dashboard import stats_histograms, stats_rates
from dinodiag.stats import rates, sample_views
from tests.dashboard.test_stats_charts import Images, frame
from tests.dashboard.test_stats_histograms import layers
from tests.facts import assert_mentions


@pytest.fixture(scope="module")
def released_rates() -> pd.DataFrame:
    """dinov2-released's sampled photometric rates against dinov2's, as the old test drew."""
    released = dinodiag.load_config("dinov2-released")
    views = sample_views(dinodiag.build_pipeline(released), Images(), 20, seed=0)
    return rates(views, released, dinodiag.load_config("dinov2"))


def test_rates_are_drawn_in_three_panels_global_1_global_2_and_locals(released_rates):
    # was test_rates_figure_draws_measured_bars_and_expected_ticks (panel titles)
    charts = stats_rates.rates_charts({"released": released_rates})
    titles = [chart.to_dict()["title"]["text"] for chart in charts]
    assert titles == ["Global view 1", "Global view 2", "Local views"]


def test_global_view_1_ticks_blur_always_and_solarize_never(released_rates):
    # was test_rates_figure_draws_measured_bars_and_expected_ticks (the expected ticks)
    spec = stats_rates.rates_chart("global1", "Global view 1", {"released": released_rates})
    tick, rows = layers(spec.to_dict(), "tick")[0]
    assert tick["encoding"]["y"]["field"] == "expected"
    expected = rows.set_index("operation")["expected"]
    assert expected["blur"] == 1.0 and expected["solarize"] == 0.0


def test_histograms_show_each_pipelines_share_of_crops_in_percent():
    # was test_legend_swatches_have_their_series_colours_and_histograms_a_percent_axis
    for chart in stats_histograms.histograms({"dinov2": frame("dinov2")}):
        bar, _ = layers(chart.to_dict(), "bar")[0]
        assert bar["encoding"]["y"]["field"] == "share"
        assert_mentions(bar["encoding"]["y"]["title"], "share of", "(%)")
