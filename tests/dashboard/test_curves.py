"""Curve data for the training page: smoothing, x axes, long frames, thinning, hover, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dinodiag.dashboard import curve_points as cp
from dinodiag.dashboard import curves as rc


def metrics_frame(steps: int = 5, loss0: float = 8.0, knn: tuple[float, ...] = (10.0, 30.0)):
    """A small metrics.jsonl-like frame: train rows every step, eval rows at 0 and the end."""
    rows = [
        {
            "kind": "eval",
            "step": 0,
            "epoch": 0.0,
            "time": 0.0,
            "knn_top1": knn[0],
            "knn_top5": knn[0] + 20,
        }
    ]
    for step in range(1, steps + 1):
        rows.append(
            {
                "kind": "train",
                "step": step,
                "epoch": step / 10,
                "time": 30.0 * step,
                "loss": loss0 - step,
                "dino_loss": 5.0,
                "koleo_loss": -0.5 + 0.2 * step,
                "lr": 1e-3 * step,
                "teacher_entropy": 6.0,
            }
        )
    rows.append(
        {
            "kind": "eval",
            "step": steps,
            "epoch": steps / 10,
            "time": 30.0 * steps,
            "knn_top1": knn[1],
            "knn_top5": knn[1] + 20,
        }
    )
    rows.append({"kind": "event", "step": 2, "level": "warning", "code": "x", "message": "m"})
    return pd.DataFrame(rows)


def test_ema_of_weight_zero_is_the_raw_curve_and_constants_stay_constant():
    values = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    np.testing.assert_allclose(rc.ema(values, 0.0), values)
    np.testing.assert_allclose(rc.ema(np.full(6, 2.5), 0.9), np.full(6, 2.5))


def test_ema_is_tensorboards_debiased_average_and_skips_missing_points():
    values = np.random.default_rng(0).normal(size=50)
    last, expected = 0.0, []
    for i, v in enumerate(values, start=1):  # TensorBoard's loop, written out
        last = last * 0.7 + 0.3 * v
        expected.append(last / (1 - 0.7**i))
    np.testing.assert_allclose(rc.ema(values, 0.7), expected)
    smoothed = rc.ema([10.0, np.nan, 0.0], 0.5)
    assert smoothed[0] == pytest.approx(10.0)  # debiased: no pull towards 0 at the start
    assert math.isnan(smoothed[1])
    assert smoothed[2] == pytest.approx((0.5 * 0.5 * 10.0) / (1 - 0.25))  # = 3.33
    assert rc.ema([1.0, np.inf, 9.0], 0.5)[1] == np.inf  # a diverged point is kept as it is
    with pytest.raises(ValueError, match="smoothing weight"):
        rc.ema([1.0], 1.0)


def test_long_frame_has_one_row_per_point_and_metric():
    long = rc.long_frame({"run-a": metrics_frame()}, rc.PANELS["loss"])
    assert set(long["metric"]) == {"total loss", "DINO", "KoLeo"}  # no iBOT column logged
    assert len(long) == 15 and list(long["x"][:5]) == [1, 2, 3, 4, 5]
    assert (long["series"] == long["metric"]).all()  # one run: the legend is the metric
    knn = rc.long_frame({"run-a": metrics_frame()}, rc.PANELS["knn"])
    assert sorted(knn[knn["metric"] == "top-1"]["raw"]) == [10.0, 30.0]
    named = rc.long_frame({"20260509-220101-cpu-demo": metrics_frame()}, ["loss"])
    assert set(named["name"]) == {"cpu-demo 22:01"}


def test_a_loss_term_that_is_off_is_named_not_drawn_flat_at_zero():
    frame = metrics_frame()
    frame.loc[frame["kind"] == "train", "ibot_loss"] = 0.0  # cpu-demo: iBOT off, logged as 0
    long = rc.long_frame({"run-a": frame}, rc.PANELS["loss"])
    assert "iBOT" not in set(long["metric"]) and long.attrs["off"] == ["iBOT"]
    frame.loc[frame.index[frame["kind"] == "train"][0], "ibot_loss"] = 0.5  # on, once
    assert "iBOT" in set(rc.long_frame({"run-a": frame}, rc.PANELS["loss"])["metric"])


def test_x_axis_by_relative_time_in_minutes_by_epoch_and_by_wall_time():
    by_time = rc.long_frame({"a": metrics_frame()}, ["loss"], x="relative")
    assert list(by_time["x"]) == [0.5, 1.0, 1.5, 2.0, 2.5]
    by_epoch = rc.long_frame({"a": metrics_frame()}, ["loss"], x="epoch")
    assert list(by_epoch["x"]) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    start = 1_778_364_000.0  # 2026-05-09 22:00:00 UTC
    wall = rc.long_frame(
        {"a": metrics_frame(), "b": metrics_frame()}, ["loss"], x="wall", starts={"a": start}
    )
    assert set(wall["run"]) == {"a"} and wall.attrs["no_x"] == ["b"]  # b has no start
    assert str(wall["x"].iloc[0]) == "2026-05-09 22:00:30+00:00"
    assert cp.position_text("wall", wall["x"].iloc[0]) == "2026-05-09 22:00:30"
    assert cp.position_text("relative", 1.46385) == "1 min 28 s"  # not "1.46385"
    with pytest.raises(ValueError, match="x axis"):
        rc.long_frame({"a": metrics_frame()}, ["loss"], x="time")


def test_wall_time_of_a_resumed_run_counts_from_its_latest_start():
    frame = metrics_frame()
    frame.loc[len(frame)] = {"kind": "event", "step": 3, "time": 90.0, "code": "resumed"}
    starts = rc.wall_starts(
        {"a": frame, "b": metrics_frame(), "c": frame}, {"a": 1000.0, "b": 50.0}
    )
    assert starts == {"a": 910.0, "b": 50.0}  # c: no recorded start


def test_smoothing_changes_values_but_keeps_the_raw_ones_and_never_touches_schedules():
    long = rc.long_frame({"a": metrics_frame()}, ["loss"], smoothing=0.8)
    assert list(long["raw"]) == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert long["value"].iloc[-1] > 3.0  # the smoothed curve lags
    schedules = rc.long_frame({"a": metrics_frame()}, rc.PANELS["schedules"], smoothing=0.9)
    assert (schedules["value"] == schedules["raw"]).all()
    lr = rc.long_frame({"a": metrics_frame()}, rc.overlay_panel("learning rate"), smoothing=0.9)
    assert (lr["value"] == lr["raw"]).all()  # overlaid alone, still a schedule
    knn = rc.long_frame({"a": metrics_frame()}, rc.PANELS["knn"], smoothing=0.9)
    assert (knn["value"] == knn["raw"]).all()  # two evaluations are not a curve to smooth


def test_several_runs_are_overlaid_with_run_prefixed_series():
    frames = {"broken": metrics_frame(knn=(10, 11)), "fixed": metrics_frame(knn=(10, 40))}
    long = rc.long_frame(frames, ["knn_top1"], kind="eval")
    assert set(long["series"]) == {"broken", "fixed"}  # one metric: the legend is the run
    both = rc.long_frame(frames, rc.PANELS["knn"])
    assert set(both["series"]) == {f"{r} · {m}" for r in frames for m in ("top-1", "top-5")}
    lines = rc.baselines(frames)
    assert list(lines["value"]) == [10.0] and list(lines["label"]) == ["step 0 (random weights)"]
    frames["fixed"].loc[0, "knn_top1"] = 12.0
    assert list(rc.baselines(frames)["label"]) == ["broken: step 0", "fixed: step 0"]
    named = rc.baselines(frames, names={"broken": "seed-broken 22:01"})
    assert named["label"].iloc[0] == "seed-broken 22:01: step 0"
    assert rc.long_frame({"empty": pd.DataFrame()}, ["loss"]).empty


def test_ln_k_lines_and_the_log_scale_filter():
    lines = rc.ln_k_lines({"a": 1024, "b": 1, "c": 1024})
    assert list(lines["value"]) == [pytest.approx(math.log(1024))]  # one line per K
    assert lines["label"][0] == "ln K = ln 1024"
    long = rc.long_frame({"a": metrics_frame()}, ["koleo_loss"])
    kept, dropped = rc.positive_only(long)
    assert dropped == 2 and (kept["value"] > 0).all()  # KoLeo starts negative


def long_run(n: int, spike_at: int | None = None) -> pd.DataFrame:
    loss = 10 * np.exp(-np.arange(n) / (n / 5)) + np.sin(np.arange(n) / 7)
    if spike_at is not None:
        loss[spike_at] = 1e4
    return pd.DataFrame(
        {"kind": "train", "step": np.arange(n), "time": np.arange(n) * 0.5, "loss": loss}
    )


def test_lttb_keeps_the_ends_and_the_shape_with_the_target_count():
    x = np.arange(10_000, dtype=float)
    y = np.where(x == 5000, 50.0, np.sin(x / 300))
    keep = cp.lttb_indices(x, y, 200)
    assert len(keep) == 200 and keep[0] == 0 and keep[-1] == 9999
    assert np.all(np.diff(keep) > 0) and 5000 in keep  # the peak is the largest triangle
    assert list(cp.lttb_indices(x[:5], y[:5], 200)) == [0, 1, 2, 3, 4]
    keep = cp.minmax_indices(y, 100)
    assert len(keep) <= 100 and 5000 in keep


def test_drawing_is_thinned_per_line_but_the_data_and_the_export_keep_every_point():
    frames = {"a": long_run(100_000, spike_at=77_777), "b": long_run(50)}
    long = rc.long_frame(frames, ["loss"], smoothing=0.9)
    smoothed, raw = cp.drawing_points(long, max_points=1000)
    assert smoothed.groupby("run").size().to_dict() == {"a": 1000, "b": 50}
    assert raw.groupby("run").size().max() <= 1000
    assert raw["raw"].max() == 1e4  # the spike is still drawn in the raw envelope
    exported = cp.export_frame(long, "step")
    assert len(exported) == 100_050  # every point, not the drawing
    assert list(exported.columns) == ["run", "name", "metric", "step", "seconds", "value", "raw"]
    one = rc.long_frame({"a": long_run(1)}, ["loss"])
    assert [len(part) for part in cp.drawing_points(one)] == [1, 1]


def test_hover_shows_every_run_at_the_pointers_step_and_nothing_past_a_runs_end():
    frames = {"20260509-220101-a": metrics_frame(steps=5), "20260509-221500-b": metrics_frame(3)}
    long = rc.long_frame(frames, ["loss"], smoothing=0.5)
    table = cp.hover_frame(long, "step")
    assert table.attrs["series"] == {"s0": "a 22:01", "s1": "b 22:15"}
    row = table[table["x"] == 3].iloc[0]
    assert row["at"] == "step 3"
    assert row["s0"].endswith("(raw 5)") and row["s1"].endswith("(raw 5)")
    assert table[table["x"] == 5].iloc[0]["s1"] == "ended at step 3"
    unsmoothed = cp.hover_frame(rc.long_frame(frames, ["loss"]), "step")
    assert unsmoothed[unsmoothed["x"] == 3].iloc[0]["s0"] == "5"  # no "(raw 5)" twice
    several = cp.hover_frame(rc.long_frame({"a": metrics_frame()}, ["loss", "dino_loss"]), "step")
    assert set(several.attrs["series"].values()) == {"a · total loss", "a · DINO"}
    assert len(cp.hover_frame(rc.long_frame({"a": long_run(20_000)}, ["loss"]), "step")) == 500


def test_outliers_are_left_out_of_the_y_range():
    long = rc.long_frame({"a": long_run(2000, spike_at=1000)}, ["loss"])
    low, high = cp.outlier_domain(long)
    assert high < 100 < 1e4  # the spike at 1e4 no longer sets the scale
    assert low < long["value"].median() < high
    assert cp.outlier_domain(rc.long_frame({"a": long_run(3)}, ["loss"])) is None


def test_every_panel_column_has_a_label():
    for panel in rc.PANELS.values():
        assert panel.help and panel.title
        assert all(column in rc.LABELS for column in panel.columns)


def test_float_noise_on_a_constant_is_not_drawn():
    frame = pd.DataFrame(
        {
            "kind": ["train"] * 3,
            "step": [1, 2, 3],
            "time": [1.0, 2.0, 3.0],
            "teacher_temp": [0.04, 0.04000000000000001, 0.039999999999999994],
        }
    )
    long = rc.long_frame({"a": frame}, ["teacher_temp"])
    assert long["value"].nunique() == 1 and long["raw"].nunique() == 3
    np.testing.assert_array_equal(
        rc.significant(np.array([123456.789, -0.000123456789, 0.0, np.nan]), 3),
        np.array([123000.0, -0.000123, 0.0, np.nan]),
    )


def test_overlay_metrics_keep_the_reference_lines_of_their_panel():
    assert list(rc.OVERLAY_METRICS)[:4] == ["total loss", "DINO", "iBOT", "KoLeo"]
    assert {"k-NN top-1", "k-NN top-5", "per-image entropy"} <= set(rc.OVERLAY_METRICS)
    knn = rc.overlay_panel("k-NN top-1")
    assert (knn.key, knn.columns, knn.kind, knn.separate) == ("knn", ("knn_top1",), "eval", False)
    assert rc.overlay_panel("per-image entropy").key == "entropy"
    loss = rc.overlay_panel("total loss")
    assert (loss.key, loss.columns, loss.log_allowed) == ("loss", ("loss",), True)
    assert rc.overlay_panel("learning rate").key == "lr"  # no reference line
    frames = {"a": pd.DataFrame({"kind": ["eval"], "step": [0], "knn_top1": [11.0]})}
    assert rc.reference_lines(knn, frames, {})["value"].tolist() == [11.0]
    entropy = rc.reference_lines(rc.PANELS["entropy"], frames, {"a": 256})
    assert entropy["label"].tolist() == ["ln K = ln 256"]
    assert rc.reference_lines(rc.PANELS["loss"], frames, {"a": 256}) is None


def test_prototypes_per_run_come_from_the_resolved_configs():
    configs = {"a": {"model": {"num_prototypes": 256}}, "b": None, "c": {"model": {}}}
    assert rc.prototypes(configs) == {"a": 256}
