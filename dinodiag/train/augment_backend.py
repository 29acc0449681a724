"""Which backend cuts and colours a run's views (``data.augment_device``): the DataLoader
workers on the CPU, or the training device on the whole batch
(:mod:`dinodiag.train.device_batches`).

A CPU worker reaches roughly 60-110 multi-crop images/s; a GPU trains ViT-S/16 at thousands, so
on a GPU the default (``auto``) is the device.
"""

from __future__ import annotations

from typing import Any

import torch

from dinodiag.errors import TrainingError

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
