"""Datasets: image folders, the bundled samples, CIFAR / STL-10 and a generated set.

Start with :func:`open_dataset` (its spec grammar is in :mod:`dinodiag.data.spec`);
every dataset is an :class:`ImageDataset` of ``(RGB PIL image, label)`` pairs that
reports unusable files as :class:`LoadProblem` instead of failing. :func:`load_image`
and :func:`load_image_bytes` are the robust loader on their own (uploads in the app).
"""

from dinodiag.data.base import ImageDataset, LoadProblem, format_problems
from dinodiag.data.folder import FOLDER_SPLITS, FolderDataset, scan_folder
from dinodiag.data.generated import CLASS_NAMES, GeneratedDataset, draw_sample
from dinodiag.data.loading import (
    ALPHA_BACKGROUND,
    IMAGE_EXTENSIONS,
    ImageLoadError,
    is_image_name,
    load_image,
    load_image_bytes,
    read_image_size,
    read_image_size_bytes,
    to_rgb,
)
from dinodiag.data.spec import SPEC_FORMS, inspection_split, open_dataset, sample_images_dir
from dinodiag.data.torchvision_sets import ArrayDataset, open_cifar, open_stl10

__all__ = [
    "ALPHA_BACKGROUND",
    "CLASS_NAMES",
    "FOLDER_SPLITS",
    "IMAGE_EXTENSIONS",
    "SPEC_FORMS",
    "inspection_split",
    "ArrayDataset",
    "FolderDataset",
    "GeneratedDataset",
    "ImageDataset",
    "ImageLoadError",
    "LoadProblem",
    "draw_sample",
    "format_problems",
    "is_image_name",
    "load_image",
    "load_image_bytes",
    "open_cifar",
    "open_dataset",
    "open_stl10",
    "read_image_size",
    "read_image_size_bytes",
    "sample_images_dir",
    "scan_folder",
    "to_rgb",
]
