"""dinodiag.dashboard.curve_panel: what one curve panel draws and says, its options and its
legend selection, and why an empty k-NN panel is empty."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dinodiag.dashboard import chart_view
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.curve_charts import legend_param
from dinodiag.dashboard.curve_panel import (
    NO_KNN_YET,
    CurveOptions,
    chart_style,
    colours,
    control_values,
    knn_empty_note,
    legend_chart_key,
    legend_selection,
    panel_points,
    shown_key,
    url_changes,
)
from dinodiag.dashboard.run_names import run_colors
from tests.facts import assert_mentions

A, B = "20260509-220101-cpu-demo", "20260509-221500-cpu-demo"


def train_rows(koleo: float = -0.5, ibot: float = 0.0, steps: int = 4) -> pd.DataFrame:
    rows = [
        {"kind": "train", "step": s, "epoch": s / 10, "time": 10.0 * s, "loss": 9.0 - s,
         "dino_loss": 5.0, "ibot_loss": ibot, "koleo_loss": koleo + 0.1 * s}
        for s in range(1, steps + 1)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_options_unpack_take_a_panels_own_axis_and_give_the_url_view():
    options = CurveOptions(0.3, "epoch", True, True, "live", (A,))
    assert tuple(options) == (0.3, "epoch", True)
    given = options.given(x="step", smoothing=0.0)
    assert (given.x, given.smoothing, given.log_y, given.group) == ("step", 0.0, True, "live")
    assert options.given() == options
    assert options.view == chart_view.ChartView(0.3, "epoch", True, True, (A,))


def test_control_values_key_every_widget_of_the_group():
    values = control_values("live", chart_view.ChartView(0.8, "wall", shown=(A,)))
    assert values == {
        "live_smooth": 0.8,
        "live_x": "wall",
        "live_log": False,
        "live_outliers": False,
        shown_key("live"): (A,),
    }


def test_url_changes_set_what_differs_and_drop_defaults_only_of_its_own_params():
    current = {"smooth": "0.8", "log": "1", "pipeline": "dinov2"}
    changed, gone = url_changes(chart_view.ChartView(0.8, "epoch"), current)
    assert changed == {"x": "epoch"} and gone == ["log"]
    assert url_changes(chart_view.ChartView(0.8, "epoch"), {"smooth": "0.8", "x": "epoch"}) == (
        {},
        [],
    )


def test_a_legend_click_toggles_its_run_and_a_double_click_shows_every_run():
    ids = {"run a": A, "run b": B}
    click = {"selection": {legend_param("c"): [{"name": "run b"}]}}
    assert legend_selection(click, "c", ids, (A,)) == (A, B)
    assert legend_selection(click, "c", ids, (A, B)) == (A,)
    assert legend_selection({"selection": {legend_param("c"): []}}, "c", ids, (A,)) == ()
    assert legend_selection(None, "c", ids, (A,)) == ()
    other_chart = {"selection": {legend_param("m0"): [{"name": "run b"}]}}
    assert legend_selection(other_chart, "c", ids, (A,)) == ()
    assert legend_chart_key("live_loss", "c", (A, B)) == f"live_loss_legend_c_{A}|{B}"


def test_colours_are_assigned_over_every_known_run():
    assert colours([A, B], [B]) == run_colors([A, B])
    extra = colours([A], ["broken"])
    assert extra[A] == run_colors([A])[A] and extra["broken"] != extra[A]


def test_a_log_scale_leaves_out_points_at_or_below_zero_and_says_how_many():
    frames = {A: train_rows(koleo=-0.5)}  # KoLeo -0.4, -0.3, -0.2, -0.1: four points <= 0
    points = panel_points(frames, rc.PANELS["loss"], CurveOptions(0.0, log_y=True))
    assert points.log_y and points.dropped == 4 and points.off == ("iBOT",)
    assert points.empty_note() is None and not points.no_knn
    assert (points.long["value"] > 0).all()
    caption = points.caption(rc.PANELS["loss"], "a note")
    assert "4 point(s)" in caption and caption.endswith("(KoLeo can be negative).")
    assert "a note" in caption and "iBOT" in points.off_note()
    linear = panel_points(frames, rc.PANELS["loss"], CurveOptions(0.0))
    assert (linear.dropped, linear.log_y) == (0, False) and len(linear.long) == 12


def test_a_panel_without_log_scale_draws_every_point():
    schedules = rc.Panel("s", "S", ("koleo_loss",), "train", False, False, "hint")
    points = panel_points({A: train_rows()}, schedules, CurveOptions(0.0, log_y=True))
    assert (points.dropped, points.log_y, len(points.long)) == (0, False, 4)
    assert points.caption(schedules) == "hint"


def test_all_points_below_zero_on_a_log_scale_leave_a_note_in_place_of_the_chart():
    panel = rc.Panel("k", "KoLeo", ("koleo_loss",), "train", True, False, "")
    points = panel_points({A: train_rows(koleo=-5.0)}, panel, CurveOptions(0.0, log_y=True))
    assert points.long.empty and points.dropped == 4 and not points.no_knn
    assert points.empty_note().startswith("All 4 point(s)")


def test_empty_panels_say_why():
    train = panel_points({A: train_rows()}, rc.PANELS["knn"], CurveOptions())
    assert train.no_knn and train.empty_note() == NO_KNN_YET
    nothing = panel_points({A: pd.DataFrame()}, rc.PANELS["loss"], CurveOptions())
    assert not nothing.no_knn and nothing.empty_note() == "No points yet."
    wall = panel_points({A: train_rows()}, rc.PANELS["loss"], CurveOptions(x="wall"), starts={})
    assert wall.no_x == (A,) and "wall time" in wall.empty_note() and not wall.no_knn


def test_the_chart_style_carries_the_groups_selection_as_short_names():
    frames = {A: train_rows(), B: train_rows()}
    options = CurveOptions(0.0, group="live", shown=(B, "gone"))
    points = panel_points(frames, rc.PANELS["loss"], options, names={A: "a", B: "b"})
    style = chart_style(points, options, {A: "#111111"})
    assert style == {
        "x": "step",
        "colors": {A: "#111111"},
        "ignore_outliers": False,
        "selected": ["b"],
        "log_y": False,
    }
    alone = chart_style(points, CurveOptions(shown=(B,)), {})
    assert alone["selected"] is None  # no group: each chart picks on its own


def write_run(root: Path, run: str, state: str, eval_every: int) -> None:
    folder = root / run
    folder.mkdir(parents=True)
    status = {"state": state, "step": 4, "total_steps": 4, "started": 1.7e9, "message": state}
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "config.json").write_text(json.dumps({"run": {"eval_every": eval_every}}))


@pytest.mark.parametrize(
    "states, facts",
    [
        ([("finished", 0)], ["none was planned"]),
        ([("failed", 100)], ["ended (failed)", "before the first"]),  # its state, and when
        ([("finished", 0), ("failed", 100)], [f"{A}: ", f"{B}: "]),  # one reason per run
    ],
    ids=["none-planned", "ended-early", "two-reasons"],
)
def test_an_ended_run_without_knn_says_why(tmp_path, states, facts):
    frames = {}
    for run, (state, every) in zip((A, B), states, strict=False):
        write_run(tmp_path, run, state, every)
        frames[run] = train_rows()
    note = knn_empty_note(frames, tmp_path)
    assert note != NO_KNN_YET
    assert_mentions(note, *facts)


def test_a_frame_that_is_no_run_or_a_run_without_status_is_not_judged(tmp_path):
    write_run(tmp_path, A, "finished", 0)
    assert knn_empty_note({A: train_rows(), "pasted": train_rows()}, tmp_path) == NO_KNN_YET
    assert knn_empty_note({B: train_rows()}, tmp_path) == NO_KNN_YET
    read = []
    knn_empty_note({A: train_rows()}, tmp_path, lambda path: read.append(path.name) or {})
    assert read == [A]  # the page's cached config reader is the one asked
