"""Training batches cut and coloured on the training device (``--augment-device``).

With the on-device backend the DataLoader workers only decode images to uint8 (from a decoded
cache when ``data.decode_cache_gb`` > 0) and collate them; the training process then cuts,
resizes and colours every view of the batch on the device in a handful of batched calls
(:class:`~dinodiag.augment.gpu.GPUMultiCrop`), with per-view parameters drawn on the CPU as
the CPU pipeline draws them. A CPU worker reaches roughly 60-110 multi-crop images/s; a GPU
trains ViT-S/16 at thousands, so on a GPU the default is this backend (``auto``).

A decoded batch (what the loader yields; :class:`DecodedCollate`)::

    {"images": (B, 3, H, W) uint8 (equal sizes, or edge-padded to the largest) or a list of
     (3, Hi, Wi) uint8, "sizes": (B, 2) long (width, height before padding),
     "indices": (B,) long, "masks": (G * B, N) bool or None, "view_seed": int, "epoch": int}

and after :class:`DeviceAugment`, the batch :mod:`dinodiag.train.step` takes (view-major, on
the device)::

    {"global_crops": (G * B, 3, S, S), "local_crops": (L * B, 3, s, s), "masks", "indices",
     "sampled": {"sampled_global_scale": ..., ...}}

Reproducibility: the view parameters of a batch come from ``mix_seed(run seed, epoch, first
index, 2)`` and its iBOT masks from ``mix_seed(run seed, epoch, first index, 1)`` (the CPU
path's mask seed), so a resumed run sees the batches the interrupted one would have seen. The
CPU path (:mod:`dinodiag.train.data`) stays the reference for the semantics: the same view
shapes, parameter distributions and masks (``tests/train/test_device_training.py``).

:class:`BatchFeed` wraps either path's batch stream for the loop: it times the wait on the
loader and the augmentation, and sums what was sampled, for the train rows (``data_time``,
``iter_time`` as DINOv2 logs them, ``augment_time``, ``sampled_*``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.gpu.multicrop import GPUMultiCrop
from dinodiag.augment.gpu.params import ViewParams
from dinodiag.errors import TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.train.data import (
    SAMPLED_RATES,
    EpochBatchSampler,
    MaskSpec,
    check_dataset_size,
    default_workers,
    mix_seed,
    summarise_records,
)
from dinodiag.train.masking import generate_ibot_masks

#: A batch of mixed sizes is padded into one tensor when the padding adds at most this factor
#: of pixels (one copy to the device); beyond, it stays a list (a 4000 px photo among 400 px
#: ones would otherwise make every image 4000 px).
PAD_LIMIT = 2.0

# --------------------------------------------------------------------------- which backend

CPU_PATH_NO_CACHE = (
    "--decode-cache-gb is used by the on-device augmentation only; with --augment-device cpu "
    "the loader workers decode each image as they augment it (no cache)."
)


def augments_on_device(requested: str, train_device: torch.device) -> bool:
    """Whether ``data.augment_device`` puts the views on the training device.

    ``auto``: on a GPU yes, on a CPU no (DataLoader workers then cut and colour in parallel with
    the model); ``cpu``: no; ``device``: yes, whatever the device (on a CPU: in the training
    process); ``cuda`` / ``cuda:N``: yes, and it must be the training device. Raises
    :class:`TrainingError` when ``cuda`` is asked for while the model trains elsewhere.
    """
    choice = requested.strip().lower()
    if choice == "auto":
        return train_device.type == "cuda"
    if choice == "cpu":
        return False
    if choice == "device":
        return True
    wanted = torch.device(choice)
    same = wanted.type == train_device.type and wanted.index in (None, train_device.index)
    if not same:
        raise TrainingError(
            f"--augment-device {requested} but the model trains on {train_device}: the views "
            "must be made where the model runs. Use --augment-device device (the training "
            "device) or cpu (DataLoader workers), or train with --device "
            f"{requested}."
        )
    return True


def describe_augmentation(augment: Any, data: Any) -> str:
    """For config.json's ``resolved``: e.g. ``cuda:0 (GPUMultiCrop; workers decode)`` or
    ``cpu (DataLoader workers)``."""
    if augment is None:
        return "cpu (DataLoader workers cut and colour)"
    cache = f", decoded cache {data.decode_cache_gb:g} GiB" if data.decode_cache_gb else ""
    return f"{augment.device} (GPUMultiCrop on the batch; workers only decode{cache})"


# --------------------------------------------------------------------------- decode only


def to_uint8_chw(image: Any) -> torch.Tensor:
    """A PIL image (or an (H, W, 3) uint8 array) -> a (3, H, W) uint8 tensor (a copy)."""
    if isinstance(image, np.ndarray):
        array = image
    else:
        array = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    return torch.from_numpy(np.ascontiguousarray(array).copy()).permute(2, 0, 1)


class DecodedDataset(Dataset):
    """``ds[(epoch, index)] -> ((3, H, W) uint8 tensor, (epoch, index))``: decoding only.

    ``dataset`` may be a :class:`~dinodiag.data.cache.CachedDataset` (its decoded arrays are
    served without decoding again).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
        _epoch, index = key
        if hasattr(self.dataset, "array"):  # CachedDataset: the decoded (H, W, 3) array
            array, _label = self.dataset.array(index)
            return to_uint8_chw(array), key
        image, _label = self.dataset[index]
        return to_uint8_chw(image), key


def pack_images(
    images: list[torch.Tensor], pad_limit: float = PAD_LIMIT
) -> tuple[torch.Tensor | list[torch.Tensor], torch.Tensor]:
    """Images (3, Hi, Wi) uint8 -> (one (B, 3, H, W) tensor or the list, (B, 2) sizes).

    Equal sizes are stacked; mixed sizes are padded to the largest by repeating each image's
    last row and column (what sampling past an edge reads, as PIL clamps) when that adds at
    most ``pad_limit`` x the pixels, and kept as a list otherwise.
    """
    sizes = torch.tensor([(int(t.shape[2]), int(t.shape[1])) for t in images], dtype=torch.long)
    width, height = int(sizes[:, 0].max()), int(sizes[:, 1].max())
    if bool((sizes == sizes[0]).all()):
        return torch.stack(images), sizes
    pixels = int((sizes[:, 0] * sizes[:, 1]).sum())
    if len(images) * width * height > pad_limit * pixels:
        return list(images), sizes
    out = torch.empty((len(images), 3, height, width), dtype=torch.uint8)
    for i, image in enumerate(images):
        h, w = image.shape[1:]
        rows = torch.arange(height).clamp_(max=h - 1)
        cols = torch.arange(width).clamp_(max=w - 1)
        out[i] = image.index_select(1, rows).index_select(2, cols)
    return out, sizes


class DecodedCollate:
    """Packs decoded images (:func:`pack_images`) and draws the batch's iBOT masks, seeded as
    :class:`dinodiag.train.data.MultiCropCollate` seeds them; adds the batch's view seed."""

    def __init__(self, mask: MaskSpec | None, seed: int, n_global: int) -> None:
        self.mask = mask
        self.seed = seed
        self.n_global = n_global

    def __call__(self, items: list[tuple[torch.Tensor, tuple[int, int]]]) -> dict[str, Any]:
        epoch, first = items[0][1]
        images, sizes = pack_images([image for image, _ in items])
        batch: dict[str, Any] = {
            "images": images,
            "sizes": sizes,
            "indices": torch.tensor([key[1] for _, key in items], dtype=torch.long),
            "masks": None,
            "view_seed": mix_seed(self.seed, epoch, first, 2),
            "epoch": epoch,
        }
        if self.mask is not None:
            generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch, first, 1))
            batch["masks"] = generate_ibot_masks(
                self.n_global * len(items),
                self.mask.grid,
                mask_probability=self.mask.probability,
                ratio_range=self.mask.ratio,
                generator=generator,
            )
        return batch


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


# --------------------------------------------------------------------------- on the device


class DeviceAugment:
    """Decoded batch -> the step's batch: every view cut, resized and coloured on ``device``.

    ``last_params`` keeps the parameters of the latest batch (rows view-major, see
    :class:`~dinodiag.augment.gpu.params.ViewParams`) for tests and inspection.
    """

    def __init__(self, pipeline: PipelineConfig, device: torch.device) -> None:
        self.pipeline = pipeline
        self.device = device
        self.crop = GPUMultiCrop(pipeline, device=device, seed=0, record=False)
        self.last_params: ViewParams | None = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        sizes = [(int(w), int(h)) for w, h in batch["sizes"].tolist()]
        images = batch["images"]
        views = self.crop.batch(
            images,
            seed=int(batch["view_seed"]),
            sizes=sizes if isinstance(images, torch.Tensor) else None,
        )
        self.last_params = views.params
        return {
            "global_crops": views.global_crops,
            "local_crops": views.local_crops,
            "masks": batch["masks"],
            "indices": batch["indices"],
            "sampled": summarise_params(self.pipeline, views.params, sizes),
        }


def summarise_params(
    pipeline: PipelineConfig, params: ViewParams, sizes: list[tuple[int, int]]
) -> dict[str, tuple[float, int]]:
    """What a batch sampled, as ``{key: (sum, count)}`` (:data:`dinodiag.train.data.SAMPLED_KEYS`):
    crop area fractions summed per group, and how many views used each random operation."""
    area = torch.tensor([w * h for w, h in sizes], dtype=torch.float64)[params.sample]
    scale = params.box[:, 2] * params.box[:, 3] / area
    is_global = params.slot < pipeline.global_crops_number
    n_views = int(params.slot.numel())
    out: dict[str, tuple[float, int]] = {
        "sampled_global_scale": (float(scale[is_global].sum()), int(is_global.sum())),
        "sampled_local_scale": (float(scale[~is_global].sum()), int((~is_global).sum())),
    }
    for name in SAMPLED_RATES:
        out[f"sampled_{name}_rate"] = (float(getattr(params, name).sum()), n_views)
    return out


# --------------------------------------------------------------------------- the loop's feed


class BatchFeed:
    """The loop's batches: ``next(feed) -> (epoch, batch)`` from either backend's stream, with
    the on-device augmentation applied (``augment``), timed, and what was sampled summed.

    :meth:`window` returns the means since its last call, for a train row:

    - ``data_time``: seconds a step waited for the loader (``next`` on the DataLoader);
    - ``augment_time``: seconds of on-device augmentation per step (CUDA events: device time,
      read once the step has synchronised; wall time on a CPU); absent on the CPU path;
    - ``iter_time``: median seconds between consecutive batches (a whole step);
    - ``sampled_*``: :data:`SAMPLED_KEYS` over the window's views (when the batches say).
    """

    def __init__(self, stream: Iterator[tuple[int, dict[str, Any]]], augment: Any = None):
        self.stream = stream
        self.augment = augment
        self._reset()
        self._last: float | None = None

    def _reset(self) -> None:
        self._waits: list[float] = []
        self._intervals: list[float] = []
        self._augment_seconds: list[float] = []
        self._events: list[tuple[Any, Any]] = []
        self._sampled: dict[str, list[float]] = {}

    def __iter__(self) -> BatchFeed:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        start = time.perf_counter()
        if self._last is not None:
            self._intervals.append(start - self._last)
        self._last = start
        epoch, batch = next(self.stream)
        self._waits.append(time.perf_counter() - start)
        if self.augment is not None:
            batch = self._augmented(batch)
        sampled = batch.get("sampled")
        if sampled is None and batch.get("records"):
            sampled = summarise_records(batch["records"])
        for key, (total, count) in (sampled or {}).items():
            acc = self._sampled.setdefault(key, [0.0, 0])
            acc[0] += total
            acc[1] += count
        return epoch, batch

    def _augmented(self, batch: dict[str, Any]) -> dict[str, Any]:
        device = getattr(self.augment, "device", torch.device("cpu"))
        if device.type == "cuda":
            begin, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            begin.record()
            batch = self.augment(batch)
            end.record()
            self._events.append((begin, end))
            return batch
        start = time.perf_counter()
        batch = self.augment(batch)
        self._augment_seconds.append(time.perf_counter() - start)
        return batch

    def window(self) -> dict[str, float]:
        """Means since the last call (see the class docstring); then starts a new window."""
        out: dict[str, float] = {}
        if self._waits:
            out["data_time"] = sum(self._waits) / len(self._waits)
        if self._intervals:
            out["iter_time"] = statistics.median(self._intervals)
        seconds = list(self._augment_seconds)
        for begin, end in self._events:
            end.synchronize()  # done already: the step read its loss back to the CPU
            seconds.append(begin.elapsed_time(end) / 1000.0)
        if seconds:
            out["augment_time"] = sum(seconds) / len(seconds)
        for key, (total, count) in self._sampled.items():
            if count:
                out[key] = total / count
        self._reset()
        return out
