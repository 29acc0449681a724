"""Sampled statistics: rows, derived measures, summaries against the config."""

from __future__ import annotations

import math

import pytest

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.stats import COLUMNS, coverage, iou, rates, sample_views, summarize

SMALL = PRESETS["small-images"].config


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


def test_sample_views_rows_and_measures(small_dataset) -> None:
    progress = []
    frame = sample_views(
        build_pipeline(SMALL), small_dataset, 10, seed=1, progress=lambda d, t: progress.append(d)
    )
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 10 * SMALL.num_views and progress[-1] == 10
    globals_ = frame[frame.group == "global"]
    locals_ = frame[frame.group == "local"]
    assert globals_.scale.between(0.31, 1.0).all() and locals_.scale.between(0.04, 0.33).all()
    assert set(frame.kind) == {"global1", "global2", "local"}
    # Upsampling is output side over crop side.
    row = frame.iloc[0]
    assert row.upsampling == pytest.approx(math.sqrt(row.out_h / row.box_h * row.out_w / row.box_w))
    assert globals_.global_iou.between(0, 1).all() and locals_.global_iou.isna().all()
    assert (
        locals_.local_coverage.between(0, 1 + 1e-9).all() and globals_.local_coverage.isna().all()
    )
    # The same seed gives the same draws; sample i uses the same image for any config.
    again = sample_views(build_pipeline(SMALL), small_dataset, 10, seed=1)
    assert again.scale.tolist() == frame.scale.tolist()
    other = sample_views(build_pipeline(PRESETS["seed-broken"].config), small_dataset, 10, seed=1)
    assert (
        other.groupby("sample").image_index.first().tolist()
        == frame.groupby("sample").image_index.first().tolist()
    )


def test_summary_and_rates_against_config(small_dataset) -> None:
    cfg = PRESETS["dinov2"].config.replace(global_crops_size=32, local_crops_size=16)
    frame = sample_views(build_pipeline(cfg), small_dataset, 60, seed=0)
    summary = summarize(frame, cfg)
    scale = summary[(summary.group == "global") & (summary.measure == "scale")].iloc[0]
    assert (
        scale.configured == "0.32-1"
        and scale.n == 120
        and 0.31 <= scale["min"] <= scale["median"] <= scale["max"] <= 1
    )
    assert set(summary.measure) == {"scale", "ratio", "upsampling", "global_iou", "local_coverage"}
    table = rates(frame, cfg)
    blur = table[(table.operation == "blur")].set_index("kind")
    assert blur.loc["global1", "measured"] == 1.0 and blur.loc["global1", "configured"] == 1.0
    assert blur.loc["global2", "configured"] == 0.1 and blur.loc["local", "configured"] == 0.5
    assert abs(blur.loc["local", "measured"] - 0.5) < 0.1
    solarize = table[(table.operation == "solarize")].set_index("kind")
    assert solarize.loc["global1", "measured"] == 0.0


def test_bad_arguments(small_dataset) -> None:
    with pytest.raises(ValueError, match="n_samples = 0"):
        sample_views(build_pipeline(SMALL), small_dataset, 0)


def test_records_only_sampling_draws_what_the_full_pipeline_draws(small_dataset) -> None:
    from dinodiag.augment.records import MultiCropSample

    cfg = PRESETS["dinov2"].config
    rendered = build_pipeline(cfg)
    records_only = build_pipeline(cfg, render=False)
    image, _ = small_dataset[0]
    full, fast = rendered(image, seed=4), records_only(image, seed=4)
    assert isinstance(fast, MultiCropSample) and fast.views == []
    assert [r.to_dict() for r in fast.records] == [r.to_dict() for r in full.records]
    with pytest.raises(ValueError, match="would produce nothing"):
        build_pipeline(cfg, record=False, render=False)


def test_sample_views_is_fast_for_500_samples(small_dataset) -> None:
    """The statistics path skips pixels: 500 DINOv2 samples are a records-only loop."""
    frame = sample_views(build_pipeline(PRESETS["dinov2"].config), small_dataset, 500, seed=0)
    assert len(frame) == 500 * 10
    assert frame.scale.notna().all()
