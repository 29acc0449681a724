"""dinodiag.stats.summaries: each crop measure's spread against the configured range."""

from __future__ import annotations

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.stats.frames import sample_views
from dinodiag.stats.summaries import summarize


def test_summary_against_config(small_dataset) -> None:
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
