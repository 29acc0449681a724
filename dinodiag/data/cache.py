"""An optional in-memory cache of decoded images, for datasets that fit in RAM.

JPEG decoding is a large share of a data loader's time (often as much as the
augmentation). When the decoded dataset fits in memory, decode each image once and
keep it as a uint8 ``(H, W, 3)`` array (3 bytes per pixel; an ImageNet-size image is
~0.5 MB, CIFAR-10 is 150 MB in all).

- :class:`DecodedImageCache`: a byte-budgeted store; items that would exceed the
  budget are not stored (counted in ``stats``), nothing is evicted.
- :class:`CachedDataset`: wraps any dataset (``ds[i] -> (PIL image, label)``) and
  serves cached images; :meth:`CachedDataset.prefill` decodes everything up front in
  the main process, so DataLoader workers started afterwards (fork) share the pages
  instead of each filling its own copy (without a prefill, each worker process fills
  its own cache: budget x workers). :meth:`CachedDataset.tensor` returns the image
  as a ``(3, H, W)`` uint8 tensor for :class:`dinodiag.augment.gpu.multicrop.GPUMultiCrop`.

Example::

    data = CachedDataset(open_dataset("photos/"), max_bytes=8 * 2**30)
    data.prefill()                       # decode once
    data.cache.stats                     # {'items': ..., 'bytes': ..., 'hits': ..., ...}
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from dinodiag.errors import ConfigError


class ImageDataset(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[Image.Image, int]: ...


@dataclass
class CacheStats:
    """Counters of a :class:`DecodedImageCache`."""

    items: int = 0  # images stored
    bytes: int = 0  # bytes of pixel data stored
    hits: int = 0  # lookups answered from memory
    misses: int = 0  # lookups that had to decode
    rejected: int = 0  # images not stored because the budget was full

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class DecodedImageCache:
    """uint8 ``(H, W, 3)`` arrays by key, up to ``max_bytes`` of pixel data."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ConfigError(
                f"cache max_bytes = {max_bytes} is invalid: give a size >= 0 in bytes."
            )
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._items: dict[Hashable, np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> np.ndarray | None:
        """The stored array (read-only) or None; counts a hit or a miss."""
        array = self._items.get(key)
        with self._lock:
            if array is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        return array

    def put(self, key: Hashable, image: Image.Image | np.ndarray) -> np.ndarray:
        """Store ``image`` as uint8 RGB if it fits the budget; return the array either way."""
        array = _as_rgb_array(image)
        with self._lock:
            if key in self._items:
                return self._items[key]
            if self.stats.bytes + array.nbytes > self.max_bytes:
                self.stats.rejected += 1
                return array
            array.setflags(write=False)  # shared by every reader: nobody may change it
            self._items[key] = array
            self.stats.items += 1
            self.stats.bytes += array.nbytes
        return array

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.stats = CacheStats()


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB") if image.mode != "RGB" else image)
    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {array.shape} {array.dtype}")
    return array


class CachedDataset:
    """``dataset`` with decoded images kept in memory (up to ``max_bytes``); same interface.

    Attributes other than ``__len__`` / ``__getitem__`` (``classes``, ``describe``,
    ``problems`` ...) are forwarded to the wrapped dataset.
    """

    def __init__(self, dataset: ImageDataset, max_bytes: int = 4 * 2**30) -> None:
        self.dataset = dataset
        self.cache = DecodedImageCache(max_bytes)
        self._labels: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dataset, name)

    def array(self, index: int) -> tuple[np.ndarray, int]:
        """``(uint8 (H, W, 3) array, label)``, decoding on the first access."""
        array = self.cache.get(index)
        if array is not None:
            return array, self._labels[index]
        image, label = self.dataset[index]
        self._labels[index] = label
        return self.cache.put(index, image), label

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        array, label = self.array(index)
        return Image.fromarray(array, "RGB"), label

    def tensor(self, index: int) -> tuple[torch.Tensor, int]:
        """``((3, H, W) uint8 tensor, label)``: a copy (cached arrays are read-only)."""
        array, label = self.array(index)
        return torch.from_numpy(array.copy()).permute(2, 0, 1), label

    def prefill(
        self,
        indices: Iterable[int] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Decode ``indices`` (all by default) now; returns the cache statistics."""
        chosen = list(range(len(self))) if indices is None else list(indices)
        for done, index in enumerate(chosen, start=1):
            self.array(index)
            if progress is not None:
                progress(done, len(chosen))
        return self.cache.stats.as_dict()
