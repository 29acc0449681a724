"""Decoding only: what the DataLoader workers of the on-device backend do (the training process
then cuts and colours the views, :mod:`dinodiag.train.device_augment`).

A decoded batch (what the loader yields; :class:`DecodedCollate`)::

    {"images": (B, 3, H, W) uint8 (equal sizes, or edge-padded to the largest) or a list of
     (3, Hi, Wi) uint8, "sizes": (B, 2) long (width, height before padding),
     "indices": (B,) long, "masks": (G * B, N) bool or None, "view_seed": int, "epoch": int}

Reproducibility: the view parameters of a batch come from ``mix_seed(run seed, epoch, first
index, 2)`` and its iBOT masks from ``mix_seed(run seed, epoch, first index, 1)`` (the CPU
path's mask seed), so a resumed run sees the batches the interrupted one would have seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dinodiag.train.data import MaskSpec, mix_seed
from dinodiag.train.masking import generate_ibot_masks

#: A batch of mixed sizes is padded into one tensor when the padding adds at most this factor
#: of pixels (one copy to the device); beyond, it stays a list (a 4000 px photo among 400 px
#: ones would otherwise make every image 4000 px).
PAD_LIMIT = 2.0


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
