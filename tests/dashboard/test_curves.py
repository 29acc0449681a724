"""Curve data for the training page: smoothing, x axes, long frames, reference lines, charts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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


def test_ema_is_debiased_and_skips_missing_points():
    smoothed = rc.ema([10.0, np.nan, 0.0], 0.5)
    assert smoothed[0] == pytest.approx(10.0)  # debiased: no pull towards 0 at the start
    assert math.isnan(smoothed[1])
    assert smoothed[2] == pytest.approx((0.5 * 0.5 * 10.0) / (1 - 0.25))  # = 3.33
    assert rc.ema([1.0, 9.0, 9.0, 9.0], 0.6)[-1] < 9.0  # lags behind a jump
    with pytest.raises(ValueError, match="smoothing weight"):
        rc.ema([1.0], 1.0)


def test_long_frame_has_one_row_per_point_and_metric():
    long = rc.long_frame({"run-a": metrics_frame()}, rc.PANELS["loss"])
    assert set(long["metric"]) == {"total loss", "DINO", "KoLeo"}  # no iBOT column logged
    assert len(long) == 15 and list(long["x"][:5]) == [1, 2, 3, 4, 5]
    assert (long["series"] == long["metric"]).all()  # one run: the legend is the metric
    knn = rc.long_frame({"run-a": metrics_frame()}, rc.PANELS["knn"])
    assert sorted(knn[knn["metric"] == "top-1"]["raw"]) == [10.0, 30.0]


def test_x_axis_by_time_is_in_minutes_and_by_epoch():
    by_time = rc.long_frame({"a": metrics_frame()}, ["loss"], x="time")
    assert list(by_time["x"]) == [0.5, 1.0, 1.5, 2.0, 2.5]
    by_epoch = rc.long_frame({"a": metrics_frame()}, ["loss"], x="epoch")
    assert list(by_epoch["x"]) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])


def test_smoothing_changes_values_but_keeps_the_raw_ones():
    long = rc.long_frame({"a": metrics_frame()}, ["loss"], smoothing=0.8)
    assert list(long["raw"]) == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert long["value"].iloc[-1] > 3.0  # the smoothed curve lags


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
    assert rc.long_frame({"empty": pd.DataFrame()}, ["loss"]).empty


def test_ln_k_lines_and_the_log_scale_filter():
    lines = rc.ln_k_lines({"a": 1024, "b": 1, "c": 1024})
    assert list(lines["value"]) == [pytest.approx(math.log(1024))]  # one line per K
    assert lines["label"][0] == "ln K = ln 1024"
    long = rc.long_frame({"a": metrics_frame()}, ["koleo_loss"])
    kept, dropped = rc.positive_only(long)
    assert dropped == 2 and (kept["value"] > 0).all()  # KoLeo starts negative


def test_curve_chart_spec_has_log_scale_rules_and_tooltips():
    long = rc.long_frame({"a": metrics_frame()}, rc.PANELS["knn"])
    spec = rc.curve_chart(long, x="step", log_y=True, rules=rc.baselines({"a": metrics_frame()}))
    spec = spec.to_dict()
    layers = spec["layer"]
    assert layers[0]["encoding"]["y"]["scale"]["type"] == "log"
    assert layers[1]["mark"]["type"] == "rule" and layers[1]["mark"]["strokeDash"] == [6, 4]
    assert layers[0]["encoding"]["x"]["title"] == "step"


def test_small_multiples_give_each_metric_its_own_scale():
    long = rc.long_frame({"a": metrics_frame()}, rc.PANELS["schedules"], x="time")
    spec = rc.small_multiples(long, x="time").to_dict()
    assert spec["resolve"]["scale"]["y"] == "independent"
    assert spec["spec"]["encoding"]["x"]["title"] == "wall time (min)"


def test_every_panel_column_has_a_label():
    for panel in rc.PANELS.values():
        assert panel.help and panel.title
        assert all(column in rc.LABELS for column in panel.columns)


def test_curve_chart_takes_fixed_colours_per_series():
    frames = {"broken": metrics_frame(knn=(10, 11)), "fixed": metrics_frame(knn=(10, 40))}
    long = rc.long_frame(frames, ["knn_top1"], kind="eval")
    colors = {"broken": "#d62728", "fixed": "#2ca02c"}
    scale = rc.curve_chart(long, colors=colors).to_dict()["layer"][0]["encoding"]["color"]["scale"]
    assert scale == {"domain": ["broken", "fixed"], "range": ["#d62728", "#2ca02c"]}


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
