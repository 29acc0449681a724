"""dinodiag.stats.frames: one row per view, the derived measures, the sampling run."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.stats.frames import COLUMNS, RowFrames, sample_rows, sample_views

SMALL = PRESETS["small-images"].config


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


def test_own_pipeline_rows_carry_their_operations(small_dataset) -> None:
    import torchvision.transforms as T

    from dinodiag.probe.pipeline import OwnPipeline

    view = T.Compose(
        [
            T.RandomResizedCrop(32),
            T.RandomSolarize(128, p=1.0),
            T.ToTensor(),
            T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
        ]
    )
    frame = sample_views(OwnPipeline(lambda im: [view(im), view(im)], "mine"), small_dataset, 6)
    assert list(frame.columns) == COLUMNS
    assert frame.solarize.all() and (frame.solarize_threshold == 128).all()
    assert set(frame.norm_mean) == {"0.5,0.5,0.5"} and set(frame.norm_std) == {"0.25,0.25,0.25"}
    assert not frame.blur.any() and not frame.jitter.any() and (frame.unknown_steps == 0).all()


def test_rows_gathered_in_chunks_make_the_same_frame(small_dataset, monkeypatch) -> None:
    whole = sample_views(build_pipeline(SMALL), small_dataset, 12, seed=3)
    monkeypatch.setattr(RowFrames, "CHUNK", 25)  # 12 samples x 8 views: 3 chunks and a rest
    chunked = sample_views(build_pipeline(SMALL), small_dataset, 12, seed=3)
    assert len(chunked) == len(whole) == 12 * SMALL.num_views
    pd.testing.assert_frame_equal(chunked, whole)
    rows = RowFrames()
    assert len(rows) == 0 and rows.frame().empty


def test_rows_hold_the_record_fields_without_their_operations(small_dataset) -> None:
    """sample_rows reads the record's fields as they are (no deep copy of the operations):
    the same row as the record's own to_dict gives, less what the row leaves out."""
    import torchvision.transforms as T

    from dinodiag.probe.pipeline import OwnPipeline

    view = T.Compose([T.RandomResizedCrop(32), T.ColorJitter(0.4, 0.4), T.ToTensor()])
    pipeline = OwnPipeline(lambda im: [view(im), view(im)], "mine")
    sample = pipeline(small_dataset[0][0], seed=4)
    rows = sample_rows(sample, 0, 0, "image.png")
    for row, record in zip(rows, sample.records, strict=True):
        whole = record.to_dict()
        assert whole["operations"] and "operations" not in row  # the records keep the detail
        kept = set(whole) - {"box", "source_size", "out_size", "configured_scale", "mean", "std"}
        kept -= {"configured_ratio", "configured_size", "operations", "jitter_order"}
        assert {key: row[key] for key in kept} == {key: whole[key] for key in kept}
        assert row["jitter_order"] == ",".join(whole["jitter_order"] or ()) or None
