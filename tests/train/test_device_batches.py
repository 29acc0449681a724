"""Decode-only loading, packing, seeds and the loop's feed of the on-device backend."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dinodiag.augment.gpu.multicrop import GPUMultiCrop
from dinodiag.augment.gpu.params import records_from_params, sample_params
from dinodiag.augment.presets import get_preset
from dinodiag.cli import main
from dinodiag.data import open_dataset
from dinodiag.errors import ConfigError, DataError, TrainingError
from dinodiag.recipe.config import DataConfig
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.augment_backend import augments_on_device
from dinodiag.train.batch_feed import BatchFeed
from dinodiag.train.data import (
    SAMPLED_KEYS,
    MaskSpec,
    MultiCropCollate,
    build_train_loader,
    summarise_records,
)
from dinodiag.train.decoded_batches import DecodedCollate, DecodedDataset, pack_images
from dinodiag.train.device_augment import DeviceAugment, summarise_params
from dinodiag.train.device_batches import build_device_loader, cached_dataset
from tests.facts import assert_mentions

PIPELINE = get_preset("small-images").config.replace(
    global_crops_size=16, local_crops_size=8, local_crops_number=2
)
MASK = MaskSpec((4, 4), 0.5, (0.1, 0.5))
CPU, GPU = torch.device("cpu"), torch.device("cuda", 0)


def _image(width: int, height: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (3, height, width), dtype=np.uint8))


@pytest.fixture(scope="module")
def dataset():
    return open_dataset("generated:n=24,val_n=8,size=16,classes=3")


# --------------------------------------------------------------------------- which backend


def test_augment_device_choices():
    assert augments_on_device("auto", GPU) and not augments_on_device("auto", CPU)
    assert not augments_on_device("cpu", GPU)
    assert augments_on_device("device", CPU) and augments_on_device("DEVICE", GPU)
    assert augments_on_device("cuda", GPU) and augments_on_device("cuda:0", GPU)
    # the two devices that differ, and the choices that make them one
    with pytest.raises(TrainingError) as info:
        augments_on_device("cuda", CPU)
    assert_mentions(str(info.value), "--augment-device cuda ", "on cpu", "device", "--device cuda")
    with pytest.raises(TrainingError) as info:
        augments_on_device("cuda:1", GPU)
    assert_mentions(str(info.value), "--augment-device cuda:1 ", "on cuda:0", "--device cuda:1")


def test_config_refuses_unknown_augment_devices():
    assert DataConfig(augment_device="cuda:3").augment_device == "cuda:3"
    with pytest.raises(ConfigError) as info:
        DataConfig(augment_device="gpu")
    assert str(info.value).startswith("data.augment_device = 'gpu' ")
    assert_mentions(str(info.value), "invalid", "auto", "cpu", "device", "cuda:N")  # the choices
    with pytest.raises(ConfigError) as info:
        DataConfig(decode_cache_gb=-1)
    assert str(info.value).startswith("data.decode_cache_gb = -1 ")
    assert_mentions(str(info.value), "invalid", ">= 0")


def test_the_flags_reach_the_config_and_a_bad_value_names_its_flag(capsys):
    args = ["train", "--preset", "tiny-test", "--augment-device", "device"]
    assert main([*args, "--decode-cache-gb", "0.5", "--print-config"]) == 0
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["augment_device"] == "device" and data["decode_cache_gb"] == 0.5
    assert main(["train", "--preset", "tiny-test", "--augment-device", "gpu"]) == 2
    # the flag as typed, then the field it sets
    assert_mentions(capsys.readouterr().err, "--augment-device gpu:", "data.augment_device = 'gpu'")


# --------------------------------------------------------------------------- packing


def test_equal_sizes_are_stacked():
    images = [_image(10, 8, s) for s in range(3)]
    packed, sizes = pack_images(images)
    assert isinstance(packed, torch.Tensor) and packed.shape == (3, 3, 8, 10)
    assert torch.equal(packed[1], images[1]) and sizes.tolist() == [[10, 8]] * 3


def test_mixed_sizes_are_padded_with_their_edges():
    images = [_image(10, 8, 0), _image(7, 9, 1)]
    packed, sizes = pack_images(images)
    assert isinstance(packed, torch.Tensor) and packed.shape == (2, 3, 9, 10)
    assert sizes.tolist() == [[10, 8], [7, 9]]
    assert torch.equal(packed[0, :, :8], images[0])
    assert torch.equal(packed[0, :, 8], images[0][:, 7])  # last row repeated
    assert torch.equal(packed[1, :, :, :7], images[1])
    assert torch.equal(packed[1, :, :, 9], images[1][:, :, 6])  # last column repeated


def test_one_huge_image_keeps_the_batch_a_list():
    images = [_image(8, 8, s) for s in range(3)] + [_image(64, 64, 9)]
    packed, sizes = pack_images(images)
    assert isinstance(packed, list) and len(packed) == 4 and sizes[-1].tolist() == [64, 64]


def test_a_padded_batch_renders_as_the_list_of_its_images():
    cfg = get_preset("dinov2").config.replace(
        global_crops_size=16, local_crops_size=8, local_crops_number=2
    )
    crop = GPUMultiCrop(cfg, device="cpu", record=False)
    images = [_image(40, 30, 0), _image(33, 41, 1), _image(40, 41, 2)]
    packed, sizes = pack_images(images)
    padded = crop.batch(packed, seed=5, sizes=[tuple(s) for s in sizes.tolist()])
    listed = crop.batch(images, seed=5)
    assert torch.equal(padded.global_crops, listed.global_crops)
    assert torch.equal(padded.local_crops, listed.local_crops)
    with pytest.raises(DataError) as info:
        crop.batch(packed, sizes=[(50, 30), (33, 41), (40, 41)])
    assert_mentions(str(info.value), "50x30", "40x41", "does not fit")  # the size, the batch's
    with pytest.raises(DataError, match="3 images came with 2 sizes"):
        crop.batch(packed, sizes=[(40, 30), (33, 41)])


# --------------------------------------------------------------------------- collate and seeds


def test_masks_are_the_cpu_paths_and_view_seeds_follow_the_batch(dataset):
    keys = [(1, 5), (1, 9), (1, 2), (1, 7)]
    decoded = DecodedDataset(dataset)
    collate = DecodedCollate(MASK, seed=3, n_global=2)
    batch = collate([decoded[k] for k in keys])
    reference = MultiCropCollate(MASK, seed=3)
    cpu_items = [(_cpu_sample(dataset, index), (epoch, index)) for epoch, index in keys]
    assert torch.equal(batch["masks"], reference(cpu_items)["masks"])
    assert batch["indices"].tolist() == [5, 9, 2, 7]
    assert batch["images"].shape == (4, 3, 16, 16) and batch["images"].dtype == torch.uint8
    again = collate([decoded[k] for k in keys])["view_seed"]
    other = collate([decoded[(2, 5)], decoded[(2, 9)]])["view_seed"]
    assert batch["view_seed"] == again != other


def _cpu_sample(dataset, index: int):
    from dinodiag.augment.pipeline import build_pipeline

    return build_pipeline(PIPELINE, record=False)(dataset[index][0], seed=index)


def test_the_device_loader_batches_the_cpu_loaders_images(dataset):
    config = get_train_preset("tiny-test").config.with_overrides({"data.batch_size": 4})
    device_loader, device_sampler, workers = build_device_loader(
        config, PIPELINE, dataset, mask=MASK, world_size=1, rank=0, pin_memory=False
    )
    cpu_loader, cpu_sampler = build_train_loader(
        dataset, PIPELINE, batch_size=4, seed=config.run.seed, mask=MASK, workers=0
    )
    assert workers == 0 and len(device_sampler) == len(cpu_sampler) == 6
    for epoch in (0, 1):
        device_sampler.set_epoch(epoch)
        cpu_sampler.set_epoch(epoch)
        for ours, theirs in zip(device_loader, cpu_loader, strict=True):
            assert ours["indices"].tolist() == theirs["indices"].tolist()
            assert torch.equal(ours["masks"], theirs["masks"])


def test_device_augment_makes_the_steps_batch(dataset):
    decoded = DecodedDataset(dataset)
    batch = DecodedCollate(MASK, seed=0, n_global=2)([decoded[(0, i)] for i in range(4)])
    out = DeviceAugment(PIPELINE, CPU)(batch)
    assert out["global_crops"].shape == (2 * 4, 3, 16, 16)
    assert out["local_crops"].shape == (2 * 4, 3, 8, 8)
    assert out["masks"] is batch["masks"] and torch.equal(out["indices"], batch["indices"])
    assert set(out["sampled"]) == set(SAMPLED_KEYS)
    assert out["sampled"]["sampled_global_scale"][1] == 8  # 2 global views x 4 images


# --------------------------------------------------------------------------- what was sampled


def test_summaries_of_params_and_of_their_records_agree():
    cfg = get_preset("dinov2").config
    sizes = [(500, 375), (320, 480), (64, 64)] * 5
    params = sample_params(torch.Generator().manual_seed(0), cfg, sizes)
    ours = summarise_params(cfg, params, sizes)
    theirs = summarise_records(records_from_params(cfg, params, sizes))
    assert set(ours) == set(theirs) == set(SAMPLED_KEYS)
    for key in SAMPLED_KEYS:
        assert ours[key][1] == theirs[key][1], key
        assert ours[key][0] == pytest.approx(theirs[key][0]), key
    assert ours["sampled_local_scale"][1] == 8 * 15
    mean_local = ours["sampled_local_scale"][0] / ours["sampled_local_scale"][1]
    assert cfg.local_crops_scale[0] <= mean_local <= cfg.local_crops_scale[1]


# --------------------------------------------------------------------------- the feed


class _SlowStream:
    """(epoch, batch) pairs after ``wait`` seconds each."""

    def __init__(self, wait: float) -> None:
        self.wait = wait

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(self.wait)
        sampled = {"sampled_flip_rate": (3.0, 4), "sampled_global_scale": (2.0, 4)}
        return 0, {"sampled": sampled}


def test_the_feed_times_the_loader_and_sums_what_was_sampled():
    feed = BatchFeed(_SlowStream(0.02))
    for _ in range(3):
        next(feed)
        time.sleep(0.03)  # the "step"
    window = feed.window()
    assert window["data_time"] >= 0.02 and window["data_time"] < window["iter_time"]
    assert window["iter_time"] >= 0.05
    assert window["sampled_flip_rate"] == pytest.approx(0.75)
    assert window["sampled_global_scale"] == pytest.approx(0.5)
    assert "augment_time" not in window  # nothing augmented on a device
    next(feed)
    keys = {"data_time", "iter_time", "sampled_flip_rate", "sampled_global_scale"}
    assert set(feed.window()) == keys
    assert feed.window() == {}


def test_the_feed_times_the_augmentation_and_reads_cpu_records():
    from dinodiag.augment.pipeline import build_pipeline

    sample = build_pipeline(PIPELINE, seed=0)(Image.new("RGB", (40, 30)))

    def augment(batch):
        time.sleep(0.01)
        return {**batch, "records": [sample.records]}

    feed = BatchFeed(iter([(0, {})] * 2), augment)
    next(feed)
    next(feed)
    window = feed.window()
    assert window["augment_time"] >= 0.01
    assert window["sampled_local_scale"] == pytest.approx(
        np.mean([r.scale for r in sample.records if r.group == "local"])
    )


# --------------------------------------------------------------------------- decoded cache


def test_the_decoded_cache_is_filled_up_to_its_budget(dataset):
    cached, note = cached_dataset(dataset, 16 * 16 * 3 * 10 / 2**30)  # room for 10 images
    assert cached.cache.stats.items == 10 and "10 of 24 images" in note
    assert "raise --decode-cache-gb" in note
    plain, raw = DecodedDataset(dataset), DecodedDataset(cached)
    for index in (3, 17):  # a cached one and one decoded again
        assert torch.equal(plain[(0, index)][0], raw[(0, index)][0])
    same, none = cached_dataset(dataset, 0)
    assert same is dataset and none == ""
