"""dinodiag.dashboard.chart_view: the curve charts' view in the URL, checked on the way in."""

from __future__ import annotations

from dinodiag.dashboard.chart_view import (
    ChartView,
    page_params,
    toggled_ids,
    view_from_query,
    view_to_query,
)


def test_a_view_travels_through_the_url_and_defaults_stay_out():
    view = ChartView(0.8, "epoch", True, True, ("run-a", "run-b"))
    query = view_to_query(view)
    assert query == {
        "smooth": "0.8",
        "x": "epoch",
        "log": "1",
        "outliers": "1",
        "show": "run-a,run-b",
    }
    assert view_from_query(query) == (view, [])
    assert view_to_query(ChartView()) == {}


def test_bad_values_keep_their_default_with_a_note_naming_them():
    view, notes = view_from_query({"smooth": "2", "x": "hours", "log": "yes", "show": ",a,,a"})
    assert (view.smoothing, view.x, view.log_y, view.shown) == (0.6, "step", False, ("a",))
    assert len(notes) == 3
    assert "`smooth=2`" in notes[0] and "`x=hours`" in notes[1] and "`log=yes`" in notes[2]
    assert view_from_query({"smooth": "0.33"})[0].smoothing == 0.35  # the slider's step


def test_page_params_keep_only_the_charts_parameters():
    assert page_params({"preset": "x", "smooth": "0.8", "show": "a"}) == {
        "smooth": "0.8",
        "show": "a",
    }


def test_a_legend_click_keeps_runs_another_chart_picked():
    ids = {"cpu-demo 22:01": "run-a", "cpu-demo 22:15": "run-b"}
    assert toggled_ids(["cpu-demo 22:15"], ids, ()) == ("run-b",)
    assert toggled_ids(["cpu-demo 22:15"], ids, ("run-c", "run-a")) == ("run-c", "run-a", "run-b")
    assert toggled_ids(["cpu-demo 22:01"], ids, ("run-c", "run-a")) == ("run-c",)  # taken out
    assert toggled_ids(["cpu-demo 22:15"], ids, ("run-b",)) == ()  # the last one: every run
    assert toggled_ids([], ids, ("run-a",)) == ("run-a",)  # nothing clicked: kept
