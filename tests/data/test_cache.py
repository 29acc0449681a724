"""The decoded-image cache: byte budget, hits and misses, read-only sharing, dataset wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ListDataset, make_image

from dinodiag.data.cache import CachedDataset, DecodedImageCache
from dinodiag.errors import ConfigError


def test_budget_is_respected_and_rejections_counted() -> None:
    cache = DecodedImageCache(max_bytes=2 * 20 * 10 * 3)  # room for two 20 x 10 images
    for key in range(3):
        array = cache.put(key, make_image(20, 10, seed=key))
        assert array.shape == (10, 20, 3) and array.dtype == np.uint8
    assert len(cache) == 2 and 2 not in cache
    assert cache.stats.as_dict() == {
        "items": 2,
        "bytes": 1200,
        "hits": 0,
        "misses": 0,
        "rejected": 1,
    }
    assert cache.get(0) is not None and cache.get(2) is None
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    with pytest.raises(ValueError):
        cache.get(0)[0, 0, 0] = 1  # shared entries are read-only
    cache.clear()
    assert len(cache) == 0 and cache.stats.bytes == 0
    with pytest.raises(ConfigError, match="max_bytes"):
        DecodedImageCache(-1)


def test_cached_dataset_decodes_once_and_serves_identical_pixels() -> None:
    images = [make_image(30, 20, seed=s).convert("L") for s in range(3)]  # non-RGB: converted
    calls = []

    class Counting(ListDataset):
        def __getitem__(self, index: int):
            calls.append(index)
            return super().__getitem__(index)

    data = CachedDataset(Counting(images), max_bytes=10**6)
    stats = data.prefill()
    assert stats["items"] == 3 and calls == [0, 1, 2]
    image, label = data[1]
    assert image.mode == "RGB" and image.size == (30, 20) and label == 1
    assert np.array_equal(np.asarray(image), np.asarray(images[1].convert("RGB")))
    tensor, _ = data.tensor(2)
    assert tensor.shape == (3, 20, 30) and tensor.dtype == torch.uint8
    assert calls == [0, 1, 2] and data.cache.stats.hits >= 2
    assert len(data) == 3 and data.describe(0) == "image #0"  # forwarded to the dataset


def test_items_over_budget_are_decoded_each_time() -> None:
    data = CachedDataset(ListDataset([make_image(40, 40)]), max_bytes=100)
    first, _ = data[0]
    second, _ = data[0]
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert data.cache.stats.rejected == 2 and len(data.cache) == 0
