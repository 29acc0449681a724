"""dinodiag.dashboard.stats_charts: histograms of sampled measures and the image-size scatter."""

from __future__ import annotations

import pandas as pd
import pytest
from PIL import Image

import dinodiag
from dinodiag.dashboard import crop_pictures, stats_charts
from dinodiag.dashboard.stats_charts import RATE_OPERATIONS
from dinodiag.stats import sample_views


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


def test_stats_figure_shades_configured_and_outlines_reference():
    dinov2, broken = dinodiag.load_config("dinov2"), dinodiag.load_config("seed-broken")
    fig = stats_charts.stats_figure(
        {"seed-broken": frame("seed-broken"), "dinov2": frame("dinov2")},
        {
            "seed-broken": stats_charts.config_ranges(broken),
            "dinov2": stats_charts.config_ranges(dinov2),
        },
        stats_charts.config_ranges(dinov2),
    )
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [panel[2] for panel in stats_charts.STAT_PANELS]
    global_ax = axes[0]
    shaded = [p for p in global_ax.patches if p.get_alpha() == 0.12]  # axvspan of each config
    assert len(shaded) >= 2  # one configured range per config
    dashed = [ln for ln in global_ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert sorted(line.get_xdata()[0] for line in dashed) == [0.32, 1.0]  # the reference range
    legend_texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"seed-broken", "dinov2", "reference range"} <= set(legend_texts)
    assert crop_pictures.png_bytes(fig)[:4] == b"\x89PNG"


def test_stats_figure_copes_with_missing_groups():
    fig = stats_charts.stats_figure({"seed-broken": frame("seed-broken", 4)})
    local_ax = fig.axes[1]
    assert any(t.get_text() == "no data" for t in local_ax.texts)


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


def test_rates_figure_draws_measured_bars_and_expected_ticks():
    from dinodiag.stats import rates

    released = dinodiag.load_config("dinov2-released")
    frame = sample_views(dinodiag.build_pipeline(released), Images(), 20, seed=0)
    table = rates(frame, released, dinodiag.load_config("dinov2"))
    fig = stats_charts.rates_figure({"released": table})
    panels = fig.axes[:3]
    assert [ax.get_title() for ax in panels] == ["Global view 1", "Global view 2", "Local views"]
    bars = [patch for patch in panels[0].patches if patch.get_width() < 0.8 and patch.get_height()]
    blur_bar = panels[0].containers[RATE_OPERATIONS.index("blur")][0]
    assert blur_bar.get_height() == 0.0 and blur_bar.get_edgecolor()[:3] == (
        pytest.approx(0xE8 / 255),
        pytest.approx(0x11 / 255),
        pytest.approx(0x2D / 255),
    )  # never blurred where dinov2 always blurs: outlined as far off
    assert bars  # the expected-rate bands are drawn as patches too
    ticks = [line.get_ydata()[0] for line in panels[0].lines]
    assert 1.0 in ticks and 0.0 in ticks  # blur expected always, solarize never on global 1


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


def test_a_brought_pipelines_recorded_ranges_are_shaded():
    import torchvision.transforms as T

    from dinodiag.probe.pipeline import ForeignPipeline

    view = T.Compose([T.RandomResizedCrop(64, scale=(0.2, 1.0)), T.ToTensor()])
    brought = ForeignPipeline(lambda image: [view(image), view(image)])
    views = sample_views(brought, Images(), 6)
    ranges = stats_charts.recorded_ranges(views)
    assert ranges == {"global": (0.2, 1.0)}
    fig = stats_charts.stats_figure({"mine": views}, {"mine": ranges}, {"global": (0.32, 1.0)})
    shaded = [p for p in fig.axes[0].patches if p.get_alpha() == 0.12]
    assert len(shaded) == 1 and shaded[0].get_x() == pytest.approx(0.2)


def test_legend_swatches_have_their_series_colours_and_histograms_a_percent_axis():
    dinov2, broken = dinodiag.load_config("dinov2"), dinodiag.load_config("seed-broken")
    fig = stats_charts.stats_figure(
        {"dinov2": frame("dinov2"), "seed-broken": frame("seed-broken")},
        {
            "dinov2": stats_charts.config_ranges(dinov2),
            "seed-broken": stats_charts.config_ranges(broken),
        },
        stats_charts.config_ranges(dinov2),
    )
    legend = fig.legends[0]
    swatches = {
        text.get_text(): handle.get_facecolor()[:3]
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
        if "configured range" in text.get_text()
    }
    from matplotlib.colors import to_rgb

    assert swatches == {
        "dinov2: configured range (shaded)": pytest.approx(to_rgb(stats_charts.SERIES_COLOURS[0])),
        "seed-broken: configured range (shaded)": pytest.approx(
            to_rgb(stats_charts.SERIES_COLOURS[1])
        ),
    }
    ax = fig.axes[0]
    ax.figure.canvas.draw()
    assert ax.get_ylabel() == "share of crops"
    assert all(t.get_text().endswith("%") for t in ax.get_yticklabels() if t.get_text())
    heights = [p.get_height() for p in ax.patches if p.get_alpha() in (0.55,)]
    assert sum(heights) == pytest.approx(200.0)  # each series' bars add up to 100 %


def test_the_share_outside_the_reference_range_is_said():
    broken = frame("seed-broken", 40)
    dinov2 = stats_charts.config_ranges(dinodiag.load_config("dinov2"))
    lines = stats_charts.outside_lines(
        {"seed-broken": broken, "dinov2": frame("dinov2", 40)}, dinov2, "dinov2"
    )
    globals_ = broken[broken["group"] == "global"]
    slack = stats_charts.rounding_slack(globals_, "scale")  # whole-pixel boxes: a crop at
    expected = (globals_["scale"] < 0.32 - slack - 1e-9).mean()  # 0.3199 was drawn inside
    assert expected > 0
    assert lines[0] == (
        f"**seed-broken**: {expected:.0%} below 0.32 (global crops, scale; dinov2's range 0.32–1)"
    )
    assert lines[1].startswith("**dinov2**: all inside (global crops, scale")
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
    lines = stats_charts.outside_lines({"seed-broken": broken}, dinov2, "dinov2")
    ratio_line = next(line for line in lines if "aspect ratio" in line)
    assert ratio_line.startswith("**seed-broken**: all inside (crops, aspect ratio")
    # a real excursion (a box 10% wider than the range allows) is still counted
    wide = broken.assign(ratio=broken["ratio"] * 1.1)
    wide_line = next(
        line
        for line in stats_charts.outside_lines({"wide": wide}, dinov2, "dinov2")
        if "aspect ratio" in line
    )
    assert "above 1.33" in wide_line


def test_log_axes_keep_the_tick_at_1_when_thinned():
    # the upsampling panel (about 0.12x-2x) lost its "1" (no upsampling: where the grey line
    # is) and kept the aspect ratio's 0.75 and 1.33 instead
    ticks = stats_charts._log_ticks(0.12, 2.0)
    assert 1.0 in ticks and len(ticks) <= 6
    assert stats_charts._log_ticks(0.75, 1.3333) == [0.75, 1.0, 1.33]  # unthinned as before
