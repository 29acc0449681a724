"""The training page's k-NN against its noise: the tile's delta colour and numbers, the verdict
per run and between runs, the noise band, the narrowest y range and the grey step-0 zone."""

from __future__ import annotations

import pandas as pd
import pytest

from dinodiag.dashboard import curve_charts, curve_points, curves, knn_verdict
from dinodiag.train.eval.knn_noise import axis_span, judge_change, knn_interval


def knn(*values: float, test: int | None = 1000) -> pd.DataFrame:
    """A metrics frame with one k-NN evaluation per value (step 0 first), on ``test`` images."""
    rows = []
    for i, value in enumerate(values):
        row = {"kind": "eval", "step": 100 * i, "time": float(i), "knn_top1": value}
        row["knn_top5"] = min(100.0, value + 30.0)
        if test is not None:
            row["knn_test"] = test
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_change_within_the_noise_is_grey_and_names_its_noise():
    tile = knn_verdict.knn_tile(knn(14.0, 14.2))
    assert tile.value == "14.2%" and tile.delta_color == "off"
    assert tile.delta.startswith("+0.2 vs step 0") and "within noise ±3.1" in tile.delta
    assert "1000 images" in tile.delta
    low, high = knn_interval(14.2, 1000)
    assert f"95% {low:.1f}–{high:.1f}%" in tile.label and "1000 test images" in tile.label


def test_a_clear_change_keeps_its_colour():
    tile = knn_verdict.knn_tile(knn(14.0, 26.4, test=500))
    assert tile.delta_color == "normal" and "beyond noise" in tile.delta
    threshold = judge_change(14.0, 26.4, 500).threshold
    assert f"±{threshold:.1f} on 500 images" in tile.delta
    falling = knn_verdict.knn_tile(knn(40.0, 20.0, test=500))
    assert falling.delta_color == "normal" and falling.delta.startswith("-20.0")


def test_too_few_test_images_are_never_judged():
    tile = knn_verdict.knn_tile(knn(25.0, 75.0, test=4))
    assert tile.delta_color == "off" and "too few test images to judge" in tile.delta
    verdict = knn_verdict.run_verdict(knn(25.0, 75.0, test=4), "tiny")
    assert (verdict.status, verdict.level) == ("too_few", "warning")


def test_the_tile_before_a_second_evaluation_and_without_any():
    first = knn_verdict.knn_tile(knn(14.0))
    assert first.value == "14.0%" and first.delta is None
    assert "1000 test images" in first.label
    assert knn_verdict.knn_tile(pd.DataFrame()).value == "–"
    unknown = knn_verdict.knn_tile(knn(10.0, 30.0, test=None))
    assert unknown.delta_color == "off" and unknown.label == "k-NN top-1"


def test_the_verdict_of_a_run():
    learning = knn_verdict.run_verdict(knn(14.0, 20.0, 26.4, test=500), "demo")
    assert (learning.status, learning.level) == ("learning", "success")
    assert learning.change.gain == pytest.approx(12.4) and learning.change.n_test == 500
    noise = knn_verdict.run_verdict(knn(14.0, 14.2), "demo")
    assert (noise.status, noise.level) == ("noise", "info")
    assert knn_verdict.run_verdict(knn(40.0, 25.0), "demo").status == "falling"
    assert knn_verdict.run_verdict(knn(14.0), "demo").status == "pending"
    assert knn_verdict.run_verdict(knn(14.0, 30.0, test=None), "demo").status == "unknown"


def test_runs_compared_against_the_noise():
    (pair,) = knn_verdict.compare_verdicts({"a": knn(14.0, 40.0), "b": knn(14.0, 20.0)})
    assert (pair.leader, pair.other, pair.outcome) == ("a", "b", "ahead")
    assert pair.difference == pytest.approx(20.0) and 0 < pair.threshold < 20.0
    (same,) = knn_verdict.compare_verdicts({"a": knn(14.0, 30.0), "b": knn(14.0, 31.0)})
    assert (same.leader, same.outcome) == ("b", "same")
    (short,) = knn_verdict.compare_verdicts({"a": knn(14.0, 14.5), "b": knn(14.0, 15.0)})
    assert short.outcome == "too_short"
    (few,) = knn_verdict.compare_verdicts({"a": knn(10.0, 60.0, test=8), "b": knn(10.0, 20.0)})
    assert few.outcome == "too_few"
    assert knn_verdict.compare_verdicts({"a": knn(14.0, 40.0), "b": knn(14.0)}) == []
    three = knn_verdict.compare_verdicts(
        {"a": knn(14.0, 20.0), "b": knn(14.0, 40.0), "c": knn(14.0, 41.0)}
    )
    assert [(p.leader, p.other) for p in three] == [("c", "a"), ("c", "b")]


def test_the_noise_band_is_each_points_interval():
    long = curves.long_frame({"r": knn(14.0, 30.0, test=500)}, curves.PANELS["knn"])
    assert set(long["n_test"]) == {500}
    band = knn_verdict.knn_band(long)
    assert len(band) == 4  # top-1 and top-5, two evaluations each
    row = band[(band["column"] == "knn_top1") & (band["x"] == 100)].iloc[0]
    assert (row["low"], row["high"]) == pytest.approx(knn_interval(30.0, 500))
    unknown = curves.long_frame({"r": knn(14.0, 30.0, test=None)}, curves.PANELS["knn"])
    assert knn_verdict.knn_band(unknown).empty
    loss = pd.DataFrame([{"kind": "train", "step": 1, "time": 1.0, "loss": 5.0}])
    assert knn_verdict.knn_band(curves.long_frame({"r": loss}, curves.PANELS["loss"])).empty


def top1_long(frame: pd.DataFrame) -> pd.DataFrame:
    return curves.long_frame({"r": frame}, curves.overlay_panel("k-NN top-1"))


def test_a_knn_axis_is_never_narrower_than_the_noise():
    # the 14.00-14.20 axis: now at least the noise band of 1000 images wide
    low, high = knn_verdict.knn_domain(top1_long(knn(14.0, 14.2)))
    want_low, want_high = axis_span([14.0, 14.2], 1000)
    assert low <= want_low and high >= want_high and high - low > 4.0
    # one point: the 14.00000000-14.00000006 axis
    low, high = knn_verdict.knn_domain(top1_long(knn(14.0)))
    assert high - low > 4.0 and low < 14.0 < high
    # the band is inside the axis; a wide curve keeps its own range
    low, high = knn_verdict.knn_domain(top1_long(knn(10.0, 60.0, test=500)))
    assert low <= knn_interval(10.0, 500)[0] and high >= knn_interval(60.0, 500)[1]
    assert knn_verdict.knn_domain(curves.long_frame({"r": knn(1.0)}, ("time",))) is None


def test_the_chart_draws_the_band_and_pins_the_domain():
    frames = {"r": knn(14.0, 14.2)}
    long = top1_long(frames["r"])
    zone = knn_verdict.baseline_zone(frames)
    spec = curve_charts.curve_chart(long, zone=zone).to_dict()
    marks = [layer.get("mark", {}) for layer in spec["layer"]]
    kinds = [m.get("type") if isinstance(m, dict) else m for m in marks]
    assert "area" in kinds and "rect" in kinds  # the noise band and the grey step-0 zone
    assert any(layer.get("name") == "knn_noise_band" for layer in spec["layer"])
    domains = [
        layer["encoding"]["y"]["scale"]["domain"]
        for layer in spec["layer"]
        if "scale" in layer.get("encoding", {}).get("y", {})
        and "domain" in layer["encoding"]["y"]["scale"]
    ]
    low, high = domains[0]
    assert high - low >= zone["high"].iloc[0] - zone["low"].iloc[0]
    log = curve_charts.curve_chart(long, log_y=True).to_dict()  # a log axis keeps its own
    assert all(
        "domain" not in layer.get("encoding", {}).get("y", {}).get("scale", {})
        for layer in log["layer"]
    )


def test_the_step_0_zone_is_the_change_that_counts():
    zone = knn_verdict.baseline_zone({"a": knn(14.0, 20.0), "b": knn(14.0, 16.0)})
    assert len(zone) == 1  # the same start, the same zone
    threshold = judge_change(14.0, 14.0, 1000).threshold
    assert (zone["low"].iloc[0], zone["high"].iloc[0]) == pytest.approx(
        (14.0 - threshold, 14.0 + threshold)
    )
    assert knn_verdict.baseline_zone({"a": knn(14.0, test=None)}).empty


def test_the_hover_shows_the_interval_and_test_count():
    table = curve_points.hover_frame(top1_long(knn(14.0, 30.0, test=500)), "step")
    low, high = knn_interval(30.0, 500)
    assert table["s0"].iloc[-1] == f"30 (95% {low:.1f}–{high:.1f}, 500 images)"
