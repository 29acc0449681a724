"""The nine painters of the bundled sample images: numbered and coordinate grids, landscape,
harbour and skyline scenes, shapes with numbers, document pages, a bar chart and a sticky note.
Each draws a deterministic picture from a size and a seed, with no font and no network (digits
and letters are seven-segment glyphs, :mod:`dinodiag.data.drawing`);
:mod:`dinodiag.data.samples` lays them out as the ``sample_images/`` folder."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from dinodiag.data.drawing import draw_text, hsv_colour, ink_for, text_width, vertical_gradient


# ---------------------------------------------------------------------------- grids
def numbered_grid(size: tuple[int, int], columns: int, rows: int, hue: float) -> Image.Image:
    """Cells coloured along a hue ramp, each labelled with its row letter and column number."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    cell_w, cell_h = size[0] / columns, size[1] / rows
    for row in range(rows):
        for column in range(columns):
            colour = hsv_colour(
                hue + 0.6 * column / columns, 0.35 + 0.5 * row / rows, 0.95 - 0.2 * row / rows
            )
            box = (column * cell_w, row * cell_h, (column + 1) * cell_w, (row + 1) * cell_h)
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=colour)
            label = f"{'ABCDEFHLPU'[row % 10]}{column + 1}"
            glyph = min(cell_h * 0.45, cell_w * 0.7 / (0.75 * len(label)))
            left = box[0] + (cell_w - text_width(label, glyph)) / 2
            draw_text(draw, label, left, box[1] + (cell_h - glyph) / 2, glyph, ink_for(colour))
    for column in range(columns + 1):
        x = round(column * cell_w)
        draw.line((x, 0, x, size[1]), fill=(40, 40, 40), width=max(1, size[0] // 250))
    for row in range(rows + 1):
        y = round(row * cell_h)
        draw.line((0, y, size[0], y), fill=(40, 40, 40), width=max(1, size[0] // 250))
    return image


def coordinate_grid(size: tuple[int, int], step: int) -> Image.Image:
    """Graph paper: thin lines every ``step`` px, thick ones every 4, x / y written on them."""
    image = vertical_gradient(size, (250, 248, 235), (225, 235, 250))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], step):
        major = (x // step) % 4 == 0
        draw.line(
            (x, 0, x, size[1]),
            fill=(60, 90, 200) if major else (170, 190, 230),
            width=3 if major else 1,
        )
        if major and x:
            draw_text(draw, str(x), x + 5, 6, 22, (60, 90, 200))
    for y in range(0, size[1], step):
        major = (y // step) % 4 == 0
        draw.line(
            (0, y, size[0], y),
            fill=(200, 70, 60) if major else (235, 180, 170),
            width=3 if major else 1,
        )
        if major and y:
            draw_text(draw, str(y), 6, y + 5, 22, (200, 70, 60))
    # A few landmarks, so that a crop of empty graph paper is rare.
    for index, (fx, fy, hue) in enumerate(((0.6, 0.55, 0.0), (0.25, 0.3, 0.35), (0.8, 0.2, 0.6))):
        cx, cy, radius = size[0] * fx, size[1] * fy, min(size) * 0.1
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            outline=hsv_colour(hue, 0.8, 0.8),
            width=6,
        )
        draw_text(
            draw, str(index + 1), cx - radius * 0.2, cy - radius * 0.35, radius * 0.7, (30, 30, 30)
        )
    return image


# --------------------------------------------------------------------------- scenes
def landscape_scene(size: tuple[int, int], seed: int, night: bool = False) -> Image.Image:
    """Sky, sun or moon, layered mountains, a house with a numbered door, trees."""
    rng = np.random.default_rng(seed)
    width, height = size
    sky = ((20, 30, 70), (70, 60, 120)) if night else ((90, 160, 235), (200, 230, 250))
    image = vertical_gradient(size, *sky)
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, sun_r = width * rng.uniform(0.6, 0.85), height * 0.18, min(size) * 0.09
    draw.ellipse(
        (sun_x - sun_r, sun_y - sun_r, sun_x + sun_r, sun_y + sun_r),
        fill=(240, 240, 210) if night else (255, 210, 60),
    )
    for layer, colour in enumerate(((110, 120, 150), (70, 110, 80), (50, 90, 50))):
        base = height * (0.45 + 0.12 * layer)
        xs = np.linspace(0, width, 9)
        peaks = base - height * rng.uniform(0.05, 0.2, size=9)
        draw.polygon(
            [(0, height)] + list(zip(xs.tolist(), peaks.tolist(), strict=True)) + [(width, height)],
            fill=colour,
        )
    house_x, house_y, house_w = width * 0.15, height * 0.62, width * 0.22
    draw.rectangle(
        (house_x, house_y, house_x + house_w, house_y + house_w * 0.7), fill=(200, 80, 60)
    )
    draw.polygon(
        [
            (house_x - 8, house_y),
            (house_x + house_w / 2, house_y - house_w * 0.45),
            (house_x + house_w + 8, house_y),
        ],
        fill=(90, 40, 30),
    )
    door = (
        house_x + house_w * 0.4,
        house_y + house_w * 0.3,
        house_x + house_w * 0.6,
        house_y + house_w * 0.7,
    )
    draw.rectangle(door, fill=(60, 40, 20))
    draw_text(draw, str(seed % 100), house_x + 6, house_y + 6, house_w * 0.18, (255, 240, 200))
    for _ in range(5):
        tree_x, tree_y = width * rng.uniform(0.45, 0.95), height * rng.uniform(0.7, 0.85)
        tree_h = height * rng.uniform(0.1, 0.18)
        draw.rectangle((tree_x - 3, tree_y, tree_x + 3, tree_y + tree_h * 0.4), fill=(90, 60, 30))
        draw.polygon(
            [
                (tree_x - tree_h * 0.3, tree_y),
                (tree_x, tree_y - tree_h),
                (tree_x + tree_h * 0.3, tree_y),
            ],
            fill=(30, 110, 50),
        )
    return image


def harbour_scene(size: tuple[int, int], seed: int) -> Image.Image:
    """Sea with waves, a sailboat with a sail number, a lighthouse with stripes."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = vertical_gradient(size, (250, 190, 140), (160, 200, 240))
    draw = ImageDraw.Draw(image)
    horizon = height * 0.55
    draw.rectangle((0, horizon, width, height), fill=(30, 90, 150))
    for row in range(12):
        y = horizon + (row + 1) * (height - horizon) / 13
        for x in np.arange(rng.uniform(0, 30), width, 38):
            draw.arc((x, y - 5, x + 24, y + 5), 200, 340, fill=(200, 225, 245), width=2)
    boat_x, boat_y = width * 0.35, height * 0.72
    draw.polygon(
        [
            (boat_x, boat_y),
            (boat_x + width * 0.25, boat_y),
            (boat_x + width * 0.21, boat_y + height * 0.06),
            (boat_x + width * 0.04, boat_y + height * 0.06),
        ],
        fill=(120, 60, 40),
    )
    mast_x = boat_x + width * 0.12
    draw.polygon(
        [
            (mast_x, boat_y - height * 0.35),
            (mast_x, boat_y - 4),
            (mast_x + width * 0.14, boat_y - 4),
        ],
        fill=(250, 250, 245),
    )
    draw_text(
        draw, str(10 + seed % 90), mast_x + 4, boat_y - height * 0.14, height * 0.07, (200, 30, 30)
    )
    tower_x = width * 0.8
    for band in range(6):
        top = height * (0.2 + 0.06 * band)
        colour = (220, 40, 40) if band % 2 else (250, 250, 250)
        draw.rectangle((tower_x, top, tower_x + width * 0.06, top + height * 0.06), fill=colour)
    draw.polygon(
        [
            (tower_x - 5, height * 0.2),
            (tower_x + width * 0.03, height * 0.12),
            (tower_x + width * 0.06 + 5, height * 0.2),
        ],
        fill=(60, 60, 60),
    )
    return image


def skyline_scene(size: tuple[int, int], seed: int) -> Image.Image:
    """City skyline with lit windows and numbered buildings (drawn in colour, saved grey)."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = vertical_gradient(size, (40, 50, 90), (230, 150, 110))
    draw = ImageDraw.Draw(image)
    x, number = 0.0, 1
    while x < width:
        building_w = width * rng.uniform(0.07, 0.14)
        top = height * rng.uniform(0.2, 0.6)
        shade = int(rng.integers(30, 90))
        draw.rectangle((x, top, x + building_w - 2, height), fill=(shade, shade, shade + 10))
        for wy in np.arange(top + 8, height - 10, 14):
            for wx in np.arange(x + 5, x + building_w - 10, 10):
                if rng.random() < 0.55:
                    draw.rectangle((wx, wy, wx + 4, wy + 6), fill=(250, 220, 120))
        draw_text(draw, str(number), x + 4, top - 22, 18, (250, 250, 250))
        x, number = x + building_w, number + 1
    return image


# --------------------------------------------------------------------------- shapes
def shapes_picture(
    size: tuple[int, int], seed: int, count: int, transparent: bool = False
) -> Image.Image:
    """Circles, squares and triangles in bright colours, each carrying a number."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new(
        "RGBA" if transparent else "RGB", size, (0, 0, 0, 0) if transparent else (238, 236, 228)
    )
    draw = ImageDraw.Draw(image)
    if not transparent:
        for x in range(0, width, 20):
            draw.line((x, 0, x, height), fill=(225, 222, 212))
    for number in range(1, count + 1):
        radius = min(size) * rng.uniform(0.08, 0.16)
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        colour = hsv_colour(rng.uniform(0, 1), 0.75, 0.9)
        fill = (*colour, 255) if transparent else colour
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        kind = number % 3
        if kind == 0:
            draw.ellipse(box, fill=fill, outline=(30, 30, 30), width=2)
        elif kind == 1:
            draw.rectangle(box, fill=fill, outline=(30, 30, 30), width=2)
        else:
            draw.polygon(
                [
                    (cx, cy - radius),
                    (cx + radius, cy + radius * 0.8),
                    (cx - radius, cy + radius * 0.8),
                ],
                fill=fill,
                outline=(30, 30, 30),
            )
        glyph = radius * 0.6
        label = str(number)
        draw_text(
            draw,
            label,
            cx - text_width(label, glyph) / 2,
            cy - glyph / 2 + (radius * 0.15 if kind == 2 else 0),
            glyph,
            ink_for(colour),
        )
    return image


# ------------------------------------------------------------------------ documents
def document_page(size: tuple[int, int], seed: int, page: int, columns: int = 1) -> Image.Image:
    """A page: coloured heading bar, paragraphs of text-like word blocks, a numbered footer."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("RGB", size, (252, 251, 247))
    draw = ImageDraw.Draw(image)
    margin = width * 0.08
    draw.rectangle(
        (margin, margin, width - margin, margin + height * 0.07),
        fill=hsv_colour(rng.uniform(0, 1), 0.6, 0.7),
    )
    draw_text(
        draw, f"P{page}", margin + 6, margin + height * 0.012, height * 0.045, (255, 255, 255)
    )
    column_w = (width - 2 * margin - (columns - 1) * 12) / columns
    line_h = max(6.0, height * 0.028)
    for column in range(columns):
        left = margin + column * (column_w + 12)
        y = margin + height * 0.11
        while y < height - margin - 2 * line_h:
            if rng.random() < 0.12:
                y += line_h  # paragraph break
            x = left
            line_end = left + column_w * (rng.uniform(0.5, 0.95) if rng.random() < 0.2 else 1.0)
            while x < line_end - 10:
                word = line_h * rng.uniform(0.8, 3.5)
                draw.rectangle(
                    (x, y, min(x + word, line_end), y + line_h * 0.55), fill=(70, 70, 80)
                )
                x += word + line_h * 0.5
            y += line_h
    draw_text(
        draw,
        f"- {page} -",
        width / 2 - text_width(f"- {page} -", line_h) / 2,
        height - margin,
        line_h,
        (90, 90, 90),
    )
    return image


def bar_chart(size: tuple[int, int], seed: int) -> Image.Image:
    """A slide with a bar chart: values written above each bar, axis ticks numbered."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, bottom, top = width * 0.12, height * 0.88, height * 0.12
    draw.line((left, top, left, bottom), fill=(0, 0, 0), width=2)
    draw.line((left, bottom, width * 0.95, bottom), fill=(0, 0, 0), width=2)
    for tick in range(0, 101, 25):
        y = bottom - (bottom - top) * tick / 100
        draw.line((left - 5, y, left, y), fill=(0, 0, 0), width=2)
        draw_text(draw, str(tick), 6, y - 7, 14, (0, 0, 0))
    values = rng.integers(10, 100, size=6)
    bar_w = (width * 0.95 - left) / 6
    for index, value in enumerate(values.tolist()):
        x = left + index * bar_w + bar_w * 0.15
        y = bottom - (bottom - top) * value / 100
        draw.rectangle((x, y, x + bar_w * 0.7, bottom - 1), fill=hsv_colour(index / 6, 0.65, 0.85))
        draw_text(draw, str(value), x + bar_w * 0.1, y - 20, 16, (20, 20, 20))
        draw_text(draw, "ABCDEF"[index], x + bar_w * 0.25, bottom + 8, 16, (20, 20, 20))
    return image


def sticky_note(size: tuple[int, int], seed: int) -> Image.Image:
    """A small yellow note with a big number and two lines."""
    image = Image.new("RGB", size, (255, 236, 120))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.rectangle((0, 0, width - 1, height * 0.14), fill=(240, 200, 70))
    draw_text(draw, str(seed), width * 0.1, height * 0.25, height * 0.4, (40, 40, 140))
    for row in range(2):
        y = height * (0.75 + 0.1 * row)
        draw.rectangle((width * 0.1, y, width * (0.85 - 0.25 * row), y + 3), fill=(90, 90, 120))
    return image
