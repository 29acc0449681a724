"""The on-device crop-then-resize against torch's antialiased uint8 resize of the cropped box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dinodiag.augment.gpu.resize import check_filter, crop_resize, resize_weights
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions


def _source(height: int, width: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.normal(0, 6, (3, height, width)), axis=2) + 128
    return torch.from_numpy(np.clip(smooth, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
@pytest.mark.parametrize(
    "box,size",
    [((10, 5, 120, 90), 48), ((0, 0, 200, 150), 200), ((33, 7, 20, 30), 48), ((3, 0, 60, 150), 24)],
)
def test_each_view_is_the_cpu_paths_resize_of_its_box(mode, box, size):
    image = _source(150, 200, seed=1)
    left, top, w, h = box
    crop = image[None, :, top : top + h, left : left + w]
    expected = crop
    if h > size and h - size > 2 * (w - size):  # the CPU pipeline's pass order
        expected = F.interpolate(expected, size=(size, w), mode=mode, antialias=True)
    expected = F.interpolate(expected, size=(size, size), mode=mode, antialias=True)
    got = crop_resize(image[None].float(), torch.tensor([box], dtype=torch.float64), size, mode)
    diff = (got[0] - expected[0].float()).abs()
    assert float(diff.max()) <= 1.0 and float((diff > 0).float().mean()) < 0.01


def test_weights_stay_inside_the_box_and_sum_to_one():
    start = torch.tensor([4.0, 0.0], dtype=torch.float64)
    length = torch.tensor([10.0, 30.0], dtype=torch.float64)
    weights = resize_weights(start, length, 40, 5, "bicubic")  # (2, 5, 40)
    assert weights.shape == (2, 5, 40)
    assert torch.allclose(weights.sum(dim=2), torch.ones(2, 5))
    assert (weights[0, :, :4] == 0).all() and (weights[0, :, 14:] == 0).all()
    assert (weights[1, :, 30:] == 0).all()
    same = resize_weights(start, torch.tensor([5.0, 5.0], dtype=torch.float64), 40, 5, "bicubic")
    assert torch.equal(same[0, :, 4:9], torch.eye(5))  # scale 1: the identity


def test_an_unknown_filter_names_the_field():
    assert check_filter("bilinear") == "bilinear"
    with pytest.raises(ConfigError) as info:
        check_filter("lanczos")
    assert str(info.value).startswith("interpolation = 'lanczos' ")
    # the filters it offers, and the CPU pipeline that has the rest
    assert_mentions(str(info.value), "bilinear", "--augment-device cpu")
