"""dinodiag.dashboard.stats_charts: configured and reference ranges, the crops outside the
reference's range (one computation for the charts and the text), the image-size scatter."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

import dinodiag
from dinodiag.dashboard import stats_charts
from dinodiag.stats import sample_views
from tests.facts import assert_mentions


class Images:
    def __init__(self) -> None:
        self.images = [Image.new("RGB", (160 + 20 * i, 120), (40 * i, 90, 160)) for i in range(3)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return self.images[index], -1


def frame(name: str, n: int = 12) -> pd.DataFrame:
    return sample_views(dinodiag.build_pipeline(dinodiag.load_config(name)), Images(), n)


def test_config_ranges():
    assert stats_charts.config_ranges(None) == {}
    ranges = stats_charts.config_ranges(dinodiag.load_config("dinov2"))
    assert ranges["global"] == (0.32, 1.0) and ranges["local"] == (0.05, 0.32)
    assert "local" not in stats_charts.config_ranges(
        dinodiag.load_config("seed-broken")
    )  # no locals


def test_image_size_figure_marks_crop_sizes():
    fig = stats_charts.image_size_figure([(500, 375), (96, 96)], 224, 96)
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().shape == (2, 2)
    assert {"global crop 224 px", "local crop 96 px"} <= {
        t.get_text() for t in ax.get_legend().get_texts()
    }


def test_crop_sides_come_from_the_config_or_the_sampled_views():
    cfg = dinodiag.load_config("dinov2")
    views = frame("seed-broken", 4)
    assert stats_charts.crop_sides(cfg, views) == (224, 96)
    assert stats_charts.crop_sides(None, views) == (96, None)  # the widest global view


def test_seed_broken_has_no_local_crop_line():  # bug 5: "local crop 32 px" was drawn
    broken = dinodiag.load_config("seed-broken")
    assert stats_charts.crop_sides(broken, frame("seed-broken", 4)) == (96, None)
    fig = stats_charts.image_size_figure(
        [(500, 375)], *stats_charts.crop_sides(broken, frame("seed-broken", 2))
    )
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "images",
        "global crop 96 px",
    ]


def test_your_own_pipelines_recorded_ranges_are_read():
    import torchvision.transforms as T

    from dinodiag.probe.pipeline import OwnPipeline

    view = T.Compose([T.RandomResizedCrop(64, scale=(0.2, 1.0)), T.ToTensor()])
    own = OwnPipeline(lambda image: [view(image), view(image)])
    views = sample_views(own, Images(), 6)
    ranges = stats_charts.recorded_ranges(views)
    assert ranges == {"global": (0.2, 1.0)}


def test_the_share_outside_the_reference_range_is_said():
    broken = frame("seed-broken", 40)
    dinov2 = stats_charts.config_ranges(dinodiag.load_config("dinov2"))
    frames = {"seed-broken": broken, "dinov2": frame("dinov2", 40)}
    lines = stats_charts.outside_lines(stats_charts.outside_shares(frames, dinov2), "dinov2")
    globals_ = broken[broken["group"] == "global"]
    slack = stats_charts.rounding_slack(globals_, "scale")  # whole-pixel boxes: a crop at
    expected = (globals_["scale"] < 0.32 - slack - 1e-9).mean()  # 0.3199 was drawn inside
    assert expected > 0
    # per pipeline: the share outside and on which side, the panel, the reference's range
    assert lines[0].startswith(f"**seed-broken**: {expected:.0%} below 0.32 ")
    assert_mentions(lines[0], "global crops, scale", "dinov2's range 0.32–1")
    assert lines[1].startswith("**dinov2**: ")
    assert_mentions(lines[1], "all inside", "global crops, scale")
    assert stats_charts.outside_share(pd.Series([0.1, 0.5, 2.0]).to_numpy(), (0.32, 1.0)) == (
        pytest.approx(1 / 3),
        pytest.approx(1 / 3),
    )


def test_pixel_rounding_alone_never_counts_as_outside_the_reference_range():
    # seed-broken draws its aspect ratio in dinov2's range (3/4, 4/3); RandomResizedCrop
    # rounds the box to whole pixels, so some boxes measure 1.334: that is not "above 1.33".
    broken = frame("seed-broken", 200)
    ratios = broken["ratio"].to_numpy(dtype=float)
    assert (ratios > 4 / 3 + 1e-9).any() or (ratios < 3 / 4 - 1e-9).any()  # rounding shows
    dinov2 = stats_charts.config_ranges(dinodiag.load_config("dinov2"))
    outside = stats_charts.outside_shares({"seed-broken": broken}, dinov2)
    lines = stats_charts.outside_lines(outside, "dinov2")
    ratio_line = next(line for line in lines if "aspect ratio" in line)
    assert ratio_line.startswith("**seed-broken**: ")
    assert_mentions(ratio_line, "all inside", "aspect ratio")
    # a real excursion (a box 10% wider than the range allows) is still counted
    wide = broken.assign(ratio=broken["ratio"] * 1.1)
    wide_line = next(
        line
        for line in stats_charts.outside_lines(
            stats_charts.outside_shares({"wide": wide}, dinov2), "dinov2"
        )
        if "aspect ratio" in line
    )
    assert "above 1.33" in wide_line


def test_a_share_under_one_percent_is_not_written_as_zero():
    ratio = stats_charts.outside_shares(
        {"p": pd.DataFrame({"group": ["global"] * 1000, "ratio": [1.0] * 997 + [2.0] * 3})},
        {"ratio": (0.75, 4 / 3)},
    )[0]
    assert (ratio.below, ratio.above, ratio.total) == (0, 3, 1000)
    assert ratio.words() == "<1% above 1.33"
    assert stats_charts.share_text(0, 10) == "0%" and stats_charts.share_text(1, 8) == "12%"
