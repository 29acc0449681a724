"""The RandomResizedCrop recorder: what it records, when, and how records meet the views."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from dinodiag.augment.pipeline import fallback_crop_box
from dinodiag.probe.recorder import record_random_resized_crops, view_records


def test_recording_is_scoped(image: Image.Image) -> None:
    crop = T.RandomResizedCrop(8)
    with record_random_resized_crops() as records:
        crop(image)
    crop(image)  # outside: not recorded, and the class is restored
    assert len(records) == 1
    assert (
        T.RandomResizedCrop.forward.__name__ == "forward"
        and "get_params" in T.RandomResizedCrop.__dict__
    )


@pytest.mark.parametrize("width, height", [(3000, 10), (10, 3000), (500, 375)])
def test_v1_fallback_is_flagged_for_wide_tall_and_in_range_sources(width: int, height: int) -> None:
    source = Image.new("RGB", (width, height))
    # No box 2-3x the area fits: torchvision centre-crops; a small area always fits.
    fallback, fitting = T.RandomResizedCrop(8, scale=(2.0, 3.0)), T.RandomResizedCrop(8, (0.1, 0.2))
    with record_random_resized_crops() as records:
        fallback(source)
        fitting(Image.new("RGB", (500, 375)))
    assert [r["fallback"] for r in records] == [True, False]
    assert records[0]["box"] == tuple(
        float(v) for v in fallback_crop_box(width, height, (3 / 4, 4 / 3))
    )


def test_records_meet_their_views_by_position_or_by_configured_size() -> None:
    globals_, locals_ = [torch.zeros(3, 16, 16)] * 2, [torch.zeros(3, 8, 8)]
    with record_random_resized_crops() as crops:
        for size in (8, 16, 16):  # a local crop drawn first
            T.RandomResizedCrop(size)(Image.new("RGB", (40, 30)))
    # As many crops as views: the n-th crop made the n-th view, whatever its size.
    assert [r.group for r in view_records(crops, globals_, locals_, (40, 30))] == [
        "global",
        "global",
        "local",
    ]
    # Fewer crops than views: the configured size tells a global crop from a local one.
    records = view_records(crops, globals_, [*locals_, *locals_], (40, 30))
    assert [(r.group, r.index) for r in records] == [("local", 0), ("global", 0), ("global", 1)]
    assert records[0].out_size == (8, 8) and records[0].recorded_by == "RandomResizedCrop(v1)"
    resized = view_records(crops, globals_, locals_, (80, 60))  # the pipeline resized first
    assert all(r.recorded_by.endswith("(on a resized input)") for r in resized)
