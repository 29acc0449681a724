"""Image folders: class sub-folders give labels, a flat folder gives unlabelled images.

Layout rules (decided from the file names only, no file is opened at scan time):

- images are files whose names end in one of :data:`IMAGE_EXTENSIONS` (any case); other
  files are ignored, as are hidden files and folders (``.DS_Store``, ``.ipynb_checkpoints``)
  and ``__MACOSX``;
- when every image lies inside a sub-folder, each top-level sub-folder is a class (sorted
  by name, label = position) and its images are found recursively; a sub-folder without
  images is reported as a problem and is not a class;
- when the folder itself holds images, it is unlabelled and images are found recursively;
- zero-byte image files, and files larger than ``loading.MAX_IMAGE_FILE_BYTES`` (1 GiB: a partial
  download pre-allocated to its final size), are reported at scan time and left out;
- symbolic links are followed only when they point inside the folder (a link to a class
  folder next to it, a shared image): a link leading out of it, and a broken link, is
  reported as a problem and not followed, so that a folder path (typed in the app, say)
  reads the files under that folder and nothing else. Each load checks again, in case a
  link changed after the scan.

Splits are deterministic per class: the images of a class are ordered by a hash of their
path relative to the root and the first ``round(n * val_fraction)`` (at most n - 1) form
``"val"``; ``"train"`` is the rest and ``"all"`` is everything. A class with fewer than
3 images has no validation image (with the default fraction 0.2).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from dinodiag.data.base import ImageDataset, LoadProblem
from dinodiag.data.loading import (
    IMAGE_EXTENSIONS,
    ImageLoadError,
    is_image_name,
    load_image,
    read_image_size,
    too_large_reason,
)
from dinodiag.errors import DataError
from dinodiag.printable import printable

FOLDER_SPLITS = ("train", "val", "all")  # what split= accepts for folders
_SKIPPED_FOLDERS = ("__MACOSX",)  # macOS zip residue, never images


@dataclass(frozen=True)
class SkippedFile:
    """An image file the scan left out by its size alone (0 bytes, or too large to read)."""

    relative: str  # POSIX path relative to the folder
    label: int  # its class (-1 when unlabelled), so that splits do not shift
    reason: str  # "empty file (0 bytes)", "file too large: ..."


@dataclass
class FolderScan:
    """What a scan of an image folder found (no file opened)."""

    root: Path  # the folder scanned
    paths: list[str] = field(default_factory=list)  # relative POSIX paths of usable images
    labels: list[int] = field(default_factory=list)  # label per path (-1 when unlabelled)
    skipped: list[SkippedFile] = field(default_factory=list)  # empty or too large: left out
    classes: list[str] | None = None  # class names, None when unlabelled
    problems: list[LoadProblem] = field(default_factory=list)  # folder-level problems
    other_files: int = 0  # non-image files seen (ignored)


def scan_folder(root: str | os.PathLike[str]) -> FolderScan:
    """Find the images of ``root`` and their classes; raises DataError when there are none."""
    folder = Path(root).expanduser()
    if not folder.exists():
        raise DataError(
            f"image folder {folder} does not exist: check the path, or use 'sample' for the "
            "bundled sample images or 'generated' for a synthetic dataset"
        )
    if not folder.is_dir():
        raise DataError(
            f"{folder} is a file, not a folder: pass the folder that holds the images "
            "(one sub-folder per class for labels)"
        )
    try:
        top_entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        raise DataError(f"cannot list image folder {folder}: {error.strerror or error}") from None
    scan = FolderScan(root=folder)
    real_root = folder.resolve()
    usable = [e for e in top_entries if _visible(e.name) and _link_inside(e, real_root, scan)]
    top_files = [entry for entry in usable if _is_file(entry)]
    top_dirs = [entry for entry in usable if _is_dir(entry)]
    top_images = [entry for entry in top_files if is_image_name(entry.name)]
    scan.other_files = len(top_files) - len(top_images)
    if top_images or not top_dirs:
        # Unlabelled: the folder itself and everything below it.
        found = _walk(Path(folder), "", scan, visited=set(), real_root=real_root)
        for relative, size in found:
            _add(scan, relative, size, -1)
    else:
        scan.classes = []
        for entry in top_dirs:
            found = _walk(
                Path(entry.path), entry.name + "/", scan, visited=set(), real_root=real_root
            )
            if not found:
                scan.problems.append(
                    LoadProblem(
                        entry.path,
                        "class folder has no images; it is not used as a class "
                        "(remove it or add images)",
                    )
                )
                continue
            label = len(scan.classes)
            scan.classes.append(entry.name)
            for relative, size in found:
                _add(scan, relative, size, label)
    if not scan.paths:
        _raise_no_images(folder, top_entries, scan)
    return scan


def _raise_no_images(folder: Path, top_entries: list[os.DirEntry[str]], scan: FolderScan) -> None:
    if not top_entries:
        raise DataError(
            f"image folder {folder} is empty: put images in it (one sub-folder per class for "
            "labels), or use 'sample' / 'generated'"
        )
    if scan.skipped:
        first = scan.skipped[0]
        raise DataError(
            f"image folder {folder} has only empty (0-byte) or too large image files, e.g. "
            f"{folder / first.relative}: {first.reason}; copy the images again"
        )
    searched = f" and in {len(scan.problems)} sub-folder(s)" if scan.problems else ""
    raise DataError(
        f"image folder {folder} has no images: looked for files ending in "
        f"{', '.join(IMAGE_EXTENSIONS)} (any case){searched}, found {scan.other_files} "
        "other file(s) at the top level; put images in it, one sub-folder per class for labels"
    )


def _add(scan: FolderScan, relative: str, size: int, label: int) -> None:
    reason = "empty file (0 bytes)" if size == 0 else too_large_reason(size)
    if reason is not None:
        scan.skipped.append(SkippedFile(relative, label, reason))
    else:
        scan.paths.append(relative)
        scan.labels.append(label)


def _visible(name: str) -> bool:
    return not name.startswith(".") and name not in _SKIPPED_FOLDERS


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _link_inside(entry: os.DirEntry[str], real_root: Path, scan: FolderScan) -> bool:
    """False (and a problem recorded) for a symbolic link that is broken or leads out of the
    folder; True for any other entry."""
    try:
        if not entry.is_symlink():
            return True
        target = Path(entry.path).resolve(strict=True)
    except (OSError, RuntimeError) as error:  # RuntimeError: a link loop (Python < 3.13)
        reason = f"broken symbolic link, not followed: {error}"
    else:
        if target == real_root or real_root in target.parents:
            return True
        reason = (
            f"symbolic link to {target}, outside the folder {real_root}: not followed (copy "
            "the files into the folder, or open the folder that holds both)"
        )
    shown = printable(entry.path)  # what a LoadProblem keeps
    if all(problem.path != shown for problem in scan.problems):  # the top level is seen twice
        scan.problems.append(LoadProblem(entry.path, reason))
    return False


def is_inside(path: Path, real_root: Path) -> bool:
    """Whether ``path``, every link resolved, lies in the folder ``real_root`` (resolved)."""
    resolved = path.resolve()
    return resolved == real_root or real_root in resolved.parents


def _walk(
    folder: Path,
    prefix: str,
    scan: FolderScan,
    visited: set[tuple[int, int]],
    real_root: Path,
) -> list[tuple[str, int]]:
    """(relative path, size in bytes) of the images under ``folder``, sorted by path.

    Symbolic links are followed when they stay inside ``real_root`` (the scanned folder,
    resolved), to folders once (``visited`` holds device/inode pairs, so a link loop cannot
    recurse forever); a link out of the folder or a broken one is a problem.
    """
    try:
        info = folder.stat()
        key = (info.st_dev, info.st_ino)
        if key in visited:
            return []
        visited.add(key)
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        scan.problems.append(LoadProblem(str(folder), f"cannot list folder: {error}"))
        return []
    found: list[tuple[str, int]] = []
    for entry in entries:
        if not _visible(entry.name) or not _link_inside(entry, real_root, scan):
            continue
        if _is_dir(entry):
            found.extend(
                _walk(Path(entry.path), f"{prefix}{entry.name}/", scan, visited, real_root)
            )
        elif _is_file(entry):
            if not is_image_name(entry.name):
                continue
            try:
                size = entry.stat().st_size
            except OSError as error:
                scan.problems.append(LoadProblem(entry.path, f"cannot read the file: {error}"))
                continue
            found.append((prefix + entry.name, size))
    return found


def in_validation_part(relatives: list[str], val_fraction: float) -> set[str]:
    """The relative paths (all of one class) that form the validation split.

    Ordered by a SHA-1 of the relative path, the first ``round(n * val_fraction)``, at
    most n - 1 so that training keeps at least one image.
    """
    count = len(relatives)
    wanted = min(int(math.floor(count * val_fraction + 0.5)), max(count - 1, 0))
    ordered = sorted(relatives, key=lambda rel: (hashlib.sha1(rel.encode()).hexdigest(), rel))
    return set(ordered[:wanted])


class FolderDataset(ImageDataset):
    """Images of a folder (class sub-folders => labels); see the module docstring."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        val_fraction: float = 0.2,
        name: str | None = None,
    ) -> None:
        if split not in FOLDER_SPLITS:
            raise DataError(
                f"split {split!r} is not available for image folders: use one of "
                f"{', '.join(FOLDER_SPLITS)}"
            )
        if not 0.0 <= val_fraction < 1.0:
            raise DataError(
                f"val_fraction={val_fraction} is out of range: use 0 <= val_fraction < 1 "
                "(0.2 keeps 20% of each class for validation)"
            )
        scan = scan_folder(root)
        base = name if name is not None else f"folder:{Path(root).expanduser().absolute()}"
        super().__init__(f"{base} ({split})", scan.classes, split)
        self.root = scan.root.expanduser().absolute()
        self._real_root = self.root.resolve()  # what every loaded file must lie in
        self.val_fraction = val_fraction
        keep = self._split_filter(scan, split, val_fraction)
        self._paths = [rel for rel in scan.paths if keep(rel)]
        self._labels = [lab for rel, lab in zip(scan.paths, scan.labels, strict=True) if keep(rel)]
        for problem in scan.problems:
            self._record(problem)
        for skipped in scan.skipped:
            if keep(skipped.relative):
                self._record(LoadProblem(str(self.root / skipped.relative), skipped.reason))
        self.other_files = scan.other_files

    @staticmethod
    def _split_filter(scan: FolderScan, split: str, val_fraction: float) -> Callable[[str], bool]:
        """A predicate on relative paths: True for the paths that belong to ``split``."""
        if split == "all":
            return lambda rel: True
        by_label: dict[int, list[str]] = {}
        pairs = list(zip(scan.paths, scan.labels, strict=True))
        pairs += [(skipped.relative, skipped.label) for skipped in scan.skipped]
        for rel, label in pairs:
            by_label.setdefault(label, []).append(rel)
        validation: set[str] = set()
        for relatives in by_label.values():
            validation |= in_validation_part(relatives, val_fraction)
        if split == "val":
            return lambda rel: rel in validation
        return lambda rel: rel not in validation

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> Path:
        """Absolute path of item ``index``."""
        return self.root / self._paths[index]

    def _inside_path(self, index: int) -> Path:
        """``path(index)``, checked to still lie in the folder (a link may have changed)."""
        path = self.path(index)
        if not is_inside(path, self._real_root):
            raise ImageLoadError(
                str(path),
                f"now a symbolic link to {path.resolve()}, outside the folder "
                f"{self._real_root}: not read",
            )
        return path

    def _load(self, index: int) -> tuple[Image.Image, int]:
        return load_image(self._inside_path(index)), self._labels[index]

    def _size(self, index: int) -> tuple[int, int]:
        return read_image_size(self._inside_path(index))

    def describe(self, index: int) -> str:
        return printable(self.path(index))  # for people: undecodable bytes escaped

    def label(self, index: int) -> int:
        return self._labels[index]
