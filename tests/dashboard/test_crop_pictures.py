"""dinodiag.dashboard.crop_pictures: de-normalisation, crop boxes, view groups, grids, PNG."""

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


def test_view_groups_show_locals_at_their_size_relative_to_globals():
    cfg = dinodiag.load_config("dinov2")  # 224 px globals, 96 px locals
    sample = dinodiag.build_pipeline(cfg)(flat_image(), seed=0)
    globals_, locals_ = crop_pictures.view_groups(sample, cfg.mean, cfg.std, tile=200)
    assert (globals_.label, globals_.side, len(globals_.images)) == ("Global crops", 224, 2)
    assert (locals_.label, locals_.side, len(locals_.images)) == ("Local crops", 96, 8)
    assert globals_.width == 200 + 8 and locals_.width == round(200 * 96 / 224) + 8
    assert globals_.images[0].size == (224 + 8, 224 + 8)  # a 4 px margin on every side
    assert [c.split(" · ")[0] for c in locals_.captions] == [f"L{i}" for i in range(1, 9)]
    broken = dinodiag.load_config("seed-broken")
    sample = dinodiag.build_pipeline(broken)(flat_image(), seed=0)
    no_locals = crop_pictures.view_groups(sample, broken.mean, broken.std, tile=20)[1]
    assert (no_locals.images, no_locals.side, no_locals.width) == ([], 0, 0)
    tiny = crop_pictures.view_groups(
        dinodiag.build_pipeline(cfg)(flat_image(), seed=0), cfg.mean, cfg.std, tile=50
    )[1]
    assert tiny.width == 48 + 8  # never narrower than 48 px


def test_view_groups_never_draw_locals_wider_than_the_globals():
    # the README's own-code example: 32 px globals, 96 px locals. In proportion the locals
    # were 3 x 200 px wide, wider than the inspector's column: cut off at the page's edge.
    cfg = dinodiag.load_config("dinov2").replace(
        global_crops_size=32, local_crops_size=96, local_crops_number=4
    )
    sample = dinodiag.build_pipeline(cfg)(flat_image(), seed=0)
    globals_, locals_ = crop_pictures.view_groups(sample, cfg.mean, cfg.std, tile=200)
    assert (globals_.side, locals_.side) == (32, 96)
    assert locals_.width == globals_.width == 200 + 8


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
    both = crop_pictures.comparison_figure(
        [("a", image, sample, cfg.mean, cfg.std), ("b", image, sample, cfg.mean, cfg.std)],
        "seed 1",
    )
    assert both.size == (2 * figure.size[0] + 16, figure.size[1])


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


def test_own_views_are_shown_with_the_normalisation_they_recorded():
    import torchvision.transforms as T

    from dinodiag.probe.pipeline import OwnPipeline

    half = T.Compose([T.CenterCrop(8), T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
    sample = OwnPipeline(lambda im: [half(im)], "mine")(flat_image((30, 120, 200)))
    shown, _, rec = crop_pictures.view_images(sample, None, None)[0]
    assert rec.mean == (0.5, 0.5, 0.5)
    assert np.abs(np.asarray(shown).astype(int) - np.array([30, 120, 200])).max() <= 1


def test_usable_index_names_the_image_a_dataset_really_returns(tmp_path):
    from dinodiag.data import open_dataset

    (tmp_path / "a_bad.jpg").write_bytes(b"\xff\xd8 broken")
    flat_image(size=(20, 10)).save(tmp_path / "b_good.png")
    (tmp_path / "c_bad.png").write_bytes(b"\x89PNG broken")
    dataset = open_dataset(str(tmp_path), split="all")
    names = [dataset.describe(i).rsplit("/", 1)[-1] for i in range(len(dataset))]
    assert names == ["a_bad.jpg", "b_good.png", "c_bad.png"]
    assert [crop_pictures.usable_index(dataset, i) for i in range(3)] == [1, 1, 1]
    assert dataset[2][0].size == (20, 10)  # what the dataset really returns for item 2
