"""The dataset protocol every source implements, and its bad-file bookkeeping.

An :class:`ImageDataset` yields ``(RGB PIL image, label)`` pairs (label -1 when the
dataset has no labels). A file that cannot be loaded is recorded once as a
:class:`LoadProblem` and the next usable item is returned instead, so a DataLoader
never stops on one bad file; only a dataset with no usable item at all raises.

Subclasses implement ``__len__``, ``_load`` (may raise :class:`ImageLoadError`),
``describe`` and ``label``; they may override ``_size`` to read sizes cheaply.
Problems found inside DataLoader worker processes stay in those processes: call
:meth:`ImageDataset.validate` in the main process for a complete report.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from dinodiag.data.loading import ImageLoadError
from dinodiag.errors import DataError
from dinodiag.printable import printable

# How many problems an error message lists before saying "and N more".
_PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class LoadProblem:
    """A file (or folder) that could not be used, and why."""

    path: str  # the file or folder, undecodable bytes of its name escaped (``printable``)
    reason: str  # human sentence, e.g. "truncated JPEG: image file is truncated (...)"

    def __post_init__(self) -> None:
        # Reports print, write and draw these: a Latin-1 name must not break them (the file
        # itself is opened through the dataset's own paths, never through a problem).
        object.__setattr__(self, "path", printable(self.path))
        object.__setattr__(self, "reason", printable(self.reason))


def format_problems(problems: list[LoadProblem], limit: int = _PROBLEMS_SHOWN) -> str:
    """One line per problem (``path: reason``), the first ``limit`` of them, then a count."""
    lines = [f"  {problem.path}: {problem.reason}" for problem in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)


class ImageDataset:
    """Base class of every dataset: indexable ``(RGB image, label)`` pairs plus a problem log."""

    name: str  # shown in the UI, e.g. "folder:/x/y (train)", "generated (train, 64px)"
    classes: list[str] | None  # class names by label index; None when unlabelled
    split: str  # "train", "val", "all", "unlabeled" (what the source supports)

    def __init__(self, name: str, classes: list[str] | None, split: str) -> None:
        self.name = printable(name)  # a folder's name may hold undecodable bytes
        self.classes = None if classes is None else [printable(c) for c in classes]
        self.split = split
        self._problems: dict[str, LoadProblem] = {}  # by path: each bad file is reported once
        self._bad_indices: set[int] = set()  # indices known to fail, skipped without retrying

    # ----------------------------------------------------------------- subclass interface
    def __len__(self) -> int:
        raise NotImplementedError

    def _load(self, index: int) -> tuple[Image.Image, int]:
        """Item ``index`` (0 <= index < len) as an RGB image and label; may raise ImageLoadError."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """Where item ``index`` comes from, for the UI: a path, or e.g. "generated #12 (...)"."""
        raise NotImplementedError

    def label(self, index: int) -> int:
        """Label of item ``index`` without loading the image (-1 when unlabelled)."""
        raise NotImplementedError

    def _size(self, index: int) -> tuple[int, int]:
        """(width, height) of item ``index``; subclasses read headers instead of decoding."""
        return self._load(index)[0].size

    # ---------------------------------------------------------------------- public API
    @property
    def has_labels(self) -> bool:
        """True when items carry class labels (``classes`` is not None)."""
        return self.classes is not None

    @property
    def problems(self) -> list[LoadProblem]:
        """Files found unusable so far (at scan time and by loads), in the order found."""
        return list(self._problems.values())

    def labels(self) -> list[int]:
        """Every item's label in index order (-1 when unlabelled), without loading images."""
        return [self.label(index) for index in range(len(self))]

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        """(RGB image, label) of item ``index``, or of the next usable item if it is bad.

        Raises IndexError outside ``-len .. len-1`` and DataError when no item can be loaded.
        """
        count = len(self)
        start = self._check_index(index, count)
        for step in range(count):
            current = (start + step) % count
            if current in self._bad_indices:
                continue
            try:
                return self._load(current)
            except ImageLoadError as error:
                self._note_bad(current, error)
        raise DataError(
            f"dataset {self.name} has no usable image: all {count} items failed to load:\n"
            f"{format_problems(self.problems)}\n"
            "Fix or remove these files, or point at another dataset."
        )

    def validate(self, limit: int | None = None) -> list[LoadProblem]:
        """Load every item (or the first ``limit``) and return all problems found so far."""
        count = len(self) if limit is None else min(limit, len(self))
        for index in range(count):
            if index in self._bad_indices:
                continue
            try:
                self._load(index)
            except ImageLoadError as error:
                self._note_bad(index, error)
        return self.problems

    def image_sizes(self, limit: int | None = None) -> list[tuple[int, int]]:
        """(width, height) of every item (or the first ``limit``), as loaded (EXIF applied).

        Folder datasets read file headers only. Unreadable files are recorded as problems
        and left out, so the list can be shorter than asked for.
        """
        count = len(self) if limit is None else min(limit, len(self))
        sizes: list[tuple[int, int]] = []
        for index in range(count):
            if index in self._bad_indices:
                continue
            try:
                sizes.append(self._size(index))
            except ImageLoadError as error:
                self._note_bad(index, error)
        return sizes

    def __repr__(self) -> str:
        classes = "unlabelled" if self.classes is None else f"{len(self.classes)} classes"
        return f"<{type(self).__name__} {self.name}: {len(self)} items, {classes}>"

    # ------------------------------------------------------------------------ helpers
    def _record(self, problem: LoadProblem) -> None:
        """Add a problem unless its path is already reported."""
        self._problems.setdefault(problem.path, problem)

    def _note_bad(self, index: int, error: ImageLoadError) -> None:
        self._bad_indices.add(index)
        self._record(LoadProblem(error.path, error.reason))

    def _check_index(self, index: int, count: int) -> int:
        if not isinstance(index, int):
            index = int(index)  # numpy / torch integers from samplers
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError(
                f"index {index} is out of range for dataset {self.name} ({count} items)"
            )
        return index
