"""Dataset -> multi-crop DataLoader for training (view-major batches with iBOT masks).

Every image of every epoch gets its own augmentation seed, ``mix_seed(run seed, epoch, index)``,
so a run is reproducible, every worker draws different crops, and a resumed run sees exactly
the batches the interrupted one would have seen. The epoch travels with each index
(``(epoch, index)`` pairs from :class:`EpochBatchSampler`), so persistent workers work.

The pipeline is a dinodiag recipe or the user's own code (:mod:`dinodiag.train.pipelines`):
either way every view comes with its :class:`~dinodiag.augment.records.ViewRecord`, and the
batch carries the mean crop scale of its global and local views (what the run sampled).

A batch is a dict (tensors view-major: row ``v * B + i`` is view ``v`` of image ``i``)::

    {"global_crops": (G * B, 3, H, W), "local_crops": (L * B, 3, h, w) or (0,),
     "masks": (G * B, N) bool or None, "indices": (B,) long,
     "sampled": {key: (sum, count)} for SAMPLED_KEYS (the train rows log the means)}
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.records import PHOTOMETRIC_KINDS, ViewRecord, collate_views
from dinodiag.errors import DataError, TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.train.masking import generate_ibot_masks

_MASK64 = (1 << 64) - 1


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps): stable across processes and runs."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (int(value) & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state >> 1


class MultiCropDataset(Dataset):
    """``ds[(epoch, index)] -> (MultiCropSample, (epoch, index))``: the image of ``index``
    through the multi-crop pipeline seeded with ``mix_seed(seed, epoch, index)``.

    ``pipeline`` is a recipe (built here, recording every view's parameters) or a callable
    ``pipeline(image, seed) -> MultiCropSample`` such as your own pipeline (which pickles as
    its spec, so that workers started with *spawn* rebuild it)."""

    def __init__(
        self, dataset: Any, pipeline: PipelineConfig | Callable[..., Any], seed: int
    ) -> None:
        self.dataset = dataset
        if isinstance(pipeline, PipelineConfig):
            pipeline = build_pipeline(pipeline, record=True)
        self.pipeline = pipeline
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, tuple[int, int]]:
        epoch, index = key
        image, _label = self.dataset[index]
        return self.pipeline(image, seed=mix_seed(self.seed, epoch, index)), (epoch, index)


class EpochBatchSampler(Sampler):
    """Batches of ``(epoch, index)`` from a :class:`DistributedSampler` (one replica when not
    distributed), dropping the last incomplete batch; ``skip`` batches are left out of the
    first epoch iterated (to resume mid-epoch)."""

    def __init__(self, sampler: DistributedSampler, batch_size: int) -> None:
        self.sampler = sampler
        self.batch_size = batch_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        self.sampler.set_epoch(self.epoch)
        indices = list(self.sampler)
        for b in range(self.skip, len(indices) // self.batch_size):
            chunk = indices[b * self.batch_size : (b + 1) * self.batch_size]
            yield [(self.epoch, int(i)) for i in chunk]


@dataclass(frozen=True)
class MaskSpec:
    """iBOT masking of the global crops (None in the collate = no masks)."""

    grid: tuple[int, int]  # patch grid of a global crop (size // patch, size // patch)
    probability: float  # fraction of global crops that get a mask
    ratio: tuple[float, float]  # masked fraction range of a masked crop


class MultiCropCollate:
    """Stacks samples view-major (``collate_views``) and draws the iBOT masks of the batch,
    seeded by ``(seed, epoch, first index)`` so they are reproducible in any worker."""

    def __init__(self, mask: MaskSpec | None, seed: int, name: str = "the pipeline") -> None:
        self.mask = mask
        self.seed = seed
        self.name = name  # the pipeline, in the error of views that do not stack

    def __call__(self, items: list[tuple[Any, tuple[int, int]]]) -> dict[str, Any]:
        samples = [sample for sample, _ in items]
        try:
            views = collate_views(samples)
        except ValueError as exc:
            raise DataError(
                f"{self.name}: {exc}. A training batch stacks the views of its images, so the "
                "pipeline must make the same views (count and size) for every image."
            ) from None
        batch: dict[str, Any] = dict(views)
        batch["indices"] = torch.tensor([key[1] for _, key in items], dtype=torch.long)
        batch["sampled"] = summarise_records([sample.records for sample in samples])
        batch["masks"] = None
        if self.mask is not None:
            epoch, first = items[0][1]
            generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch, first, 1))
            batch["masks"] = generate_ibot_masks(
                batch["global_crops"].shape[0],
                self.mask.grid,
                mask_probability=self.mask.probability,
                ratio_range=self.mask.ratio,
                generator=generator,
            )
        return batch


#: Train-row keys of :func:`summarise_records` (and of the on-device backend): mean crop area
#: fraction per group and the fraction of views that used each random operation.
SAMPLED_RATES = ("fallback", *PHOTOMETRIC_KINDS)
SAMPLED_KEYS = (
    "sampled_global_scale",
    "sampled_local_scale",
    *(f"sampled_{name}_rate" for name in SAMPLED_RATES),
)


def summarise_records(records: list[list[ViewRecord]]) -> dict[str, tuple[float, int]]:
    """What the views of a batch sampled, as ``{key: (sum, count)}`` (:data:`SAMPLED_KEYS`), from
    their records (one list per sample): crop area fractions summed per group, and how many
    views used each random operation. A value a record does not know (a step of your own
    code dinodiag could not read) is left out of its count. The on-device backend reports the
    same keys (:func:`dinodiag.train.device_augment.summarise_params`), so both backends log
    the same columns."""
    rows = [record for sample in records for record in sample]
    out: dict[str, tuple[float, int]] = {}
    for group in ("global", "local"):
        scales = [
            r.scale
            for r in rows
            if r.group == group and r.scale is not None and math.isfinite(r.scale)
        ]
        out[f"sampled_{group}_scale"] = (float(sum(scales)), len(scales))
    for name in SAMPLED_RATES:
        known = [bool(getattr(r, name)) for r in rows if getattr(r, name) is not None]
        out[f"sampled_{name}_rate"] = (float(sum(known)), len(known))
    return out


def default_workers(world_size: int = 1, on_gpu: bool = False) -> int:
    """Loader processes per training process: 1 on a 2-core machine (the main process needs
    the cores for the model), more on bigger machines and for GPU training."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    per_process = max(1, (cores or 1) // max(1, world_size))
    if on_gpu:
        return max(1, min(8, per_process - 1))
    return 1 if per_process <= 4 else min(4, per_process // 4)


def check_dataset_size(n_images: int, batch_size: int, world_size: int, name: str) -> int:
    """Steps per epoch; raises :class:`TrainingError` when one batch cannot be filled."""
    per_process = n_images // max(1, world_size)
    steps = per_process // batch_size
    if steps < 1:
        raise TrainingError(
            f"dataset {name} has {n_images} images, too few for a batch of {batch_size} per "
            f"process x {world_size} process(es): lower --batch-size to at most "
            f"{max(1, per_process)} or use a larger dataset."
        )
    return steps


def build_train_loader(
    dataset: Any,
    pipeline: PipelineConfig | Callable[..., Any],
    *,
    batch_size: int,
    seed: int,
    mask: MaskSpec | None,
    workers: int,
    world_size: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
    name: str = "the pipeline",
) -> tuple[DataLoader, EpochBatchSampler]:
    """The training DataLoader and its batch sampler (call ``sampler.set_epoch`` per epoch).

    Raises :class:`TrainingError` when the dataset cannot fill one batch per process.
    """
    dataset_name = getattr(dataset, "name", type(dataset).__name__)
    check_dataset_size(len(dataset), batch_size, world_size, dataset_name)
    index_sampler = DistributedSampler(
        range(len(dataset)),  # only its length is used
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=seed,
        drop_last=True,
    )
    batch_sampler = EpochBatchSampler(index_sampler, batch_size)
    loader = DataLoader(
        MultiCropDataset(dataset, pipeline, seed),
        batch_sampler=batch_sampler,
        collate_fn=MultiCropCollate(mask, seed, name),
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    return loader, batch_sampler


class BatchStream:
    """Endless ``(epoch, batch)`` from step ``start_step`` on (a mid-epoch resume skips the
    batches already seen). The loader's workers start when the stream is made and prefetch
    while the run does other work (the step-0 k-NN)."""

    def __init__(
        self, loader: DataLoader, sampler: EpochBatchSampler, start_step: int, steps_per_epoch: int
    ) -> None:
        self.loader, self.sampler = loader, sampler
        self.epoch, skip = divmod(start_step, steps_per_epoch)
        sampler.set_epoch(self.epoch, skip)
        self.iterator = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        while True:
            try:
                return self.epoch, next(self.iterator)
            except StopIteration:
                self.epoch += 1
                self.sampler.set_epoch(self.epoch, 0)
                self.iterator = iter(self.loader)


def batches(
    loader: DataLoader, sampler: EpochBatchSampler, start_step: int, steps_per_epoch: int
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Endless ``(epoch, batch)`` from step ``start_step`` on (:class:`BatchStream`)."""
    return BatchStream(loader, sampler, start_step, steps_per_epoch)


class CachedImages:
    """A dataset whose decoded (or generated) images are kept in memory once read, up to
    ``limit_bytes`` of pixels: from the second epoch on a loader worker only augments. Every
    other attribute (``name``, ``has_labels``, ``describe`` ...) is the dataset's.

    Each worker process fills its own copy (the workers are forked once: persistent)."""

    def __init__(self, dataset: Any, limit_bytes: int) -> None:
        self.dataset, self.limit_bytes = dataset, limit_bytes
        self._items: dict[int, tuple[Any, int]] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        item = self._items.get(index)
        if item is None:
            item = self.dataset[index]
            size = getattr(item[0], "size", (0, 0))
            cost = 3 * size[0] * size[1]
            if self._bytes + cost <= self.limit_bytes:
                self._items[index] = item
                self._bytes += cost
        return item

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.dataset, name)


CACHE_BYTES = 256 * 2**20  # pixels kept per process: 2000 images of 32 px take 6 MB


def build_run_loader(
    config: TrainConfig,
    dataset: Any,
    pipeline: Any,
    world_size: int,
    rank: int,
    on_gpu: bool,
) -> tuple[DataLoader, EpochBatchSampler, int]:
    """The training loader of a run as its config says, for ``pipeline`` (a
    :class:`~dinodiag.train.pipelines.RunPipeline`); returns ``(loader, sampler, workers)``.

    Raises :class:`TrainingError` when the dataset cannot fill one batch.
    """
    from dinodiag.train.builders import ibot_enabled

    data = config.data
    workers = data.workers if data.workers is not None else default_workers(world_size, on_gpu)
    mask = None
    if ibot_enabled(config):
        height, width = pipeline.global_grid_size
        grid = (height // config.model.patch_size, width // config.model.patch_size)
        mask = MaskSpec(grid, config.optim.mask_probability, config.optim.mask_ratio)
    loader, sampler = build_train_loader(
        dataset,
        pipeline.make(),
        batch_size=data.batch_size,
        seed=config.run.seed,
        mask=mask,
        workers=workers,
        world_size=world_size,
        rank=rank,
        pin_memory=on_gpu,
        name=f"pipeline {pipeline.label}",
    )
    return loader, sampler, workers
