"""CIFAR-10, CIFAR-100 and STL-10 from a local root, in torchvision's on-disk layout.

The files are read here in their documented formats (CIFAR: Python pickles of
(N, 3072) uint8 rows; STL-10: raw column-major uint8 binaries), so that a root
prepared by torchvision, by hand or by a test works the same; torchvision's own
classes insist on the official MD5 sums. torchvision is used only to download, and
only when asked (``download=True``, CLI ``--download``). The pickles are read by an unpickler
that builds only what CIFAR's files hold (dicts, lists, strings, numbers and NumPy arrays), so
a file that tries to call anything else (``os.system``, ...) is refused instead of run
(torchvision's own reader would run it).

Splits: ``"train"``; ``"val"`` (alias ``"test"``) is the official test set; STL-10 also
has ``"unlabeled"`` (100,000 images, memory-mapped, no labels).

Expected layout under ROOT (ROOT may also be the inner folder itself):

- ``cifar10:ROOT``: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``,
  ``test_batch``, ``batches.meta``
- ``cifar100:ROOT``: ``cifar-100-python/`` with ``train``, ``test``, ``meta``
- ``stl10:ROOT``: ``stl10_binary/`` with ``train_X.bin``, ``train_y.bin``, ``test_X.bin``,
  ``test_y.bin``, ``unlabeled_X.bin``, ``class_names.txt``
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dinodiag.data.base import ImageDataset
from dinodiag.errors import DataError

_STL_SIDE = 96  # STL-10 images are 96 x 96 x 3
_STL_BYTES = 3 * _STL_SIDE * _STL_SIDE


@dataclass(frozen=True)
class _CifarLayout:
    title: str  # as written in messages
    folder: str  # inner folder name under ROOT
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    names_key: str  # key of the class-name list in the meta pickle
    labels_key: str  # key of the label list in each batch pickle
    torchvision_class: str  # name in torchvision.datasets, for downloading


_CIFAR = {
    "cifar10": _CifarLayout(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "label_names",
        "labels",
        "CIFAR10",
    ),
    "cifar100": _CifarLayout(
        "CIFAR-100",
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        "fine_label_names",
        "fine_labels",
        "CIFAR100",
    ),
}
_STL_FILES = {
    "train": ("train_X.bin", "train_y.bin"),
    "val": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin", None),
}
_SPLIT_ALIASES = {"train": "train", "val": "val", "test": "val", "validation": "val"}


class ArrayDataset(ImageDataset):
    """Images held in a uint8 array (N, H, W, 3) or produced by an indexable of HWC arrays."""

    def __init__(
        self,
        name: str,
        split: str,
        images: Any,
        labels: np.ndarray | None,
        classes: list[str] | None,
        source: str,
    ) -> None:
        super().__init__(name, classes, split)
        self._images = images  # (N, H, W, 3) uint8, indexable
        self._labels = labels  # (N,) int64, or None when unlabelled
        self._source = source  # prefix of describe(), e.g. "cifar10:/root train"

    def __len__(self) -> int:
        return len(self._images)

    def label(self, index: int) -> int:
        return -1 if self._labels is None else int(self._labels[index])

    def _load(self, index: int) -> tuple[Image.Image, int]:
        pixels = np.ascontiguousarray(self._images[index])  # (H, W, 3) uint8
        return Image.fromarray(pixels, mode="RGB"), self.label(index)

    def _size(self, index: int) -> tuple[int, int]:
        height, width = self._images[index].shape[:2]
        return (int(width), int(height))

    def describe(self, index: int) -> str:
        text = f"{self._source} #{index}"
        label = self.label(index)
        if self.classes is not None and 0 <= label < len(self.classes):
            text += f" (class {self.classes[label]!r})"
        return text


def _split_name(kind: str, split: str, allowed: tuple[str, ...]) -> str:
    canonical = _SPLIT_ALIASES.get(split, split)
    if canonical not in allowed:
        raise DataError(
            f"split {split!r} is not available for {kind}: use one of {', '.join(allowed)} "
            "('val' is the official test set)"
        )
    return canonical


def _find_folder(root: Path, inner: str, marker: str) -> Path | None:
    """ROOT/inner, or ROOT itself when it already is the inner folder (holds ``marker``)."""
    for candidate in (root / inner, root):
        if (candidate / marker).is_file():
            return candidate
    return None


def _missing_message(title: str, root: Path, inner: str, files: list[str], kind: str) -> str:
    return (
        f"{title} files not found under {root}: expected {root / inner}/ with "
        f"{', '.join(files)}. Pass download=True (CLI: --download) to fetch them with "
        f"torchvision (needs internet), or copy them there, or point {kind}:ROOT at the "
        f"folder that contains {inner}/."
    )


def _download(title: str, class_name: str, root: Path, **kwargs: Any) -> None:
    """Fetch a dataset with torchvision into ``root``; offline and other failures -> DataError."""
    from torchvision import datasets  # imported here: only downloading needs it

    try:
        getattr(datasets, class_name)(root=str(root), download=True, **kwargs)
    except Exception as error:  # noqa: BLE001 - network errors come in many types
        raise DataError(
            f"could not download {title} into {root}: {type(error).__name__}: {error}. "
            "Check the internet connection (or copy the files there by hand) and try again."
        ) from None


# The only globals CIFAR's pickles name (NumPy arrays; protocol-2 bytes); anything else in a
# pickle is a call the file wants to make, and is refused.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only; any other global raises UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"it asks for {module}.{name}, which a CIFAR file never needs (a pickle that "
                "names a function runs it when loaded): not loaded"
            )
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            entry = _ArrayUnpickler(handle, encoding="latin1").load()
    except Exception as error:  # noqa: BLE001 - unpickling raises many types
        raise DataError(
            f"{path} is not a readable CIFAR pickle ({type(error).__name__}: {error}); "
            "delete it and download again (download=True)"
        ) from None
    if not isinstance(entry, dict):
        raise DataError(f"{path} is not a CIFAR pickle: it holds a {type(entry).__name__}")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in entry.items()}


def open_cifar(kind: str, root: str | os.PathLike[str], split: str, download: bool) -> ArrayDataset:
    """CIFAR-10 (``kind="cifar10"``) or CIFAR-100 (``"cifar100"``) from ``root``."""
    layout = _CIFAR[kind]
    split = _split_name(layout.title, split, ("train", "val"))
    base = Path(root).expanduser().absolute()
    needed = [layout.meta_file, *(layout.train_files if split == "train" else layout.test_files)]
    folder = _find_folder(base, layout.folder, layout.meta_file)
    if folder is None or any(not (folder / name).is_file() for name in needed):
        if not download:
            files = [layout.meta_file, *layout.train_files, *layout.test_files]
            raise DataError(_missing_message(layout.title, base, layout.folder, files, kind))
        _download(layout.title, layout.torchvision_class, base, train=split == "train")
        folder = base / layout.folder
    meta = _read_pickle(folder / layout.meta_file)
    if layout.names_key not in meta:
        raise DataError(f"{folder / layout.meta_file} has no {layout.names_key!r} list")
    classes = [str(name) for name in meta[layout.names_key]]
    images, labels = [], []
    for name in needed[1:]:
        entry = _read_pickle(folder / name)
        if "data" not in entry or layout.labels_key not in entry:
            raise DataError(
                f"{folder / name} is not a {layout.title} batch: it lacks 'data' or "
                f"{layout.labels_key!r}"
            )
        data = np.asarray(entry["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3072 or len(entry[layout.labels_key]) != len(data):
            raise DataError(
                f"{folder / name}: data of shape {data.shape} with "
                f"{len(entry[layout.labels_key])} labels; expected (N, 3072) and N labels"
            )
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # (N, 32, 32, 3)
        labels.append(np.asarray(entry[layout.labels_key], dtype=np.int64))
    label_array = np.concatenate(labels)
    if label_array.size and (label_array.min() < 0 or label_array.max() >= len(classes)):
        raise DataError(f"{folder}: labels outside 0..{len(classes) - 1} in the {split} batches")
    source = f"{kind}:{base} {split}"
    return ArrayDataset(
        f"{kind}:{base} ({split})", split, np.concatenate(images), label_array, classes, source
    )


class _StlImages:
    """STL-10 images from a raw binary file, memory-mapped lazily (HWC arrays on indexing).

    The file is column-major (N, 3, W, H); pickling (DataLoader workers) drops the map and
    each process reopens it, instead of copying gigabytes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        size = path.stat().st_size
        if size % _STL_BYTES:
            raise DataError(
                f"{path} has {size} bytes, not a multiple of {_STL_BYTES} (one 96x96 RGB "
                "image): the file is truncated; download it again"
            )
        self.count = size // _STL_BYTES
        if self.count == 0:
            raise DataError(f"{path} is empty (0 images): download it again")
        self._map: np.ndarray | None = None

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> np.ndarray:
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r").reshape(
                -1, 3, _STL_SIDE, _STL_SIDE
            )
        return self._map[index].transpose(2, 1, 0)  # (3, W, H) -> (H, W, 3)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_map": None}


def open_stl10(root: str | os.PathLike[str], split: str, download: bool) -> ArrayDataset:
    """STL-10 from ``root``: splits train, val (the test set) and unlabeled."""
    split = _split_name("STL-10", split, ("train", "val", "unlabeled"))
    base = Path(root).expanduser().absolute()
    images_file, labels_file = _STL_FILES[split]
    needed = ["class_names.txt", images_file] + ([labels_file] if labels_file else [])
    folder = _find_folder(base, "stl10_binary", "class_names.txt")
    if folder is None or any(not (folder / name).is_file() for name in needed):
        if not download:
            files = ["class_names.txt"] + [f for pair in _STL_FILES.values() for f in pair if f]
            raise DataError(_missing_message("STL-10", base, "stl10_binary", files, "stl10"))
        torchvision_split = {"val": "test"}.get(split, split)
        _download("STL-10", "STL10", base, split=torchvision_split)
        folder = base / "stl10_binary"
    names_text = (folder / "class_names.txt").read_text(encoding="utf-8", errors="replace")
    classes = [line.strip() for line in names_text.splitlines() if line.strip()]
    images = _StlImages(folder / images_file)
    labels = None
    if labels_file is not None:
        labels = np.fromfile(folder / labels_file, dtype=np.uint8).astype(np.int64) - 1
        if len(labels) != len(images):
            raise DataError(
                f"{folder / labels_file} has {len(labels)} labels for {len(images)} images in "
                f"{folder / images_file}: one of the files is truncated; download again"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(
                f"{folder / labels_file}: labels outside 1..{len(classes)} (class_names.txt "
                f"lists {len(classes)} classes)"
            )
    source = f"stl10:{base} {split}"
    return ArrayDataset(
        f"stl10:{base} ({split})",
        split,
        images,
        labels,
        classes if labels is not None else None,
        source,
    )
