"""The multi-crop training loader: shapes, seeds per (epoch, index), masks, DDP split, resume."""

from __future__ import annotations

import itertools
import pickle

import pytest
import torch
from PIL import Image

from dinodiag.augment.presets import get_preset
from dinodiag.data import open_dataset
from dinodiag.errors import TrainingError
from dinodiag.train.data import (
    CachedImages,
    MaskSpec,
    batches,
    build_train_loader,
    check_dataset_size,
    default_workers,
    mix_seed,
)

PIPELINE = get_preset("small-images").config.replace(
    global_crops_size=16, local_crops_size=8, local_crops_number=2
)
MASK = MaskSpec((4, 4), 0.5, (0.1, 0.5))


@pytest.fixture(scope="module")
def dataset():
    return open_dataset("generated:n=24,val_n=8,size=16,classes=3")


def loader_for(dataset, **kwargs):
    options = dict(batch_size=4, seed=0, mask=MASK, workers=0)
    options.update(kwargs)
    return build_train_loader(dataset, PIPELINE, **options)


def test_mix_seed_is_stable_and_spreads():
    # Pinned values: a resumed run and every DataLoader worker must draw the same crops for
    # (seed, epoch, index), in any process (no hash() of Python's per-process hash seed).
    assert mix_seed(0, 1, 2) == 7862180293416889277
    assert mix_seed(0, 2, 1) == 1965874593186849694  # the order of the parts counts
    assert mix_seed(1, 1, 2) == 8331374476721154409  # the run seed changes every image's seed
    seeds = {mix_seed(0, epoch, index) for epoch in range(5) for index in range(50)}
    assert len(seeds) == 250 and all(0 <= s < 2**63 for s in seeds)


def test_batch_is_view_major_with_masks(dataset):
    loader, sampler = loader_for(dataset)
    batch = next(iter(loader))
    assert batch["global_crops"].shape == (2 * 4, 3, 16, 16)
    assert batch["local_crops"].shape == (2 * 4, 3, 8, 8)
    assert batch["masks"].shape == (8, 16) and batch["masks"].dtype == torch.bool
    assert int(batch["masks"].any(dim=1).sum()) == 4  # half of the global crops
    assert batch["indices"].shape == (4,)
    assert len(sampler) == 6  # 24 images / batch 4


def test_same_epoch_same_crops_other_epoch_other_crops(dataset):
    loader, sampler = loader_for(dataset)
    sampler.set_epoch(0)
    first = next(iter(loader))
    sampler.set_epoch(0)
    again = next(iter(loader))
    assert torch.equal(first["global_crops"], again["global_crops"])
    assert torch.equal(first["masks"], again["masks"])
    sampler.set_epoch(1)
    other = next(iter(loader))
    assert not torch.equal(first["indices"], other["indices"])  # reshuffled


def test_resume_mid_epoch_sees_the_same_batches(dataset):
    loader, sampler = loader_for(dataset)
    straight = [b for _, b in itertools.islice(batches(loader, sampler, 0, len(sampler)), 9)]
    resumed = [b for _, b in itertools.islice(batches(loader, sampler, 7, len(sampler)), 2)]
    for a, b in zip(straight[7:], resumed, strict=True):
        assert torch.equal(a["indices"], b["indices"])
        assert torch.equal(a["local_crops"], b["local_crops"])


def test_distributed_ranks_get_disjoint_images(dataset):
    seen = []
    for rank in (0, 1):
        loader, sampler = loader_for(dataset, world_size=2, rank=rank)
        assert len(sampler) == 3  # 12 images per rank
        seen.append({int(i) for b in loader for i in b["indices"]})
    assert not seen[0] & seen[1]


def test_workers_give_the_same_batches(dataset):
    serial, _ = loader_for(dataset)
    parallel, _ = loader_for(dataset, workers=1)
    a, b = next(iter(serial)), next(iter(parallel))
    assert torch.equal(a["global_crops"], b["global_crops"]) and torch.equal(a["masks"], b["masks"])


def test_no_masks_without_ibot(dataset):
    loader, _ = loader_for(dataset, mask=None)
    assert next(iter(loader))["masks"] is None


def test_too_small_dataset():
    with pytest.raises(TrainingError, match="too few for a batch of 8"):
        check_dataset_size(10, 8, 2, "tiny")
    assert check_dataset_size(10, 2, 2, "tiny") == 2


def test_default_workers_on_two_cores(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert default_workers(1, on_gpu=False) == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(32)), raising=False)
    assert default_workers(1, on_gpu=True) == 8


class Counting:
    """Five 4x4 images that count how often they are read."""

    name, has_labels = "counting", True

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return 5

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        self.reads += 1
        return Image.new("RGB", (4, 4), (index, 0, 0)), index % 2


def test_the_training_images_are_read_once_then_served_from_memory():
    source = Counting()
    cached = CachedImages(source, limit_bytes=3 * 16 * 3)  # room for three 4x4 RGB images
    first = [cached[i] for i in range(5)]
    again = [cached[i] for i in range(5)]
    assert source.reads == 5 + 2  # the three that fit are not read again, the last two are
    assert [label for _, label in again] == [0, 1, 0, 1, 0]
    assert again[0][0] is first[0][0] and again[4][0] is not first[4][0]
    assert cached.name == "counting" and cached.has_labels and len(cached) == 5
    copy = pickle.loads(pickle.dumps(cached))  # a spawned worker gets its own copy
    assert copy[1][1] == 1
