"""dinodiag.dashboard.curve_charts: what the Altair specs draw (colours, layers, hover, legend)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.curve_charts import curve_chart, metric_charts
from dinodiag.dashboard.run_names import run_colors

A, B, C = "20260509-220101-cpu-demo", "20260509-221500-cpu-demo", "20260509-223000-seed-fixed"


def run(n: int = 30, offset: float = 0.0) -> pd.DataFrame:
    steps = np.arange(1, n + 1)
    return pd.DataFrame(
        {
            "kind": "train",
            "step": steps,
            "epoch": steps / 10,
            "time": steps * 3.0,
            "loss": 8.0 - np.log(steps) + offset + np.sin(steps),
            "dino_loss": 5.0 + offset,
            "lr": 1e-3 * steps,
        }
    )


def layers_of(spec: dict) -> list[dict]:
    return spec["layer"]


def smoothed_line(spec: dict) -> dict:
    """The layer of the smoothed line (y = value)."""
    return next(
        layer
        for layer in layers_of(spec)
        if layer["mark"]["type"] == "line" and layer["encoding"]["y"]["field"] == "value"
    )


def colour_scale(spec: dict) -> dict:
    return smoothed_line(spec)["encoding"]["color"]["scale"]


def param(spec: dict, prefix: str) -> dict:
    return next(p for p in spec["params"] if p["name"].startswith(prefix))


def data_of(spec: dict, layer: dict) -> list[dict]:
    return spec["datasets"][layer["data"]["name"]]


def test_a_run_has_the_same_colour_in_every_chart_whatever_else_it_shows():
    everything = run_colors([A, B, C])
    first = curve_chart(rc.long_frame({A: run(), B: run()}, ["loss"]), colors=everything)
    second = curve_chart(rc.long_frame({B: run(), C: run()}, ["loss"]), colors=everything)
    one, two = colour_scale(first.to_dict()), colour_scale(second.to_dict())
    assert one["domain"] == ["cpu-demo 22:01", "cpu-demo 22:15"]  # short names in the legend
    assert one["range"][1] == two["range"][0] == everything[B]
    assert one["range"] == [everything[A], everything[B]] and len(set(one["range"])) == 2


def test_colours_by_series_still_win_for_the_seed_story():
    long = rc.long_frame({"broken": run(), "fixed": run()}, ["loss"])
    scale = colour_scale(
        curve_chart(long, colors={"broken": "#d62728", "fixed": "#2ca02c"}).to_dict()
    )
    assert scale == {"domain": ["broken", "fixed"], "range": ["#d62728", "#2ca02c"]}


def test_the_smoothed_line_lies_over_the_faint_raw_one_and_the_legend_picks_runs():
    spec = curve_chart(rc.long_frame({A: run()}, ["loss"], smoothing=0.6)).to_dict()
    hover, raw, line, dots = layers_of(spec)  # 30 points: dots on the line too
    assert dots["mark"]["type"] == "point"
    assert raw["encoding"]["y"]["field"] == "raw" and line["encoding"]["y"]["field"] == "value"
    faint = raw["encoding"]["opacity"]
    assert faint["condition"][0]["value"] < 0.5 and faint["value"] == 0  # faint, or gone
    legend = param(spec, "shown")
    assert legend["select"] == {
        "type": "point",
        "fields": ["name"],
        "toggle": "true",
        "clear": "dblclick",  # a double click in the legend or the plot shows every run
        "on": "click[false]",  # with "clear", Vega-Lite needs an "on" (never firing here)
    }
    assert legend["bind"] == "legend"
    opacity = line["encoding"]["opacity"]
    assert opacity["condition"][0] == {"param": "shown_c", "value": 1.0, "empty": True}
    assert opacity["value"] < 0.1  # a run left out fades out
    assert [t["field"] for t in line["encoding"]["tooltip"]] == ["run", "metric"]  # full id
    unsmoothed = curve_chart(rc.long_frame({A: run()}, ["loss"])).to_dict()
    assert len(layers_of(unsmoothed)) == 3  # no raw layer when nothing is smoothed


def test_hover_rule_lists_every_run_at_the_pointers_x():
    spec = curve_chart(rc.long_frame({A: run(), B: run(20)}, ["loss"], smoothing=0.5)).to_dict()
    hover = layers_of(spec)[0]
    assert hover["mark"]["type"] == "rule"
    assert param(spec, "hover")["select"]["nearest"] is True
    titles = [t["title"] for t in hover["encoding"]["tooltip"]]
    assert titles == ["at", "cpu-demo 22:01", "cpu-demo 22:15"]
    rows = data_of(spec, hover)
    assert rows[4]["at"] == "step 5" and "(raw " in rows[4]["s0"]
    assert rows[-1]["s1"] == "ended at step 20"  # B logged 20 steps only


def test_one_run_gives_each_loss_term_its_colour_several_runs_the_runs_colour_and_a_dash():
    spec = curve_chart(rc.long_frame({A: run()}, rc.PANELS["loss"])).to_dict()
    line = smoothed_line(spec)
    assert line["encoding"]["strokeDash"]["field"] == "metric"
    assert line["encoding"]["color"]["field"] == "metric"
    assert colour_scale(spec) == {"domain": ["total loss", "DINO"], "range": ["#1a3a8f", "#c85200"]}
    assert param(spec, "shown")["select"]["fields"] == ["metric"]  # the legend picks a term
    everything = run_colors([A, B])
    both = curve_chart(rc.long_frame({A: run(), B: run()}, rc.PANELS["loss"]), colors=everything)
    line = smoothed_line(both.to_dict())
    assert line["encoding"]["color"]["field"] == "name"
    assert colour_scale(both.to_dict())["range"] == [everything[A], everything[B]]
    assert line["encoding"]["strokeDash"]["scale"]["domain"] == ["total loss", "DINO"]


def test_log_scale_outliers_and_axes():
    long = rc.long_frame({A: run()}, ["loss"], x="relative")
    spec = curve_chart(long, x="relative", log_y=True, ignore_outliers=True).to_dict()
    line = smoothed_line(spec)
    scale = line["encoding"]["y"]["scale"]
    assert scale["type"] == "log" and len(scale["domain"]) == 2
    assert line["mark"]["clip"] is True
    assert line["encoding"]["x"]["title"] == "relative time (min)"
    wall = rc.long_frame({A: run()}, ["loss"], x="wall", starts={A: 1.7e9})
    assert (
        smoothed_line(curve_chart(wall, x="wall").to_dict())["encoding"]["x"]["type"] == "temporal"
    )


def test_one_point_is_drawn_as_a_dot_and_100k_points_stay_small():
    one = curve_chart(rc.long_frame({A: run(1), B: run(5000)}, ["loss"])).to_dict()
    dots = next(layer for layer in layers_of(one) if layer["mark"]["type"] == "point")
    assert [row["name"] for row in data_of(one, dots)] == ["cpu-demo 22:01"]  # the 1-point run
    big = rc.long_frame({A: run(100_000), B: run(100_000, 1.0)}, ["loss"], smoothing=0.9)
    spec = curve_chart(big).to_dict()
    drawn = sum(len(rows) for rows in spec["datasets"].values())
    assert drawn <= 2 * 2 * 1000 + 500  # two runs x (smoothed + raw) + the hover positions
    assert len(json.dumps(spec)) < 1_500_000


def test_metric_charts_give_each_metric_its_own_chart_and_the_runs_their_colours():
    everything = run_colors([A, B])
    long = rc.long_frame({A: run(), B: run()}, rc.PANELS["schedules"], x="epoch")
    charts = [c.to_dict() for c in metric_charts(long, x="epoch", colors=everything)]
    assert [chart["title"]["text"] for chart in charts] == ["learning rate"]  # the one logged
    assert charts[0]["title"]["limit"] >= 300  # never cut to "learni..." in a narrow chart
    line = smoothed_line(charts[0])
    assert line["encoding"]["x"]["title"] == "epoch"
    assert line["encoding"]["color"]["scale"]["range"] == [everything[A], everything[B]]
    for chart in charts:  # each selection belongs to its own layer (Vega draws nothing else)
        hover, legend = param(chart, "hover"), param(chart, "shown")
        assert len(hover["views"]) == len(legend["views"]) == 1
        assert hover["views"] != legend["views"]
    alone = metric_charts(rc.long_frame({A: run()}, rc.PANELS["schedules"]))[0].to_dict()
    assert smoothed_line(alone)["encoding"]["color"]["legend"] is None  # one run: no legend


def test_the_step_axis_has_whole_steps_only():
    # a run of 1 step drew ticks 0, 100m, 200m, ... 1 (SI milli-steps) on the versus tab
    spec = curve_chart(rc.long_frame({A: run(1)}, ["loss"])).to_dict()
    axis = smoothed_line(spec)["encoding"]["x"]["axis"]
    assert axis["tickMinStep"] == 1


def test_a_page_selection_starts_every_chart_with_the_same_runs_picked():
    long = rc.long_frame({A: run(), B: run(), C: run()}, ["loss"])
    spec = curve_chart(long, selected=["cpu-demo 22:15", "not drawn here"]).to_dict()
    assert param(spec, "shown")["value"] == [{"name": "cpu-demo 22:15"}]  # absent names dropped
    assert "value" not in param(curve_chart(long).to_dict(), "shown")  # nothing picked: all
    schedules = rc.long_frame({A: run(), B: run()}, rc.PANELS["schedules"])
    (chart,) = metric_charts(schedules, selected=["cpu-demo 22:01"])
    assert param(chart.to_dict(), "shown_m0")["value"] == [{"name": "cpu-demo 22:01"}]


def frame_of(column: str, values: list[float]) -> pd.DataFrame:
    steps = np.arange(1, len(values) + 1)
    return pd.DataFrame({"kind": "train", "step": steps, "time": steps * 1.0, column: values})


def y_domain(long: pd.DataFrame) -> list[float] | None:
    (chart,) = metric_charts(long)
    return smoothed_line(chart.to_dict())["encoding"]["y"]["scale"].get("domain")


def test_an_axis_never_zooms_into_noise():
    # momentum 0.992000-0.992005 (issue 23): the axis runs to the schedule's end, 1
    momentum = rc.long_frame({A: frame_of("momentum", [0.992, 0.992002, 0.992005])}, ["momentum"])
    low, high = y_domain(momentum)
    assert low <= 0.992 and high == 1.0
    lr = rc.long_frame({A: frame_of("lr", [1e-4, 2e-4, 3e-4])}, ["lr"])
    assert y_domain(lr)[0] == 0.0  # the warm-up starts at 0
    flat = rc.long_frame({A: frame_of("img_per_s", [120.1, 120.2, 120.15])}, ["img_per_s"])
    low, high = y_domain(flat)
    assert high - low >= 6.0 and low < 120.1 and high > 120.2  # 5% of the values
    count = rc.long_frame({A: frame_of("prototypes_used", [64, 64, 64])}, ["prototypes_used"])
    low, high = y_domain(count)
    assert high - low >= 2.0
    moving = rc.long_frame({A: frame_of("img_per_s", [10.0, 50.0, 120.0])}, ["img_per_s"])
    assert y_domain(moving) is None  # spans enough: Vega scales it
    log = smoothed_line(curve_chart(momentum, log_y=True).to_dict())["encoding"]["y"]["scale"]
    assert "domain" not in log  # a log axis keeps its own range
