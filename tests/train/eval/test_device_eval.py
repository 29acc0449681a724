"""The k-NN evaluation with its centre crops made on the device (run here on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from dinodiag.augment.presets import get_preset
from dinodiag.data import open_dataset
from dinodiag.recipe.config import DataConfig
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.decoded_batches import to_uint8_chw
from dinodiag.train.eval import evaluator as cpu_evaluator
from dinodiag.train.eval.device_eval import DeviceKnnEvaluator, center_crops, on_device
from dinodiag.train.eval.evaluator import build_evaluator
from dinodiag.train.eval.knn import eval_transform
from dinodiag.train.models.network import build_backbone

CPU = torch.device("cpu")


def _photo(width: int, height: int, seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x * y) % 97 * 2.6], axis=-1)
    noisy = base + rng.normal(0, 8, base.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


@pytest.mark.parametrize("size", [(120, 90), (64, 200), (40, 40)])
def test_center_crops_match_the_cpu_eval_transform(size):
    image = _photo(*size, seed=1)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    reference = eval_transform(32, mean, std)(image)  # (3, 32, 32) normalised
    crop = center_crops([to_uint8_chw(image)], 32)[0]
    ours = (crop.float() / 255 - 0.5) / 0.25
    levels = ((ours - reference) * 0.25 * 255).abs()  # in grey levels
    assert crop.shape == (3, 32, 32) and crop.dtype == torch.uint8
    assert float(levels.max()) <= 1.0 + 1e-4 and float(levels.mean()) < 0.05


def test_images_of_several_sizes_are_cropped_in_one_call():
    images = [to_uint8_chw(_photo(w, h, s)) for s, (w, h) in enumerate([(50, 40), (40, 50)] * 2)]
    crops = center_crops(images, 16)
    assert crops.shape == (4, 3, 16, 16)
    assert torch.equal(crops[0], center_crops([images[0]], 16)[0])
    assert torch.equal(crops[3], center_crops([images[3]], 16)[0])


@pytest.fixture(scope="module")
def evaluators():
    config = get_train_preset("tiny-test").config
    data = DataConfig(
        data="generated:n=48,val_n=24,size=24,classes=3", knn_train_max=48, knn_test_max=24
    )
    pipeline = get_preset("small-images").config.replace(global_crops_size=16, patch_size=4)
    train = open_dataset(data.data, split="train")
    options = dict(seed=0, device=CPU, autocast_dtype=None, workers=0)
    held, _ = build_evaluator(train, data, pipeline, **options)
    limit = cpu_evaluator.CACHE_LIMIT_BYTES
    cpu_evaluator.CACHE_LIMIT_BYTES = 0  # sets too large to hold: loaded lazily
    try:
        lazy, _ = build_evaluator(train, data, pipeline, **options)
    finally:
        cpu_evaluator.CACHE_LIMIT_BYTES = limit
    torch.manual_seed(0)
    backbone = build_backbone(config.model, 16)
    return held, lazy, pipeline, backbone


def test_held_sets_move_to_the_device_once_and_give_the_cpu_result(evaluators):
    held, _, pipeline, backbone = evaluators
    assert all(isinstance(s, TensorDataset) for s in held.sets)
    device = on_device(held, pipeline)
    assert isinstance(device, DeviceKnnEvaluator) and device.sizes == held.sizes
    expected = held.evaluate(backbone)
    got = device.evaluate(backbone)
    assert got["knn_top1"] == expected["knn_top1"] and got["knn_top5"] == expected["knn_top5"]
    assert len(device.held) == 2


def test_lazy_sets_are_cropped_on_the_device_then_held(evaluators):
    _, lazy, pipeline, backbone = evaluators
    assert not any(isinstance(s, TensorDataset) for s in lazy.sets)
    expected = lazy.evaluate(backbone)
    device = on_device(lazy, pipeline)
    first = device.evaluate(backbone)
    assert len(device.held) == 2  # kept after the first whole pass
    second = device.evaluate(backbone)
    assert first["knn_top1"] == second["knn_top1"]
    # Within a grey level of the CPU crops: the same neighbours for nearly every test image.
    assert abs(first["knn_top1"] - expected["knn_top1"]) <= 100 * 2 / 24
    assert first["knn_bank"] == 48 and first["knn_test"] == 24


def test_sets_beyond_the_cache_are_streamed_every_time(evaluators):
    _, lazy, pipeline, backbone = evaluators
    device = DeviceKnnEvaluator(lazy, pipeline, cache_bytes=0)
    a = device.evaluate(backbone)
    b = device.evaluate(backbone)
    assert device.held == {} and a["knn_top1"] == b["knn_top1"]
