"""dinodiag.stats.geometry: IoU and coverage of crop boxes."""

from __future__ import annotations

import pytest

from dinodiag.stats.geometry import coverage, iou


def test_geometry_helpers() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 1, 1), (5, 5, 1, 1)) == 0.0
    # Local box half inside each of two overlapping globals: the union covers all of it.
    assert coverage((4, 0, 2, 2), [(0, 0, 5, 5), (5, 0, 5, 5)]) == pytest.approx(1.0)
    assert coverage((4, 0, 2, 2), [(0, 0, 5, 5)]) == pytest.approx(0.5)
    assert coverage((0, 0, 2, 2), [(0, 0, 2, 2), (0, 0, 2, 2)]) == pytest.approx(
        1.0
    )  # no double count
    assert coverage((0, 0, 2, 2), []) == 0.0
