"""The k-NN evaluation with its centre crops made on the training device.

With the on-device augmentation (``--augment-device``) the training loop's evaluator comes from
:func:`on_device`: the images of a set that the CPU evaluator keeps lazily (too large to hold as
float tensors: 224 px sets of thousands of images) are decoded to uint8 by loader workers, then
resized (short side to ``S * 256 / 224``, bicubic, antialiased), centre-cropped to ``S`` and
normalised on the device, as :func:`dinodiag.train.eval.knn.eval_transform` does on the CPU
(within a grey level: the resize runs in float, rounded after each pass, torchvision's in 8
bits). The crops stay on the device as uint8 (a 224 px crop is 147 KiB) while they fit
``cache_bytes``, so from the second evaluation on, one is only the forward passes. Sets the CPU
evaluator already holds as tensors (small images) are moved to the device once.

    evaluator, reason = build_evaluator(train_set, cfg.data, pipeline, seed=0, device=dev, ...)
    evaluator = on_device(evaluator, pipeline)     # same evaluate(backbone) -> {"knn_top1", ...}
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import DataError
from dinodiag.train.decoded_batches import to_uint8_chw
from dinodiag.train.eval.evaluator import KnnEvaluator

#: Device memory for the uint8 crops of the lazily loaded sets (and at most a quarter of the
#: memory free when the evaluator is made).
DEVICE_CACHE_BYTES = 4 * 2**30
RESIZE_RATIO = 256 / 224  # the short side before the centre crop, as eval_transform


def center_crops(
    images: list[torch.Tensor], size: int, resize_ratio: float = RESIZE_RATIO
) -> torch.Tensor:
    """(3, Hi, Wi) uint8 images (on the device) -> (N, 3, size, size) uint8 centre crops.

    The short side is resized to ``round(size * resize_ratio)`` and the long side to
    ``int(side * long / short)`` (torchvision's sizes), bicubic with antialiasing, rounded to
    bytes; the crop starts at ``round((side - size) / 2)`` as torchvision's CenterCrop. Images
    of one size are resized together.
    """
    side = int(round(size * resize_ratio))
    if side < size:
        raise DataError(f"k-NN resize ratio {resize_ratio} makes the short side < the crop {size}.")
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8, device=images[0].device)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault((int(image.shape[1]), int(image.shape[2])), []).append(i)
    for (h, w), rows in by_size.items():
        batch = torch.stack([images[i] for i in rows]).float()
        new_h, new_w = (int(side * h / w), side) if w <= h else (side, int(side * w / h))
        # Width then height, rounded to bytes in between, as the 8-bit resize of torchvision
        # (and Pillow) runs: within one grey level of it, where one 2-D pass differs by up
        # to ~10 levels on fine texture (its overshoot is not clipped in between).
        for shape in ((h, new_w), (new_h, new_w)):
            if tuple(batch.shape[-2:]) != shape:
                batch = F.interpolate(batch, size=shape, mode="bicubic", antialias=True)
                batch = batch.round_().clamp_(0, 255)
        top = int(round((new_h - size) / 2.0))
        left = int(round((new_w - size) / 2.0))
        out[rows] = batch[:, :, top : top + size, left : left + size].to(torch.uint8)
    return out


class _Decoded(Dataset):
    """``(3, H, W) uint8, label`` of chosen indices of a dataset (decoding only)."""

    def __init__(self, dataset: Any, indices: list[int]) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[self.indices[i]]
        return to_uint8_chw(image), int(label)


def _as_list(items: list[tuple[torch.Tensor, int]]) -> tuple[list[torch.Tensor], torch.Tensor]:
    images = [image for image, _ in items]
    return images, torch.tensor([label for _, label in items], dtype=torch.long)


class _Normalised:
    """uint8 crops -> normalised float32 on the device (ToTensor + Normalize as one FMA)."""

    def __init__(self, pipeline: PipelineConfig, device: torch.device) -> None:
        std = torch.tensor(pipeline.std, dtype=torch.float32).view(1, 3, 1, 1)
        mean = torch.tensor(pipeline.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.scale = (1.0 / (255.0 * std)).to(device)
        self.shift = (-mean / std).to(device)

    def __call__(self, crops: torch.Tensor) -> torch.Tensor:
        return crops.float().mul_(self.scale).add_(self.shift)


class _HeldBatches(Dataset):
    """Batches ``(images, labels)`` of tensors held on the device; ``normalise`` turns uint8
    crops into the model's input (None: the images are model input already)."""

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, normalise: Any
    ) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.normalise = normalise

    def __len__(self) -> int:
        return math.ceil(self.images.shape[0] / self.batch_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        images = self.images[rows]
        return (self.normalise(images) if self.normalise else images), self.labels[rows]


class _StreamedBatches(IterableDataset):
    """Batches decoded by loader workers and centre-cropped on the device as they come; with
    ``keep`` (the set's key), a complete pass leaves its uint8 crops to the evaluator."""

    def __init__(self, evaluator: DeviceKnnEvaluator, decoded: _Decoded, keep: int | None):
        self.evaluator, self.decoded, self.keep = evaluator, decoded, keep

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ev = self.evaluator
        loader = DataLoader(
            self.decoded,
            batch_size=ev.batch_size,
            shuffle=False,
            num_workers=ev.workers,
            collate_fn=_as_list,
            pin_memory=ev.device.type == "cuda",
        )
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        for images, labels in loader:
            on_device = [image.to(ev.device, non_blocking=True) for image in images]
            crops = center_crops(on_device, ev.crop_size)
            labels = labels.to(ev.device, non_blocking=True)
            if self.keep is not None:
                parts.append((crops, labels))
            yield ev.normalise(crops), labels
        if self.keep is not None and parts:  # only a whole pass is kept
            crops = torch.cat([c for c, _ in parts])
            labels = torch.cat([y for _, y in parts])
            ev.held[self.keep] = _HeldBatches(crops, labels, ev.batch_size, ev.normalise)


class DeviceKnnEvaluator(KnnEvaluator):
    """A :class:`KnnEvaluator` whose images are prepared on its device (see the module
    docstring); ``evaluate(backbone)`` is the CPU evaluator's."""

    def __init__(
        self, cpu: KnnEvaluator, pipeline: PipelineConfig, cache_bytes: int | None = None
    ) -> None:
        # Everything the CPU evaluator set up (sets, k, temperature, device, batch size ...):
        # only the way a set becomes batches (_loader) changes.
        vars(self).update(vars(cpu))
        self.crop_size = pipeline.global_crops_size
        self.normalise = _Normalised(pipeline, self.device)
        if cache_bytes is None:
            cache_bytes = DEVICE_CACHE_BYTES
            if self.device.type == "cuda":
                cache_bytes = min(cache_bytes, torch.cuda.mem_get_info(self.device)[0] // 4)
        self.cache_left = cache_bytes  # bytes of device memory still free for held crops
        self.held: dict[int, _HeldBatches] = {}  # by id() of a set of self.sets
        self._reserved: set[int] = set()  # sets whose crops will be held after a whole pass

    def _loader(self, dataset: Dataset) -> DataLoader:
        key = id(dataset)
        if key not in self.held and isinstance(dataset, TensorDataset):
            images, labels = (t.to(self.device) for t in dataset.tensors[:2])
            self.held[key] = _HeldBatches(images, labels, self.batch_size, None)
        if key in self.held:
            return DataLoader(self.held[key], batch_size=None)
        if not (hasattr(dataset, "dataset") and hasattr(dataset, "indices")):
            return super()._loader(dataset)  # not a set of chosen images: the CPU way
        decoded = _Decoded(dataset.dataset, list(dataset.indices))
        size = 3 * self.crop_size**2 * len(decoded)
        if key not in self._reserved and size <= self.cache_left:
            self.cache_left -= size
            self._reserved.add(key)
        keep = key if key in self._reserved else None
        return DataLoader(_StreamedBatches(self, decoded, keep), batch_size=None)


def on_device(evaluator: KnnEvaluator, pipeline: PipelineConfig) -> DeviceKnnEvaluator:
    """The evaluator with its centre crops made on its device (its device must be the training
    device: the crops go straight into the teacher)."""
    return DeviceKnnEvaluator(evaluator, pipeline)
