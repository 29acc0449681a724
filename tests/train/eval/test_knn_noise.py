"""The k-NN noise rules: Wilson interval, the test size that resolves 10 points, a change
judged against its noise, and the narrowest axis a chart may zoom to."""

from __future__ import annotations

import math

import pytest

from dinodiag.train.eval.knn_noise import (
    CLEAR,
    axis_span,
    gain_noise,
    judge_change,
    knn_interval,
    knn_noise,
    min_test_images,
    resolvable_points,
)


def test_wilson_interval_matches_the_formula_and_stays_in_range():
    low, high = knn_interval(75.0, 4)
    # Wilson at 3 of 4: centre (0.75 + z^2/8) / (1 + z^2/4)
    z = 1.959964
    centre = (0.75 + z * z / 8) / (1 + z * z / 4)
    half = z * math.sqrt(0.75 * 0.25 / 4 + z * z / 64) / (1 + z * z / 4)
    assert (low, high) == pytest.approx((100 * (centre - half), 100 * (centre + half)))
    assert high - low > 60  # 4 images say almost nothing
    assert knn_interval(0.0, 50)[0] == 0.0 and knn_interval(100.0, 50)[1] == 100.0
    assert knn_interval(0.0, 50)[1] > 0  # 0 of 50 is not "exactly 0"
    assert knn_interval(50.0, None) is None
    narrow = knn_interval(42.0, 5000)
    assert narrow[1] - narrow[0] < 3


def test_min_test_images_resolves_ten_points_at_fifty_percent():
    n = min_test_images()
    assert n == 200
    assert CLEAR * gain_noise(50.0, 50.0, n) <= 10.0 + 1e-9
    assert CLEAR * gain_noise(50.0, 50.0, n - 1) > 10.0
    assert resolvable_points(n) == pytest.approx(10.0)
    assert resolvable_points(None) is None


@pytest.mark.parametrize(
    ("start", "end", "n", "status"),
    [
        (14.0, 14.2, 1000, "noise"),  # the green "+0.2" tile
        (14.0, 30.0, 1000, "up"),
        (40.0, 20.0, 1000, "down"),
        (25.0, 75.0, 4, "too_few"),  # 4 test images: 50 points is no evidence
        (10.0, 20.0, None, "unknown"),
    ],
)
def test_judge_change(start, end, n, status):
    change = judge_change(start, end, n)
    assert change.status == status
    assert change.gain == pytest.approx(end - start)
    if n:
        assert change.noise == pytest.approx(gain_noise(start, end, n))
        assert change.threshold == pytest.approx(CLEAR * change.noise)
        assert str(n) in change.describe()


def test_a_change_just_inside_and_just_outside_the_noise():
    n = 1000
    noise = gain_noise(30.0, 30.0, n)
    assert judge_change(30.0, 30.0 + 0.9 * CLEAR * noise, n).status == "noise"
    assert judge_change(30.0, 30.0 + 1.2 * CLEAR * noise, n).status == "up"


def test_axis_span_never_narrower_than_the_noise():
    low, high = axis_span([14.0, 14.2, 14.1], 1000)
    assert high - low >= 2 * 1.95 * knn_noise(14.1, 1000)
    assert low <= 14.0 and high >= 14.2
    one = axis_span([14.0], 1000)
    assert one[1] - one[0] > 3  # a single point is not an axis of 14.00000000-14.00000006
    wide = axis_span([5.0, 60.0], 1000)
    assert wide == pytest.approx((5.0, 60.0))
    assert axis_span([0.5], 100)[0] == 0.0  # clamped at 0, span kept
    assert axis_span([99.5], 100)[1] == 100.0
    assert axis_span([], 100) == (0.0, 100.0)
    unknown = axis_span([14.0], None)
    assert unknown[1] - unknown[0] == pytest.approx(1.0)
