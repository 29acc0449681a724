"""Pictures of what the pipeline did: crop boxes on the source, view grids, histograms.

Everything here is plain PIL / matplotlib (Agg, no pyplot: safe in threads) and
returns PIL images, matplotlib figures or PNG bytes, so the app, a notebook and
the tests draw the same figures. Nothing imports Streamlit.

Colours: global crops are drawn in warm colours (orange, red), local crops in
cyan, so the two groups are told apart at a glance; every box carries the
number of its view (``G1``, ``G2``, ``L1`` ...) as in the view captions.

Example::

    sample = pipeline(image, seed=0)
    boxes = draw_crop_boxes(image, sample.records)          # PIL image, longer side 480 px
    views = [to_display_image(v, cfg.mean, cfg.std) for v in sample.views]
    png = png_bytes(inspector_figure(image, sample, cfg.mean, cfg.std))
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import matplotlib
import torch
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from dinodiag.augment.records import MultiCropSample, ViewRecord
from dinodiag.dashboard.view_records import view_caption, view_name

GLOBAL_COLOURS = ("#ff6a00", "#e8112d", "#ffb000", "#c2185b")  # one per global view, cycled
LOCAL_COLOUR = "#00c8e6"  # every local view
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# --------------------------------------------------------------------------- basics


@functools.lru_cache(maxsize=8)
def font(size: int = 14, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans shipped with matplotlib (always installed), else PIL's default font."""
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name
    try:
        return ImageFont.truetype(str(path), size)
    except OSError:
        return ImageFont.load_default(size)


def box_colour(record: ViewRecord) -> str:
    if record.group == "global":
        return GLOBAL_COLOURS[record.index % len(GLOBAL_COLOURS)]
    return LOCAL_COLOUR


def to_display_image(
    view: torch.Tensor,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
) -> Image.Image:
    """A view tensor (3, H, W) (or (1, H, W)) back to an RGB PIL image.

    With ``mean`` / ``std`` the normalisation is undone (``x * std + mean``).
    With ``None`` (your own pipeline of unknown normalisation) the range is
    guessed: [0, 1] is shown as is, [0, 255] is divided by 255, anything else is
    de-normalised with the ImageNet statistics. Values are clipped to [0, 1].
    """
    data = view.detach().to(torch.float32).cpu()
    if data.ndim == 2:
        data = data.unsqueeze(0)
    if data.shape[0] == 1:
        data = data.expand(3, -1, -1)
    data = data[:3]
    if mean is None or std is None:
        lo, hi = float(data.min()), float(data.max())
        if lo >= 0.0 and hi <= 1.0:
            mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        elif lo >= 0.0 and hi <= 255.0:
            mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    pixels = (data * s + m).clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy(), "RGB")


def with_margin(image: Image.Image, margin: int = 4, colour: str = "white") -> Image.Image:
    """``image`` on a canvas ``margin`` px larger on every side (gaps between shown tiles)."""
    canvas = Image.new("RGB", (image.size[0] + 2 * margin, image.size[1] + 2 * margin), colour)
    canvas.paste(image.convert("RGB"), (margin, margin))
    return canvas


def fit(image: Image.Image, longer_side: int) -> Image.Image:
    """``image`` resized so its longer side is ``longer_side`` px (pixelated when enlarged 2x+)."""
    w, h = image.size
    factor = longer_side / max(w, h)
    if abs(factor - 1.0) < 1e-6:
        return image.copy()
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if factor >= 2.0:
        resample = Image.Resampling.NEAREST  # keep tiny images (CIFAR) crisp, not smeared
    elif factor > 1.0:
        resample = Image.Resampling.BICUBIC
    else:
        resample = Image.Resampling.LANCZOS
    return image.convert("RGB").resize(size, resample)


# --------------------------------------------------------------------------- crop boxes


def draw_crop_boxes(
    image: Image.Image, records: Sequence[ViewRecord], longer_side: int = 480
) -> Image.Image:
    """The source image (longer side ``longer_side`` px) with every crop box drawn and numbered.

    Globals are drawn first and thicker, locals on top; each box has its view
    name in a filled tag at its top-left corner.
    """
    canvas = fit(image.convert("RGB"), longer_side)
    factor = canvas.size[0] / image.size[0]
    draw = ImageDraw.Draw(canvas)
    tag_font = font(max(11, longer_side // 36), bold=True)
    ordered = sorted(records, key=lambda r: (r.group != "global", r.index))
    for rec in ordered:
        if rec.box is None:
            continue
        left, top, w, h = (v * factor for v in rec.box)
        colour = box_colour(rec)
        width = 4 if rec.group == "global" else 2
        right = min(left + w, canvas.size[0] - 1)
        bottom = min(top + h, canvas.size[1] - 1)
        draw.rectangle((left, top, right, bottom), outline=colour, width=width)
        label = view_name(rec)
        tx0, ty0, tx1, ty1 = draw.textbbox((0, 0), label, font=tag_font)
        tag_w, tag_h = tx1 - tx0 + 6, ty1 - ty0 + 4
        if (
            rec.group == "global"
        ):  # tags of globals top-left, of locals bottom-right: fewer overlaps
            tag_x, tag_y = left, top
        else:
            tag_x, tag_y = right - tag_w, bottom - tag_h
        tag_x = min(max(tag_x, 0), canvas.size[0] - tag_w)
        tag_y = min(max(tag_y, 0), canvas.size[1] - tag_h)
        draw.rectangle((tag_x, tag_y, tag_x + tag_w, tag_y + tag_h), fill=colour)
        draw.text((tag_x + 3 - tx0, tag_y + 2 - ty0), label, fill="black", font=tag_font)
    return canvas


# --------------------------------------------------------------------------- view grids


def view_images(
    sample: MultiCropSample,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
) -> list[tuple[Image.Image, str, ViewRecord | None]]:
    """``(display image, caption, record)`` per view, globals first; records matched by group.

    Without ``mean`` / ``std`` (your own pipeline), a view whose record holds the Normalize
    it went through is de-normalised with those values; others are guessed (see
    :func:`to_display_image`).
    """
    by_key = {(r.group, r.index): r for r in sample.records}
    out = []
    for group, views in (("global", sample.global_crops), ("local", sample.local_crops)):
        for index, view in enumerate(views):
            rec = by_key.get((group, index))
            caption = (
                view_caption(rec) if rec else f"{'G' if group == 'global' else 'L'}{index + 1}"
            )
            view_mean, view_std = mean, std
            if (mean is None or std is None) and rec is not None and rec.mean and rec.std:
                if len(rec.mean) == len(rec.std) == 3:
                    view_mean, view_std = rec.mean, rec.std
            out.append((to_display_image(view, view_mean, view_std), caption, rec))
    return out


def usable_index(dataset: Any, index: int) -> int:
    """The index of the image ``dataset[index]`` actually returns.

    A dataset hands out the next usable item when item ``index`` is an unusable file (and
    records the file among its ``problems``); the inspector captions the image it shows,
    so it asks here which one that is: the first index from ``index`` on whose file is not
    among the problems. Loads item ``index`` once (which is what finds a bad file).
    """
    dataset[index]
    bad = {str(problem.path) for problem in getattr(dataset, "problems", None) or []}
    count = len(dataset)
    for step in range(count):
        current = (index + step) % count
        if dataset.describe(current) not in bad:
            return current
    return index


@dataclass(frozen=True)
class ViewGroup:
    """The global or the local views of a sample, as the inspector shows them."""

    label: str  # "Global crops" / "Local crops"
    images: list[Image.Image]  # de-normalised views, each with a white margin
    captions: list[str]  # one per view: name and sampled parameters
    side: int  # output side of the views (px); 0 when the group is empty
    width: int  # display width (px): the views at their size relative to the globals


def view_groups(
    sample: MultiCropSample,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    tile: int,
    margin: int = 4,
    scale_side: int | None = None,
) -> list[ViewGroup]:
    """Global then local views, displayed at their relative output size: globals ``tile`` px
    wide, locals in proportion (at least 48 px, at most ``tile``), so a 96 px local next to
    a 224 px global looks as small as the model sees it. Locals larger than the globals (a
    pipeline bug the checks name) are drawn as wide as the globals: in proportion, 96 px
    locals beside 32 px globals would be 3 x ``tile`` wide and run off the page.

    ``scale_side``: the output side drawn ``tile`` px wide (default this sample's globals).
    Pipelines shown side by side pass their largest global side (:func:`common_side`), so
    that 96 px globals beside 224 px ones are drawn 96 / 224 as wide."""
    views = view_images(sample, mean, std)
    g_side = scale_side or max((v.shape[-1] for v in sample.global_crops), default=1)
    groups = []
    for group, label in (("global", "Global crops"), ("local", "Local crops")):
        items = [(img, cap) for img, cap, rec in views if (rec.group if rec else "global") == group]
        side = items[0][0].size[0] if items else 0
        width = min(tile, max(48, round(tile * side / g_side))) + 2 * margin if items else 0
        images = [with_margin(img, margin) for img, _ in items]
        groups.append(ViewGroup(label, images, [cap for _, cap in items], side, width))
    return groups


def item_name(description: str) -> str:
    """An image's name for a picker: a path's folder and file name (``cats/001.jpg``: the
    folder is often the class), anything else as it is (``generated #12 (class 'disk')``)."""
    path = PurePath(description)
    if len(path.parts) < 2:
        return description
    return "/".join(path.parts[-2:])


def common_side(samples: Sequence[MultiCropSample]) -> int:
    """The largest global view side (px) of samples drawn side by side (their common scale)."""
    return max((v.shape[-1] for s in samples for v in s.global_crops), default=1)


def grid(
    tiles: Sequence[tuple[Image.Image, str]],
    columns: int,
    tile_side: int,
    title: str = "",
    background: str = "white",
) -> Image.Image:
    """Tiles (enlarged / shrunk to ``tile_side``) in rows of ``columns``, a caption under each."""
    caption_font, title_font = font(11), font(15, bold=True)
    caption_h = 44
    title_h = 26 if title else 0
    rows = max(1, math.ceil(len(tiles) / columns))
    pad = 8
    width = columns * (tile_side + pad) + pad
    height = title_h + rows * (tile_side + caption_h + pad) + pad
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, 4), title, fill="black", font=title_font)
    for i, (tile, caption) in enumerate(tiles):
        x = pad + (i % columns) * (tile_side + pad)
        y = title_h + pad + (i // columns) * (tile_side + caption_h + pad)
        canvas.paste(fit(tile, tile_side), (x, y))
        for j, line in enumerate(wrap(caption, tile_side, caption_font, max_lines=3)):
            draw.text((x, y + tile_side + 2 + 13 * j), line, fill="black", font=caption_font)
    return canvas


def wrap(text: str, width: int, text_font: ImageFont.ImageFont, max_lines: int = 3) -> list[str]:
    """Split a `` · ``-separated caption into lines that fit ``width`` pixels."""
    lines: list[str] = []
    for part in text.split("\n"):
        current = ""
        for token in part.split(" · "):
            candidate = f"{current} · {token}" if current else token
            if current and text_font.getlength(candidate) > width:
                lines.append(current)
                current = token
            else:
                current = candidate
        lines.append(current)
    lines = [_shorten(line, width, text_font) for line in lines]
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [
            _shorten(" ".join(lines[max_lines - 1 :]) + " …", width, text_font)
        ]
    return lines


def _shorten(text: str, width: int, text_font: ImageFont.ImageFont) -> str:
    """``text`` cut with an ellipsis so it fits in ``width`` pixels."""
    if text_font.getlength(text) <= width:
        return text
    while text and text_font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def inspector_figure(
    image: Image.Image,
    sample: MultiCropSample,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    title: str = "",
) -> Image.Image:
    """One picture for download: source with boxes on the left, global and local views right."""
    views = view_images(sample, mean, std)
    globals_ = [(img, cap) for img, cap, rec in views if rec is None or rec.group == "global"]
    locals_ = [(img, cap) for img, cap, rec in views if rec is not None and rec.group == "local"]
    left = draw_crop_boxes(image, sample.records, longer_side=420)
    panels = [grid(globals_, max(1, min(4, len(globals_))), 180, "Global crops")]
    if locals_:
        panels.append(grid(locals_, min(5, len(locals_)), 110, "Local crops"))
    right_w = max(p.size[0] for p in panels)
    right_h = sum(p.size[1] for p in panels)
    title_h = 30 if title else 0
    canvas = Image.new(
        "RGB", (left.size[0] + right_w + 24, max(left.size[1] + 8, right_h) + title_h), "white"
    )
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((8, 6), title, fill="black", font=font(17, bold=True))
    canvas.paste(left, (8, title_h + 8))
    y = title_h
    for panel in panels:
        canvas.paste(panel, (left.size[0] + 16, y))
        y += panel.size[1]
    return canvas


def comparison_figure(
    panels: Sequence[
        tuple[str, Image.Image, MultiCropSample, Sequence[float] | None, Sequence[float] | None]
    ],
    subtitle: str,
) -> Image.Image:
    """One :func:`inspector_figure` per ``(title, image, sample, mean, std)``, side by side,
    each titled ``"{title} · {subtitle}"`` (the inspector's download)."""
    return side_by_side(
        [
            inspector_figure(image, sample, mean, std, title=f"{title} · {subtitle}")
            for title, image, sample, mean, std in panels
        ]
    )


def side_by_side(panels: Sequence[Image.Image], gap: int = 16) -> Image.Image:
    """Pictures placed left to right on a white canvas (two configs, same image)."""
    width = sum(p.size[0] for p in panels) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, max(p.size[1] for p in panels)), "white")
    x = 0
    for panel in panels:
        canvas.paste(panel, (x, 0))
        x += panel.size[0] + gap
    return canvas


def png_bytes(picture: Image.Image | Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a PIL image or a matplotlib figure."""
    buffer = io.BytesIO()
    if isinstance(picture, Figure):
        picture.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    else:
        picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
