"""CIFAR-10/100 and STL-10 read from tiny fake roots in torchvision's on-disk format."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torchvision

from dinodiag.data import open_cifar, open_dataset, open_stl10
from dinodiag.errors import DataError
from tests.facts import assert_mentions

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer"]


def _cifar_rows(count: int, offset: int) -> np.ndarray:
    """(count, 3072) rows: image i has red = offset + i everywhere, and one marked pixel."""
    images = np.zeros((count, 3, 32, 32), dtype=np.uint8)
    for index in range(count):
        images[index, 0] = offset + index  # red plane
        images[index, 1, 0, 1] = 200  # green at row 0, column 1
    return images.reshape(count, 3072)


def _dump(path: Path, entry: dict, bytes_keys: bool = False) -> None:
    if bytes_keys:
        entry = {key.encode(): value for key, value in entry.items()}
    path.write_bytes(pickle.dumps(entry))


def make_cifar10(root: Path, per_batch: int = 2) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    _dump(folder / "batches.meta", {"label_names": CIFAR10_NAMES})
    for batch in range(1, 6):
        rows = _cifar_rows(per_batch, 10 * batch)
        labels = [(batch + i) % 5 for i in range(per_batch)]
        _dump(folder / f"data_batch_{batch}", {"data": rows, "labels": labels}, bytes_keys=True)
    _dump(folder / "test_batch", {"data": _cifar_rows(3, 100), "labels": [0, 1, 2]})
    return root


def make_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _dump(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    _dump(folder / "train", {"data": _cifar_rows(4, 0), "fine_labels": [99, 5, 0, 42]})
    _dump(folder / "test", {"data": _cifar_rows(2, 50), "fine_labels": [1, 2]})
    return root


def _stl_images(count: int, offset: int) -> np.ndarray:
    """(count, 96, 96, 3) HWC images with a left-bright / right-dark blue plane."""
    images = np.zeros((count, 96, 96, 3), dtype=np.uint8)
    for index in range(count):
        images[index, :, :, 0] = offset + index
        images[index, :, :48, 2] = 255
    return images


def make_stl10(root: Path) -> Path:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    (folder / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)) + "\n")
    for prefix, count, offset in (("train", 3, 10), ("test", 2, 20), ("unlabeled", 4, 30)):
        column_major = _stl_images(count, offset).transpose(0, 3, 2, 1)  # (N, 3, W, H)
        (folder / f"{prefix}_X.bin").write_bytes(column_major.tobytes())
    (folder / "train_y.bin").write_bytes(bytes([1, 10, 3]))
    (folder / "test_y.bin").write_bytes(bytes([2, 2]))
    return root


# -------------------------------------------------------------------------- CIFAR
def test_cifar10_train_and_val(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path / "c10")
    train = open_cifar("cifar10", root, "train", download=False)
    assert len(train) == 10 and train.classes == CIFAR10_NAMES
    image, label = train[0]
    assert image.mode == "RGB" and image.size == (32, 32)
    assert image.getpixel((1, 0)) == (10, 200, 0)  # (x=1, y=0): channel planes are row-major
    assert image.getpixel((0, 1)) == (10, 0, 0)
    assert label == 1 and train.label(0) == 1
    assert train[9][0].getpixel((5, 5))[0] == 51  # last image of data_batch_5
    assert_mentions(train.describe(0), f"cifar10:{root.absolute()} ", "train #0", "'automobile'")
    assert train.name == f"cifar10:{root.absolute()} (train)"
    assert train.image_sizes(limit=2) == [(32, 32), (32, 32)]
    val = open_cifar("cifar10", root, "test", download=False)
    assert len(val) == 3 and val.split == "val" and val.labels() == [0, 1, 2]
    assert val[2][0].getpixel((3, 3))[0] == 102


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    root = make_cifar100(tmp_path)
    train = open_dataset(f"cifar100:{root}", "train")
    assert len(train.classes or []) == 100
    assert train.labels() == [99, 5, 0, 42]
    assert train.describe(0).endswith("(class 'c99')")
    assert len(open_dataset(f"cifar100:{root}", "val")) == 2


def test_root_may_be_the_inner_folder(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    dataset = open_dataset(f"cifar10:{root / 'cifar-10-batches-py'}", "val")
    assert len(dataset) == 3


def test_missing_cifar_files_explain_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        open_dataset(f"cifar10:{tmp_path}")
    message = str(info.value)
    assert str(tmp_path) in message
    assert "cifar-10-batches-py" in message and "data_batch_1" in message
    assert "test_batch" in message and "batches.meta" in message
    assert "download=True" in message and "--download" in message


def test_one_missing_batch_is_noticed_for_its_split(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert len(open_dataset(f"cifar10:{root}", "val")) == 3  # test split is complete
    with pytest.raises(DataError, match="not found"):
        open_dataset(f"cifar10:{root}", "train")


def test_corrupt_cifar_pickle_names_the_file(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    bad = root / "cifar-10-batches-py" / "test_batch"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="not a readable CIFAR pickle") as info:
        open_dataset(f"cifar10:{root}", "val")
    assert str(bad) in str(info.value)


class _Planted:
    """What a hostile 'CIFAR file' holds: unpickling it would call os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


@pytest.mark.parametrize("where", ["meta", "inside the data"])
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path: Path, where: str) -> None:
    root = make_cifar10(tmp_path / "c10")
    marker = tmp_path / "pwned"
    planted = _Planted(f"touch {marker}")
    folder = root / "cifar-10-batches-py"
    if where == "meta":
        (folder / "batches.meta").write_bytes(pickle.dumps(planted))
    else:
        entry = {"data": _cifar_rows(3, 100), "labels": [0, 1, 2], "extra": [planted]}
        (folder / "test_batch").write_bytes(pickle.dumps(entry))
    with pytest.raises(DataError) as info:
        open_dataset(f"cifar10:{root}", "val")
    assert not marker.exists()
    message = str(info.value)
    assert "not a readable CIFAR pickle" in message
    assert "posix.system" in message and "a CIFAR file never needs" in message


def test_pickles_as_python_2_wrote_them_still_load(tmp_path: Path) -> None:
    # The real files are protocol-2 pickles with bytes keys and latin-1 strings.
    root = make_cifar10(tmp_path)
    folder = root / "cifar-10-batches-py"
    entry = {b"data": _cifar_rows(3, 100), b"labels": [0, 1, 2], b"batch_label": b"testing"}
    (folder / "test_batch").write_bytes(pickle.dumps(entry, protocol=2))
    meta = {b"label_names": CIFAR10_NAMES, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    dataset = open_dataset(f"cifar10:{root}", "val")
    assert len(dataset) == 3 and dataset[2][0].getpixel((3, 3))[0] == 102
    assert dataset.classes == CIFAR10_NAMES


def test_cifar_bad_split(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    with pytest.raises(DataError, match="train, val"):
        open_dataset(f"cifar10:{root}", "unlabeled")


def test_download_is_only_attempted_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict] = []

    class FakeCIFAR10:
        def __init__(self, root: str, download: bool, train: bool) -> None:
            calls.append({"root": root, "download": download, "train": train})
            make_cifar10(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(DataError, match="download=True"):
        open_dataset(f"cifar10:{tmp_path}")
    assert calls == []
    dataset = open_dataset(f"cifar10:{tmp_path}", download=True)
    assert len(dataset) == 10
    assert calls == [{"root": str(tmp_path.absolute()), "download": True, "train": True}]
    open_dataset(f"cifar10:{tmp_path}", download=True)  # files present now: no second fetch
    assert len(calls) == 1


def test_offline_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class OfflineSTL10:
        def __init__(self, **kwargs: object) -> None:
            raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "STL10", OfflineSTL10)
    with pytest.raises(DataError, match="could not download STL-10") as info:
        open_dataset(f"stl10:{tmp_path}", download=True)
    assert "name resolution" in str(info.value) and str(tmp_path) in str(info.value)


# ------------------------------------------------------------------------- STL-10
def test_stl10_splits_and_pixel_layout(tmp_path: Path) -> None:
    root = make_stl10(tmp_path)
    train = open_stl10(root, "train", download=False)
    assert len(train) == 3 and train.classes == [f"s{i}" for i in range(10)]
    assert train.labels() == [0, 9, 2]  # 1-based on disk
    image, label = train[1]
    assert image.size == (96, 96) and label == 9
    assert image.getpixel((10, 50)) == (11, 0, 255)  # left half has blue
    assert image.getpixel((80, 50)) == (11, 0, 0)
    assert train.describe(1).endswith("(class 's9')")
    val = open_dataset(f"stl10:{root}", "val")
    assert val.labels() == [1, 1]
    unlabeled = open_dataset(f"stl10:{root}", "unlabeled")
    assert len(unlabeled) == 4 and not unlabeled.has_labels and unlabeled.classes is None
    assert unlabeled[3][1] == -1 and unlabeled[3][0].getpixel((0, 0)) == (33, 0, 255)


def test_stl10_pickles_without_copying_the_map(tmp_path: Path) -> None:
    dataset = open_stl10(make_stl10(tmp_path), "unlabeled", download=False)
    dataset[0]  # opens the memory map
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone[2][0].getpixel((0, 0)) == dataset[2][0].getpixel((0, 0))


def test_stl10_truncated_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        open_dataset(f"stl10:{tmp_path}")
    assert "stl10_binary" in str(info.value) and "train_X.bin" in str(info.value)
    assert "--download" in str(info.value)
    root = make_stl10(tmp_path)
    x_file = root / "stl10_binary" / "train_X.bin"
    x_file.write_bytes(x_file.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        open_dataset(f"stl10:{root}")
    (root / "stl10_binary" / "test_y.bin").write_bytes(bytes([1]))
    with pytest.raises(DataError, match="1 labels for 2 images"):
        open_dataset(f"stl10:{root}", "val")
