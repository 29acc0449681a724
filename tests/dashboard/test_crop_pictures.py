"""dinodiag.dashboard.crop_pictures: de-normalisation, crop boxes, captions, grids, PNG bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import dinodiag
from dinodiag.augment.records import ViewRecord
from dinodiag.dashboard import crop_pictures


def flat_image(
    colour: tuple[int, int, int] = (30, 120, 200), size: tuple[int, int] = (160, 120)
) -> Image.Image:
    return Image.new("RGB", size, colour)


def test_to_display_image_undoes_the_pipeline_normalisation():
    cfg = dinodiag.load_config("dinov2")
    sample = dinodiag.build_pipeline(
        cfg.replace(global1={"jitter_p": 0.0, "grayscale_p": 0.0, "blur_p": 0.0, "flip_p": 0.0})
    )(flat_image(), seed=0)
    shown = np.asarray(crop_pictures.to_display_image(sample.global_crops[0], cfg.mean, cfg.std))
    assert shown.shape == (224, 224, 3)
    assert np.abs(shown.astype(int) - np.array([30, 120, 200])).max() <= 1


@pytest.mark.parametrize(
    ("tensor", "expected"),
    [
        (torch.full((3, 4, 4), 0.5), 128),  # [0, 1] shown as is
        (torch.full((3, 4, 4), 200.0), 200),  # [0, 255] divided by 255
        (torch.full((1, 4, 4), -0.5), 94),  # normalised: ImageNet red (-0.5 * 0.229 + 0.485) * 255
    ],
)
def test_to_display_image_guesses_the_range_without_mean_std(tensor, expected):
    shown = np.asarray(crop_pictures.to_display_image(tensor, None, None))
    assert shown.shape == (4, 4, 3)
    assert abs(int(shown[0, 0, 0]) - expected) <= 1


def record(
    group: str, index: int, box: tuple[float, float, float, float], **kw: object
) -> ViewRecord:
    return ViewRecord(
        group=group,
        index=index,
        source_size=(200, 100),
        box=box,
        scale=box[2] * box[3] / 20000,
        ratio=box[2] / box[3],
        **kw,
    )


def test_draw_crop_boxes_colours_globals_and_locals_differently():
    image = Image.new("RGB", (200, 100), "white")
    records = [record("global", 0, (0, 0, 100, 100)), record("local", 0, (150, 50, 40, 40))]
    drawn = crop_pictures.draw_crop_boxes(image, records, longer_side=400)
    assert drawn.size == (400, 200)
    pixels = np.asarray(drawn)

    def has(colour: str) -> bool:
        rgb = np.array(Image.new("RGB", (1, 1), colour).getpixel((0, 0)))
        return bool((np.abs(pixels.astype(int) - rgb).sum(axis=-1) == 0).any())

    assert has(crop_pictures.GLOBAL_COLOURS[0]) and has(crop_pictures.LOCAL_COLOUR)
    assert crop_pictures.box_colour(records[0]) != crop_pictures.box_colour(records[1])
    # the global box's left edge is drawn at x=0 (scaled x2), the image centre stays white
    assert tuple(pixels[100, 0]) != (255, 255, 255)
    assert tuple(pixels[100, 250]) == (255, 255, 255)


def test_view_caption_names_view_and_every_sampled_parameter():
    rec = record(
        "local",
        2,
        (0, 0, 50, 40),
        flip=True,
        jitter=True,
        grayscale=False,
        blur=True,
        blur_sigma=1.234,
        solarize=True,
        fallback=True,
    )
    caption = crop_pictures.view_caption(rec)
    assert caption.startswith("L3 · scale 0.10 · ratio 1.25")
    for word in ("FALLBACK", "flip", "jitter", "blur σ1.2", "solarize"):
        assert word in caption
    assert "gray" not in caption
    plain = record(
        "global",
        1,
        (0, 0, 100, 100),
        flip=False,
        jitter=False,
        grayscale=False,
        blur=False,
        solarize=False,
        fallback=False,
    )
    assert crop_pictures.view_caption(plain) == "G2 · scale 0.50 · ratio 1.00 · no photometric op"
    assert (
        crop_pictures.view_caption(record("global", 0, (0, 0, 10, 10)))
        == "G1 · scale 0.01 · ratio 1.00"
    )


def test_records_table_has_one_row_per_view():
    sample = dinodiag.build_pipeline(dinodiag.load_config("lightly"))(flat_image(), seed=3)
    rows = crop_pictures.records_table(sample.records)
    assert [r["view"] for r in rows] == ["G1", "G2", *[f"L{i}" for i in range(1, 7)]]
    assert all(0 < r["scale"] <= 1 for r in rows)


def test_inspector_figure_and_png_bytes():
    cfg = dinodiag.load_config("seed-fixed")
    image = flat_image(size=(300, 200))
    sample = dinodiag.build_pipeline(cfg)(image, seed=1)
    figure = crop_pictures.inspector_figure(image, sample, cfg.mean, cfg.std, title="seed-fixed")
    png = crop_pictures.png_bytes(figure)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size == figure.size
    wide = crop_pictures.side_by_side([figure, figure], gap=10)
    assert wide.size == (2 * figure.size[0] + 10, figure.size[1])


def test_fit_enlarges_tiny_images_without_smearing():
    tiny = Image.fromarray(np.array([[[0, 0, 0], [255, 255, 255]]], dtype=np.uint8))
    big = np.asarray(crop_pictures.fit(tiny, 8))
    assert big.shape == (4, 8, 3)
    assert set(np.unique(big)) == {0, 255}  # nearest neighbour: only the two original values


def test_wrap_keeps_captions_inside_the_tile():
    font = crop_pictures.font(11)
    lines = crop_pictures.wrap(
        "L1 · scale 0.30 · ratio 1.03 · jitter · gray · blur σ1.2 · solarize", 100, font
    )
    assert 2 <= len(lines) <= 3
    assert all(font.getlength(line) <= 100 for line in lines)
