"""Partial downloads pre-allocated to their final size: an image header, then gigabytes of zeros.

The files are sparse (``truncate``): they cost no disk. PIL searched such a tail one byte at a
time (9.2 s per 50 MB, half an hour for 20 GB); now a file over the size limit is left out at
scan time, and a header searched byte by byte past the limit is refused in a fraction of a
second. Nothing is skipped silently: each file is a named problem.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from dinodiag.data import FolderDataset, ImageLoadError, load_image, loading, read_image_size
from tests.facts import assert_mentions

GIB = 2**30


def _encoded(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (100, 150, 200)).save(buffer, fmt)
    return buffer.getvalue()


def _padded(path: Path, head: bytes, size: int) -> Path:
    """``head``, then zeros up to ``size`` bytes (sparse: no disk used)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def _cut_jpeg() -> bytes:
    """A JPEG cut off before its frame header (SOF0): what a partial download starts with."""
    data = _encoded("JPEG")
    return data[: data.index(b"\xff\xc0")]


def test_a_file_over_the_size_limit_is_left_out_with_a_named_problem(tmp_path, monkeypatch):
    Image.new("RGB", (32, 32)).save(tmp_path / "good.png")
    big = _padded(tmp_path / "download.jpg", _cut_jpeg(), 5 * GIB)
    start = time.monotonic()
    dataset = FolderDataset(tmp_path, split="all")
    assert len(dataset) == 1 and dataset.image_sizes() == [(32, 32)]
    [problem] = dataset.problems
    assert problem.path == str(big)
    assert problem.reason.startswith("file too large: ")
    assert_mentions(problem.reason, "5.0 GiB", "1.0 GiB", "MAX_IMAGE_FILE_BYTES")
    for read in (load_image, read_image_size):  # asked for directly: the same reason
        with pytest.raises(ImageLoadError, match="file too large: 5.0 GiB"):
            read(big)
    assert time.monotonic() - start < 5  # nothing of the 5 GiB was read
    # the limit is a module global, read at each call, as PIL's MAX_IMAGE_PIXELS is
    monkeypatch.setattr(loading, "MAX_IMAGE_FILE_BYTES", 8 * GIB)
    dataset = FolderDataset(tmp_path, split="all")
    assert len(dataset) == 2 and dataset.problems == []
    start = time.monotonic()
    assert dataset.image_sizes() == [(32, 32)]  # the padded file: refused by its header read
    assert time.monotonic() - start < 5
    [problem] = dataset.problems
    assert problem.path == str(big) and problem.reason.startswith("no JPEG header found")


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("cut.jpg", _cut_jpeg()),
        ("cut.gif", _encoded("GIF")[:16]),  # PIL's GIF reader skips unknown blocks byte by byte
    ],
    ids=["jpeg", "gif"],
)
def test_a_header_searched_byte_by_byte_is_refused_quickly(tmp_path, name: str, head: bytes):
    padded = _padded(tmp_path / name, head, 200 * 2**20)  # under the size limit
    for read in (read_image_size, load_image):
        start = time.monotonic()
        with pytest.raises(ImageLoadError) as info:
            read(padded)
        assert_mentions(str(info.value), "header found", "262,144")
        assert time.monotonic() - start < 3  # was about 17 s for 200 MB


def test_a_whole_image_followed_by_zeros_still_loads(tmp_path):
    # the header is complete: the zeros are never searched, the pixels decode
    padded = _padded(tmp_path / "whole.jpg", _encoded("JPEG"), 200 * 2**20)
    assert read_image_size(padded) == (64, 48)
    assert load_image(padded).size == (64, 48)
