"""Training batches cut and coloured on the training device (``--augment-device``).

With the on-device backend the DataLoader workers only decode images to uint8 (from a decoded
cache when ``data.decode_cache_gb`` > 0) and collate them
(:mod:`dinodiag.train.decoded_batches`); the training process then cuts, resizes and colours
every view of the batch on the device in a handful of batched calls
(:mod:`dinodiag.train.device_augment`), with per-view parameters drawn on the CPU as the CPU
pipeline draws them. Which backend a run uses: :mod:`dinodiag.train.augment_backend`; the
loop's timed feed over either: :mod:`dinodiag.train.batch_feed`.

This module sets the backend up for a run: the decoded-image cache, the decode-only DataLoader
(the CPU path's sampler: the same images in the same batches) and the device augmentation. The
CPU path (:mod:`dinodiag.train.data`) stays the reference for the semantics: the same view
shapes, parameter distributions and masks (``tests/train/test_device_training.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from dinodiag.augment.config import PipelineConfig
from dinodiag.recipe.config import TrainConfig
from dinodiag.train.data import (
    EpochBatchSampler,
    MaskSpec,
    check_dataset_size,
    default_workers,
)
from dinodiag.train.decoded_batches import DecodedCollate, DecodedDataset
from dinodiag.train.device_augment import DeviceAugment


def cached_dataset(dataset: Any, gigabytes: float, progress: Any = None) -> tuple[Any, str]:
    """``dataset`` behind a decoded-image cache of ``gigabytes`` (0: as it is), filled now in
    this process so that forked loader workers share its pages; returns it and a note."""
    if gigabytes <= 0:
        return dataset, ""
    from dinodiag.data.cache import CachedDataset

    cached = CachedDataset(dataset, max_bytes=int(gigabytes * 2**30))
    start = time.monotonic()
    for index in range(len(cached)):
        cached.array(index)
        if cached.cache.stats.rejected:  # full: the rest is decoded by the workers each time
            break
        if progress is not None:
            progress(index + 1, len(cached))
    stats = cached.cache.stats
    note = (
        f"decoded-image cache: {stats.items} of {len(cached)} images "
        f"({stats.bytes / 2**30:.2f} GiB of {gigabytes:g}) decoded once in "
        f"{time.monotonic() - start:.1f} s"
    )
    if stats.items < len(cached):
        note += "; the rest are decoded every epoch (raise --decode-cache-gb to keep them all)"
    return cached, note


def build_device_loader(
    config: TrainConfig,
    pipeline: PipelineConfig,
    dataset: Any,
    *,
    mask: MaskSpec | None,
    world_size: int,
    rank: int,
    pin_memory: bool,
) -> tuple[DataLoader, EpochBatchSampler, int]:
    """The decode-only training DataLoader, its batch sampler and the worker count.

    The same sampler as the CPU path (:class:`~dinodiag.train.data.EpochBatchSampler`): the same
    images in the same batches, epoch by epoch. Raises :class:`TrainingError` when the dataset
    cannot fill one batch per process.
    """
    data = config.data
    name = getattr(dataset, "name", type(dataset).__name__)
    check_dataset_size(len(dataset), data.batch_size, world_size, name)
    on_gpu = pin_memory
    workers = data.workers if data.workers is not None else default_workers(world_size, on_gpu)
    index_sampler = DistributedSampler(
        range(len(dataset)),
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=config.run.seed,
        drop_last=True,
    )
    sampler = EpochBatchSampler(index_sampler, data.batch_size)
    loader = DataLoader(
        DecodedDataset(dataset),
        batch_sampler=sampler,
        collate_fn=DecodedCollate(mask, config.run.seed, pipeline.global_crops_number),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    return loader, sampler, workers


@dataclass
class DeviceData:
    """What :func:`build_run_device_loader` sets up for a run."""

    loader: DataLoader  # decode-only batches (see the module docstring)
    sampler: EpochBatchSampler  # call set_epoch per epoch (dinodiag.train.data.batches does)
    dataset: Any  # the training split (behind the decoded cache when there is one)
    workers: int  # loader processes
    augment: DeviceAugment  # decoded batch -> views on the device
    notes: list[str] = field(default_factory=list)  # for the run's events


def build_run_device_loader(
    config: TrainConfig,
    dataset: Any,
    pipeline: PipelineConfig,
    world_size: int,
    rank: int,
    device: torch.device,
) -> DeviceData:
    """Decode-only loading of ``dataset`` (the training split,
    :func:`dinodiag.train.training_data.open_train_set`) + on-device augmentation,
    as :func:`dinodiag.train.data.build_run_loader` sets up the CPU path.

    Raises :class:`TrainingError` when the dataset cannot fill one batch.
    """
    from dinodiag.train.builders import ibot_enabled

    data = config.data
    dataset, note = cached_dataset(dataset, data.decode_cache_gb)
    mask = None
    if ibot_enabled(config):
        grid = pipeline.global_crops_size // config.model.patch_size
        mask = MaskSpec((grid, grid), config.optim.mask_probability, config.optim.mask_ratio)
    loader, sampler, workers = build_device_loader(
        config,
        pipeline,
        dataset,
        mask=mask,
        world_size=world_size,
        rank=rank,
        pin_memory=device.type == "cuda",
    )
    notes = [note] if note else []
    return DeviceData(loader, sampler, dataset, workers, DeviceAugment(pipeline, device), notes)
