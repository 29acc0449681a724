"""Sampled statistics: what the pipeline actually drew, over many images.

:func:`sample_views` runs a pipeline (built or brought) over N images of a
dataset and returns one row per view with the recorded parameters and derived
measures; :func:`summarize` condenses the crop measures, :func:`rates` the application
rate of every photometric operation per view (global 1, global 2, locals) against the
configured and the expected probability, with a binomial tolerance
(:func:`binomial_interval`), and :func:`strengths` the ranges of the drawn strengths
(jitter factors, blur sigma, solarize threshold) against the expected ranges.

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
import itertools
import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd
from PIL import Image

from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.pipeline import MultiCropPipeline
from dinodiag.augment.records import PHOTOMETRIC_KINDS, MultiCropSample, ViewRecord
from dinodiag.errors import DataError
from dinodiag.workers import DEFAULT_TIMEOUT, Note, Task, run_tasks

Box = tuple[float, float, float, float]  # (left, top, width, height)


class Pipeline(Protocol):
    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample: ...


class Dataset(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> tuple[Image.Image, int]: ...


def intersection(a: Box, b: Box) -> Box | None:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    if right <= left or bottom <= top:
        return None
    return (left, top, right - left, bottom - top)


def area(box: Box | None) -> float:
    return 0.0 if box is None else box[2] * box[3]


def iou(a: Box, b: Box) -> float:
    inter = area(intersection(a, b))
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def coverage(box: Box, others: list[Box]) -> float:
    """Fraction of ``box`` inside the union of ``others`` (exact inclusion-exclusion up to 4)."""
    if not others or area(box) == 0:
        return 0.0
    if len(others) > 4:
        return max(area(intersection(box, o)) for o in others) / area(box)
    covered = 0.0
    for k in range(1, len(others) + 1):
        for combo in itertools.combinations(others, k):
            region: Box | None = box
            for other in combo:
                region = intersection(region, other) if region is not None else None
            covered += (-1) ** (k + 1) * area(region)
    return covered / area(box)


def view_kind(record: ViewRecord) -> str:
    """``global1`` (first global view), ``global2`` (the other globals) or ``local``."""
    if record.group == "local":
        return "local"
    return "global1" if record.index == 0 else "global2"


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
    A brought pipeline runs on one torch thread per process in ``workers`` processes (one
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


MEASURES = ("scale", "ratio", "upsampling", "global_iou", "local_coverage")


def _configured(config: PipelineConfig | None, group: str, measure: str) -> str:
    if config is None:
        return ""
    if measure == "scale":
        lo, hi = config.global_crops_scale if group == "global" else config.local_crops_scale
        return f"{lo:g}-{hi:g}"
    if measure == "ratio":
        return f"{config.crop_ratio[0]:.3g}-{config.crop_ratio[1]:.3g}"
    return ""


def summarize(frame: pd.DataFrame, config: PipelineConfig | None = None) -> pd.DataFrame:
    """Per view group and measure: configured range, n, min / p05 / median / p95 / max."""
    rows = []
    for group in ("global", "local"):
        part = frame[frame["group"] == group] if len(frame) else frame
        for measure in MEASURES:
            values = (
                pd.to_numeric(part[measure], errors="coerce").dropna()
                if len(part)
                else pd.Series([])
            )
            if values.empty:
                continue
            rows.append(
                {
                    "group": group,
                    "measure": measure,
                    "configured": _configured(config, group, measure),
                    "n": int(values.size),
                    "min": float(values.min()),
                    "p05": float(values.quantile(0.05)),
                    "median": float(values.median()),
                    "p95": float(values.quantile(0.95)),
                    "max": float(values.max()),
                }
            )
    return pd.DataFrame(
        rows, columns=["group", "measure", "configured", "n", "min", "p05", "median", "p95", "max"]
    )


OPERATIONS = (
    ("fallback", None),
    ("flip", "flip_p"),
    ("jitter", "jitter_p"),
    ("grayscale", "grayscale_p"),
    ("blur", "blur_p"),
    ("solarize", "solarize_p"),
)
KINDS = ("global1", "global2", "local")
# The rate tests of one report (3 view kinds x 5 operations) share this false-alarm rate, so
# a correct pipeline fails one of them about once in a thousand reports.
RATE_ALPHA = 1e-3
RATE_TESTS = len(KINDS) * len(PHOTOMETRIC_KINDS)
FAR_FROM_EXPECTED = 0.05  # a rate off by less than this is a warning, not a failure


def binomial_interval(n: int, p: float, alpha: float = RATE_ALPHA / RATE_TESTS) -> tuple[int, int]:
    """Counts ``(low, high)`` a Binomial(n, p) lands in with probability >= 1 - alpha.

    Each tail outside holds at most ``alpha / 2`` (exact, summed in log space); with p = 0
    or 1 the interval is the single count 0 or n: any other count is impossible.
    """
    if n <= 0:
        return 0, 0
    if p <= 0.0:
        return 0, 0
    if p >= 1.0:
        return n, n
    log_p, log_q = math.log(p), math.log1p(-p)
    log_pmf = [
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_p
        + (n - k) * log_q
        for k in range(n + 1)
    ]
    pmf = np.exp(np.asarray(log_pmf))
    below = np.cumsum(pmf)  # P(X <= k)
    above = np.cumsum(pmf[::-1])[::-1]  # P(X >= k)
    low = int(np.argmax(below > alpha / 2))  # first k whose lower tail exceeds alpha / 2
    high = int(n - np.argmax(above[::-1] > alpha / 2))
    return low, high


def rate_verdict(applied: int, n: int, p: float) -> str:
    """``"ok"`` inside the binomial interval of ``p``; outside it ``"off"`` (by less than
    :data:`FAR_FROM_EXPECTED`) or ``"far"``; ``""`` without an expectation or a count."""
    if n == 0 or p is None or math.isnan(p):
        return ""
    low, high = binomial_interval(n, p)
    if low <= applied <= high:
        return "ok"
    return "far" if abs(applied / n - p) >= FAR_FROM_EXPECTED else "off"


def recipe_for(config: PipelineConfig, kind: str) -> ViewAugment:
    """The photometric recipe of a view kind (``global1`` / ``global2`` / ``local``)."""
    if kind == "local":
        return config.local
    return config.global1 if kind == "global1" else config.global2


def rates(
    frame: pd.DataFrame,
    config: PipelineConfig | None = None,
    expect: PipelineConfig | None = None,
) -> pd.DataFrame:
    """Measured application rate of each operation per view kind.

    Against the pipeline's configured p (``config``; NaN for a brought pipeline) and the
    expected p (``expect``, e.g. the reference), with the binomial acceptance interval of
    the expected p at this count (``low`` / ``high``, as rates) and a ``verdict``
    (:func:`rate_verdict`). Views whose value is unknown are not counted (``n``).
    """
    rows = []
    for kind in KINDS:
        part = frame[frame["kind"] == kind] if len(frame) else frame
        if part.empty:
            continue
        for op, prob_field in OPERATIONS:
            values = part[op].dropna() if op in part else pd.Series([], dtype=object)
            if values.empty:
                continue
            n = int(values.size)
            applied = int(values.astype(bool).sum())
            configured = expected = math.nan
            if config is not None and prob_field is not None:
                configured = getattr(recipe_for(config, kind), prob_field)
            if expect is not None and prob_field is not None:
                expected = getattr(recipe_for(expect, kind), prob_field)
            low, high = (math.nan, math.nan)
            if not math.isnan(expected):
                low, high = (count / n for count in binomial_interval(n, expected))
            rows.append(
                {
                    "kind": kind,
                    "operation": op,
                    "n": n,
                    "applied": applied,
                    "measured": applied / n,
                    "configured": configured,
                    "expected": expected,
                    "low": low,
                    "high": high,
                    "verdict": rate_verdict(applied, n, expected),
                }
            )
    columns = ["kind", "operation", "n", "applied", "measured", "configured", "expected"]
    return pd.DataFrame(rows, columns=[*columns, "low", "high", "verdict"])


# (column, recipe field that bounds it): the strengths :func:`strengths` reports.
STRENGTHS = (
    ("brightness", "brightness"),
    ("contrast", "contrast"),
    ("saturation", "saturation"),
    ("hue", "hue"),
    ("blur_sigma", "blur_sigma"),
    ("solarize_threshold", "solarize_threshold"),
)


def expected_range(recipe: ViewAugment, column: str) -> tuple[float, float]:
    """The range a strength is drawn in under ``recipe`` (a threshold: one value)."""
    if column in ("brightness", "contrast", "saturation"):
        strength = getattr(recipe, column)
        return max(0.0, 1.0 - strength), 1.0 + strength
    if column == "hue":
        return -recipe.hue, recipe.hue
    if column == "blur_sigma":
        return tuple(recipe.blur_sigma)  # type: ignore[return-value]
    return float(recipe.solarize_threshold), float(recipe.solarize_threshold)


def strengths(frame: pd.DataFrame, expect: PipelineConfig | None = None) -> pd.DataFrame:
    """Per view kind, the range of each drawn strength (jitter factors, blur sigma, solarize
    threshold) over the views where the operation applied, against ``expect``'s range;
    ``inside`` says whether every drawn value lies in it."""
    rows = []
    for kind in KINDS:
        part = frame[frame["kind"] == kind] if len(frame) else frame
        for column, _ in STRENGTHS:
            if part.empty or column not in part:
                continue
            values = pd.to_numeric(part[column], errors="coerce").dropna()
            if values.empty:
                continue
            low, high = float(values.min()), float(values.max())
            row: dict[str, Any] = {"kind": kind, "strength": column, "n": int(values.size)}
            row.update(min=low, max=high, expected="", inside=None)
            if expect is not None:
                lo, hi = expected_range(recipe_for(expect, kind), column)
                slack = 1e-6 + 1e-3 * max(abs(lo), abs(hi))
                row["expected"] = f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"
                row["inside"] = bool(lo - slack <= low and high <= hi + slack)
            rows.append(row)
    columns = ["kind", "strength", "n", "min", "max", "expected", "inside"]
    return pd.DataFrame(rows, columns=columns)
