"""What the pipeline drew over many images, as one frame: one row per view.

:func:`sample_views` runs a pipeline (built or own) over N images of a dataset and returns
one row per view (:data:`COLUMNS`) with the recorded parameters and derived measures;
:func:`sample_rows` makes the rows of one sample and :class:`RowFrames` gathers them.

Derived measures:

- ``upsampling``: output side / crop side in source pixels (geometric mean of
  the two axes); > 1 means the crop was blown up.
- ``global_iou``: IoU of the first two global crops of the sample (on both rows).
- ``local_coverage``: fraction of a local crop's area that lies inside at least
  one global crop of the same sample (the local-to-global correspondence the
  DINO loss relies on).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from PIL import Image

from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.pipeline import MultiCropPipeline
from dinodiag.augment.records import MultiCropSample, ViewRecord
from dinodiag.errors import DataError
from dinodiag.stats.geometry import coverage, iou
from dinodiag.workers import DEFAULT_TIMEOUT, Note, Task, run_tasks


class Pipeline(Protocol):
    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample: ...


class Dataset(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[Image.Image, int]: ...


def view_kind(record: ViewRecord) -> str:
    """``global1`` (first global view), ``global2`` (the other globals) or ``local``."""
    if record.group == "local":
        return "local"
    return "global1" if record.index == 0 else "global2"


KINDS = ("global1", "global2", "local")  # the values of view_kind, in the order tables show them


def recipe_for(config: PipelineConfig, kind: str) -> ViewAugment:
    """The photometric recipe of a view kind (``global1`` / ``global2`` / ``local``)."""
    if kind == "local":
        return config.local
    return config.global1 if kind == "global1" else config.global2


def sample_rows(
    sample: MultiCropSample, sample_id: int, image_index: int, image: str
) -> list[dict[str, Any]]:
    """The rows of one sample (one per record) with the derived measures filled in."""
    globals_ = [r.box for r in sample.records if r.group == "global" and r.box is not None]
    pair_iou = iou(globals_[0], globals_[1]) if len(globals_) >= 2 else math.nan
    rows = []
    for rec in sample.records:
        # the fields as they are (not dataclasses.asdict: it deep-copies every operation of
        # the view only for the row to drop them, most of the cost of a row)
        row = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec)}
        box = row.pop("box")
        source_w, source_h = row.pop("source_size")
        out = row.pop("out_size") or (math.nan, math.nan)
        configured_scale = row.pop("configured_scale") or (math.nan, math.nan)
        row.pop("configured_ratio", None)
        row.pop("configured_size", None)
        row.pop("operations", None)  # per-view detail: the records keep it, rows stay flat
        mean, std = row.pop("mean", None), row.pop("std", None)
        order = row.pop("jitter_order")
        row.update(
            sample=sample_id,
            image_index=image_index,
            image=image,
            kind=view_kind(rec),
            source_w=source_w,
            source_h=source_h,
            out_h=out[0],
            out_w=out[1],
            box_left=box[0] if box else math.nan,
            box_top=box[1] if box else math.nan,
            box_w=box[2] if box else math.nan,
            box_h=box[3] if box else math.nan,
            configured_scale_min=configured_scale[0],
            configured_scale_max=configured_scale[1],
            jitter_order=",".join(order) if order else None,
            norm_mean=",".join(f"{v:.4g}" for v in mean) if mean else None,
            norm_std=",".join(f"{v:.4g}" for v in std) if std else None,
            upsampling=math.sqrt((out[0] / box[3]) * (out[1] / box[2])) if box else math.nan,
            global_iou=pair_iou if rec.group == "global" else math.nan,
            local_coverage=coverage(box, globals_) if rec.group == "local" and box else math.nan,
        )
        rows.append(row)
    return rows


class RowFrames:
    """Rows gathered as data frames of :data:`CHUNK` rows: a list of row dicts costs about
    ten times the memory of the frame it makes, so long runs keep frames, not dicts."""

    CHUNK = 2048

    def __init__(self) -> None:
        self._chunks: list[pd.DataFrame] = []
        self._rows: list[dict[str, Any]] = []
        self._frame: pd.DataFrame | None = None

    def extend(self, rows: list[dict[str, Any]]) -> None:
        self._rows.extend(rows)
        self._frame = None
        if len(self._rows) >= self.CHUNK:
            self._chunks.append(pd.DataFrame(self._rows))
            self._rows = []

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks) + len(self._rows)

    def frame(self) -> pd.DataFrame:
        """Every row so far, in order, as one frame (built once until more rows come)."""
        if self._frame is None:
            parts = [*self._chunks, *([pd.DataFrame(self._rows)] if self._rows else [])]
            self._frame = (
                pd.concat(parts, ignore_index=True)
                if len(parts) > 1
                else (parts[0].reset_index(drop=True) if parts else pd.DataFrame())
            )
        return self._frame


COLUMNS = [
    "sample",
    "image_index",
    "image",
    "group",
    "index",
    "kind",
    "source_w",
    "source_h",
    "out_h",
    "out_w",
    "box_left",
    "box_top",
    "box_w",
    "box_h",
    "scale",
    "ratio",
    "fallback",
    "configured_scale_min",
    "configured_scale_max",
    "flip",
    "jitter",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "jitter_order",
    "grayscale",
    "blur",
    "blur_sigma",
    "solarize",
    "solarize_threshold",
    "norm_mean",
    "norm_std",
    "unknown_steps",
    "upsampling",
    "global_iou",
    "local_coverage",
    "recorded_by",
]


def sample_tasks(
    dataset: Dataset, n_samples: int, seed: int, describe: Callable[[int], str] | None = None
) -> list[Task]:
    """The calls of a sampling run: sample ``i`` on the ``i``-th image of a seeded order of
    ``dataset`` (cycling), with pipeline seed ``seed * 1_000_003 + i``, so two configs compared
    on the same ``seed`` see the same images and draws."""
    order = np.random.default_rng(seed).permutation(len(dataset))
    describe = describe or getattr(dataset, "describe", None) or str
    tasks = []
    for i in range(n_samples):
        index = int(order[i % len(order)])
        tasks.append(Task(i, index, seed * 1_000_003 + i, describe(index)))
    return tasks


def empty_dataset_error(dataset: Dataset, what: str) -> DataError:
    """The error for a dataset with no image: names the dataset, its split and folder, and
    what to do (``what``: "nothing to check")."""
    name = getattr(dataset, "name", None) or type(dataset).__name__
    split, root = getattr(dataset, "split", None), getattr(dataset, "root", None)
    where = f": no images in its {split!r} split" if split else ""
    folder = f" (folder {root})" if root is not None else ""
    why = ""
    fraction = getattr(dataset, "val_fraction", None)
    if split == "val" and fraction is not None:  # dinodiag.data.folder.in_validation_part
        smallest = max(2, math.ceil(0.5 / fraction)) if fraction > 0 else None
        why = (
            f" A folder's val split holds {fraction:.0%} of each class's images, rounded: none "
            f"of a class with fewer than {smallest} images."
            if smallest
            else " Its val_fraction is 0: the val split holds no image."
        )
    other = " (all or train; --split all on the command line)" if split else ""
    return DataError(
        f"{what}: the dataset {name} is empty{where}{folder}.{why} Choose a split that "
        f"has images{other}, or add images to the dataset."
    )


def sample_rows_of(pipeline: Pipeline, image: Image.Image, task: Task) -> list[dict[str, Any]]:
    """The rows of one task (:func:`dinodiag.workers.run_tasks`'s work: runs in a worker)."""
    sample = pipeline(image, seed=task.seed)
    return sample_rows(sample, task.number, task.image_index, task.image)


def sample_views(
    pipeline: Pipeline,
    dataset: Dataset,
    n_samples: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    describe: Callable[[int], str] | None = None,
    *,
    workers: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    on_note: Note | None = None,
) -> pd.DataFrame:
    """Run ``pipeline`` on ``n_samples`` images (cycling through ``dataset`` in a seeded order).

    Sample ``i`` uses pipeline seed ``seed * 1_000_003 + i`` so two configs compared on
    the same ``seed`` see the same images. Returns one row per recorded view, in sample
    order, the same for any ``workers``.
    A built pipeline is run records-only (same draws, no pixels): statistics never
    look at the views, and skipping them makes 500 samples take well under a second.
    Your own pipeline runs on one torch thread per process in ``workers`` processes (one
    per available core by default; 1 = this process), with ``timeout`` seconds per sample
    (:func:`dinodiag.workers.run_tasks`); ``on_note`` hears why it ran in one process if
    it could not be sent to workers (default: printed on stderr).
    """
    if isinstance(pipeline, MultiCropPipeline) and pipeline.render:
        pipeline = MultiCropPipeline(pipeline.config, render=False)
    if len(dataset) == 0:
        raise empty_dataset_error(dataset, "nothing to sample")
    if n_samples < 1:
        raise ValueError(f"n_samples = {n_samples} is invalid: allowed an integer >= 1")
    tasks = sample_tasks(dataset, n_samples, seed, describe)
    rows = RowFrames()
    results = run_tasks(
        pipeline,
        dataset,
        tasks,
        sample_rows_of,
        workers=workers,
        timeout=timeout,
        on_note=on_note,
    )
    for done, sample_rows_done in enumerate(results, start=1):
        rows.extend(sample_rows_done)
        if progress is not None:
            progress(done, n_samples)
    frame = rows.frame()
    return frame.reindex(columns=[c for c in COLUMNS if c in frame.columns or not len(rows)])
