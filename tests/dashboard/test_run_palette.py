"""Every run colour, and every loss-term colour of a one-run chart, reads on white: WCAG 2's
contrast ratio for graphics (>= 3:1), computed from the colours themselves; and the colours
stay told apart from each other (CIELAB distance)."""

from __future__ import annotations

import itertools
import math

import pytest

from dinodiag.dashboard.curve_charts import METRIC_COLOURS, RULE_COLOUR
from dinodiag.dashboard.run_names import PALETTE, run_colors


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of an sRGB hex colour."""
    r, g, b = (_linear(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_on_white(colour: str) -> float:
    return 1.05 / (luminance(colour) + 0.05)


def lab(colour: str) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB hex colour."""
    r, g, b = (_linear(c) for c in _rgb(colour))
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def test_the_contrast_formula_matches_known_values() -> None:
    assert contrast_on_white("#000000") == pytest.approx(21.0)
    assert contrast_on_white("#ffffff") == pytest.approx(1.0)
    assert contrast_on_white("#767676") == pytest.approx(4.54, abs=0.01)  # WCAG's AA grey
    assert contrast_on_white("#bcbd22") < 3.0  # the olive that read badly (issue 23)


@pytest.mark.parametrize("colour", PALETTE + METRIC_COLOURS)
def test_each_colour_passes_3_to_1_on_white(colour: str) -> None:
    assert contrast_on_white(colour) >= 3.0, colour


def test_ten_runs_get_ten_distinct_readable_colours() -> None:
    assert len(PALETTE) >= 10
    ids = [f"20260509-2201{n:02d}-cpu-demo" for n in range(10)]
    colours = run_colors(ids)
    assert len(set(colours.values())) == 10
    assert all(contrast_on_white(c) >= 3.0 for c in colours.values())


@pytest.mark.parametrize("colours", [PALETTE, METRIC_COLOURS])
def test_colours_are_told_apart_and_none_is_the_reference_grey(colours: tuple) -> None:
    closest = min(math.dist(lab(a), lab(b)) for a, b in itertools.combinations(colours, 2))
    assert closest > 20, closest  # ~2.3 is a just-noticeable difference; 20 reads as another hue
    grey = lab(RULE_COLOUR)
    assert all(math.dist(lab(c), grey) > 20 for c in colours)
