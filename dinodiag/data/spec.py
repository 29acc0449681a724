"""``open_dataset(spec)``: one string names any dataset the tool can read.

Spec grammar (case-insensitive names; ``split`` is an argument, not part of the spec):

====================================  ==================================================
``sample`` or ``sample_images``        the bundled ``sample_images/`` folder (4 classes;
                                       an installed package draws it into a user cache)
``PATH`` or ``folder:PATH``            an image folder: class sub-folders give labels,
                                       a flat folder is unlabelled
``generated``                          synthetic textured shapes (10 classes, no files)
``generated:n=1000,size=64,...``       the same with options (any subset, comma-separated)
``cifar10:ROOT`` / ``cifar100:ROOT``   CIFAR in torchvision's layout under ROOT
``stl10:ROOT``                         STL-10 in torchvision's layout under ROOT
====================================  ==================================================

Splits: folders and ``sample`` have ``train`` (about 80% of each class), ``val`` (the
other 20%, chosen by path hash, stable across runs) and ``all``; ``generated`` has
``train`` and ``val`` (different random draws of the same classes); CIFAR has ``train``
and ``val`` (the official test set); STL-10 adds ``unlabeled``.

Options (in the spec after ``generated:``, or as keyword arguments, which win):

- ``generated``: ``n`` (training images, default 2000), ``val_n`` (default
  max(200, n // 5)), ``size`` (pixels, default 64), ``classes`` (2..10, default 10),
  ``seed`` (default 0);
- folders and ``sample``: ``val_fraction`` (default 0.2).

CIFAR / STL-10 files are never downloaded unless ``download=True`` (a library call only: the
CLI and the dashboard read local roots).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from dinodiag.data.base import ImageDataset
from dinodiag.data.folder import FolderDataset
from dinodiag.data.generated import GeneratedDataset
from dinodiag.data.torchvision_sets import open_cifar, open_stl10
from dinodiag.errors import DataError

SPEC_FORMS = (
    "sample (the bundled sample_images/), a folder PATH or folder:PATH, "
    "generated or generated:n=1000,size=64,classes=10,seed=0, "
    "cifar10:ROOT, cifar100:ROOT, stl10:ROOT"
)

# Options each kind accepts, with the type their text form is parsed to.
_OPTIONS: dict[str, dict[str, type]] = {
    "generated": {"n": int, "val_n": int, "size": int, "classes": int, "seed": int},
    "folder": {"val_fraction": float},
    "cifar": {},
}
_SAMPLE_NAMES = ("sample", "sample_images")
_ROOTED_KINDS = ("cifar10", "cifar100", "stl10", "folder")
_ALL_NAMES = (*_SAMPLE_NAMES, "generated", *_ROOTED_KINDS)


def sample_images_dir() -> Path:
    """The folder of the sample images: a checkout's ``sample_images/``, else drawn into a
    per-user cache (:func:`dinodiag.data.samples.sample_images_dir` says where and when)."""
    from dinodiag.data import samples  # the drawing code loads only when it is asked for

    return samples.sample_images_dir()


def open_dataset(
    spec: str, split: str = "train", *, download: bool = False, **options: Any
) -> ImageDataset:
    """Open the dataset named by ``spec`` (grammar in the module docstring).

    Raises :class:`DataError` for an unknown spec (with a "did you mean"), an unknown
    option or split, a missing folder or missing dataset files.
    """
    text = str(spec).strip()
    if not text:
        raise DataError(f"the dataset spec is empty: use one of: {SPEC_FORMS}")
    lowered = text.lower()
    if lowered.rstrip("/\\") in _SAMPLE_NAMES:
        return _open_sample(split, options)
    if lowered == "generated" or lowered.startswith("generated:"):
        spec_options = _parse_options(text.partition(":")[2], text)
        merged = _merge_options("generated", spec_options, options)
        return GeneratedDataset(split=split, **merged)
    kind, colon, rest = text.partition(":")
    if colon and kind.lower() in _ROOTED_KINDS and not Path(text).exists():
        return _open_rooted(kind.lower(), rest.strip(), split, download, options)
    if kind.lower() in _ROOTED_KINDS and not colon and not Path(text).exists():
        raise DataError(
            f"dataset spec {text!r} needs a root folder: write {kind.lower()}:ROOT, e.g. "
            f"{kind.lower()}:~/data"
        )
    path = Path(text).expanduser()
    if path.exists():
        return FolderDataset(path, split, **_merge_options("folder", {}, options))
    raise DataError(_unknown_spec_message(text))


def inspection_split(spec: str) -> str:
    """The split to look at when inspecting a pipeline: every image of a folder, else ``train``.

    Training keeps a folder's ``val`` part for k-NN; inspection (checks, statistics,
    the crop inspector) has no reason to hide it.
    """
    text = str(spec).strip()
    lowered = text.lower()
    if lowered.rstrip("/\\") in _SAMPLE_NAMES or lowered.startswith("folder:"):
        return "all"
    kind = lowered.partition(":")[0]
    if kind in ("generated", "cifar10", "cifar100", "stl10") and not Path(text).exists():
        return "train"
    return "all"


def _open_sample(split: str, options: dict[str, Any]) -> ImageDataset:
    folder = sample_images_dir()
    if not folder.is_dir():
        raise DataError(
            f"the bundled sample images are missing: {folder} does not exist; rebuild them "
            "with `python -m dinodiag.data.samples`"
        )
    merged = _merge_options("folder", {}, options)
    return FolderDataset(folder, split, name="sample_images", **merged)


def _open_rooted(
    kind: str, root: str, split: str, download: bool, options: dict[str, Any]
) -> ImageDataset:
    if not root:
        raise DataError(
            f"dataset spec {kind}: has no root folder after the colon, e.g. {kind}:~/data"
        )
    if kind == "folder":
        return FolderDataset(root, split, **_merge_options("folder", {}, options))
    _merge_options("cifar", {}, options)  # refuses any option
    if kind == "stl10":
        return open_stl10(root, split, download)
    return open_cifar(kind, root, split, download)


def _parse_options(text: str, spec: str) -> dict[str, str]:
    """``"n=1000,size=64"`` -> ``{"n": "1000", "size": "64"}``; malformed items -> DataError."""
    parsed: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise DataError(
                f"dataset spec {spec!r}: option {item!r} is not key=value; write e.g. "
                "generated:n=1000,size=64"
            )
        parsed[key.strip().lower()] = value.strip()
    return parsed


def _merge_options(
    kind: str, from_spec: dict[str, str], from_kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Spec options then keyword options (which win), checked against what ``kind`` accepts."""
    allowed = _OPTIONS[kind]
    merged: dict[str, Any] = {}
    for key, value in [*from_spec.items(), *from_kwargs.items()]:
        if key not in allowed:
            raise DataError(_unknown_option_message(kind, key, allowed))
        merged[key] = _convert(kind, key, value, allowed[key])
    return merged


def _convert(kind: str, key: str, value: Any, wanted: type) -> Any:
    if isinstance(value, str):
        try:
            return wanted(value)
        except ValueError:
            raise DataError(
                f"{kind} dataset option {key}={value!r} is not a valid {wanted.__name__}"
            ) from None
    return value  # keyword arguments keep their type; the dataset checks it


def _unknown_option_message(kind: str, key: str, allowed: dict[str, type]) -> str:
    label = {"cifar": "CIFAR / STL-10 datasets"}.get(kind, f"{kind} datasets")
    if not allowed:
        return f"unknown option {key!r}: {label} take no options"
    message = f"unknown option {key!r} for {label}"
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return message + f" (options: {', '.join(allowed)})"


def _unknown_spec_message(text: str) -> str:
    kind, colon, rest = text.partition(":")
    is_drive = len(kind) == 1 and kind.isalpha()  # C:\\data on Windows
    if colon and not is_drive:
        close = difflib.get_close_matches(kind.lower(), [*_ROOTED_KINDS, "generated"], n=1)
        hint = f" Did you mean {close[0]}:{rest}?" if close else ""
        return f"unknown dataset kind {kind!r} in {text!r}.{hint} Dataset specs: {SPEC_FORMS}."
    close = difflib.get_close_matches(text.lower().rstrip("/\\"), list(_ALL_NAMES), n=1)
    if close and close[0] in _ROOTED_KINDS:
        hint = f" Did you mean {close[0]}:ROOT?"
    elif close:
        hint = f" Did you mean {close[0]!r}?"
    else:
        hint = ""
    return (
        f"image folder {text!r} does not exist and is no dataset name.{hint} "
        f"Dataset specs: {SPEC_FORMS}."
    )
