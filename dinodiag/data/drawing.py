"""Drawing helpers for synthetic pictures: seven-segment text and simple colour tools.

Digits and a few letters are drawn as seven-segment glyphs (filled rectangles), so
pictures need no font file and look the same on every machine.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]

# Seven-segment glyphs: segments a (top), b (top right), c (bottom right), d (bottom),
# e (bottom left), f (top left), g (middle).
_GLYPHS = {
    "0": "abcdef",
    "1": "bc",
    "2": "abged",
    "3": "abgcd",
    "4": "fgbc",
    "5": "afgcd",
    "6": "afgedc",
    "7": "abc",
    "8": "abcdefg",
    "9": "abfgcd",
    "A": "abcefg",
    "B": "cdefg",
    "C": "adef",
    "D": "bcdeg",
    "E": "adefg",
    "F": "aefg",
    "H": "bcefg",
    "L": "def",
    "P": "abefg",
    "U": "bcdef",
    "-": "g",
}


def draw_text(
    draw: ImageDraw.ImageDraw, text: str, x: float, y: float, height: float, fill: object
) -> float:
    """Draw ``text`` in seven-segment glyphs with its top-left at (x, y); returns the width."""
    width, thick = 0.55 * height, max(1.0, 0.13 * height)
    half = height / 2
    boxes = {
        "a": (thick, 0, width - thick, thick),
        "b": (width - thick, thick * 0.5, width, half),
        "c": (width - thick, half, width, height - thick * 0.5),
        "d": (thick, height - thick, width - thick, height),
        "e": (0, half, thick, height - thick * 0.5),
        "f": (0, thick * 0.5, thick, half),
        "g": (thick, half - thick / 2, width - thick, half + thick / 2),
    }
    cursor = x
    for char in text.upper():
        for segment in _GLYPHS.get(char, ""):
            left, top, right, bottom = boxes[segment]
            draw.rectangle((cursor + left, y + top, cursor + right - 1, y + bottom - 1), fill=fill)
        cursor += width + thick * 1.6
    return cursor - x - thick * 1.6


def text_width(text: str, height: float) -> float:
    """Width :func:`draw_text` gives ``text`` at ``height``."""
    return len(text) * (0.55 * height + 0.13 * height * 1.6) - 0.13 * height * 1.6


def hsv_colour(hue: float, saturation: float, value: float) -> Colour:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return (round(red * 255), round(green * 255), round(blue * 255))


def ink_for(colour: Colour) -> Colour:
    """Black or white, whichever reads better on ``colour``."""
    luminance = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    return (20, 20, 20) if luminance > 140 else (245, 245, 245)


def vertical_gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    width, height = size
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float64)[:, None, None]  # (H, 1, 1)
    pixels = np.asarray(top, dtype=np.float64) * (1 - ramp) + np.asarray(bottom) * ramp
    return Image.fromarray(np.repeat(np.rint(pixels).astype(np.uint8), width, axis=1), "RGB")
