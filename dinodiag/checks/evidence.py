"""What the checks look at, gathered once and kept small: memory stays flat in the sample count.

:class:`Evidence` takes the samples one at a time (:meth:`Evidence.add`) and keeps, of each,
only what some check reads: its rows (the records as flat statistics in data frames, no
per-view operation lists), running tallies of the view tensors (counts, shapes, dtypes, channels,
non-finite values, range, per-channel sums for the mean / std), the identical view pairs
with the reason each is or is not a fault, the operation settings seen (jitter ranges, blur
sigma ranges, solarize thresholds, normalisation) and the notes. Whole samples (views and
records) are kept for the first :data:`EXAMPLES_KEPT` only: the checks that need tensors
side by side (batch collation, determinism, the first sample's sizes) use those.

What is kept of a sample is computed where the sample was drawn (:func:`digest_sample`, in a
worker process when :func:`dinodiag.workers.run_tasks` runs several) and merged here in sample
order (:meth:`Evidence.merge`): the same tallies whichever process drew the sample. The view
tallies are taken per stack of equally shaped views (:func:`tally_views`), a few tensor
operations per sample rather than a dozen per view.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import MultiCropSample, ViewRecord
from dinodiag.checks.report import CheckResult
from dinodiag.stats.frames import Pipeline, RowFrames, sample_rows, view_kind
from dinodiag.workers import Task

Check = Callable[["Evidence"], CheckResult]
SCALE_TOLERANCE = 1e-3  # configured ranges closer than this count as equal
# A crop scale range within tolerance of the reference's: it spans at least this share of
# the reference range, and at least this share of its own crops fall inside that range
# ((0.3, 1) against (0.32, 1): 100% and 97%; DINO v1's (0.4, 1) spans 88%).
SCALE_COVERAGE = 0.95
EXAMPLES_KEPT = 4  # whole samples kept for the checks that compare tensors
# The drawn values that make two views different draws (identical values: a reused draw).
DRAW_FIELDS = (
    "box",
    "flip",
    "jitter",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "grayscale",
    "blur",
    "blur_sigma",
    "solarize",
)


@dataclass
class Duplicates:
    """Identical view pairs of the samples: the faults, and the pairs excused and why."""

    faults: Counter[str] = field(default_factory=Counter)  # reason -> pairs
    excused: Counter[str] = field(default_factory=Counter)  # reason -> pairs
    example: str | None = None  # "sample 3: L2 and L5" (the first fault)

    @property
    def fault_count(self) -> int:
        return sum(self.faults.values())


def _constant(view: torch.Tensor) -> bool:
    """Every channel holds one value: a crop of a flat region (or of a blank image)."""
    flat = view.reshape(view.shape[0], -1) if view.ndim >= 2 else view.reshape(1, -1)
    return bool(flat.numel() == 0 or (flat == flat[:, :1]).all())


def _draw(record: ViewRecord | None) -> tuple[Any, ...] | None:
    if record is None or all(getattr(record, f) is None for f in DRAW_FIELDS):
        return None
    return tuple(getattr(record, f) for f in DRAW_FIELDS)


def pair_verdict(
    a: torch.Tensor, b: torch.Tensor, ra: ViewRecord | None, rb: ViewRecord | None
) -> tuple[bool, str]:
    """``(fault, reason)`` for two identical views of one sample.

    A fault when the same object was returned twice or the same draw was used twice, or
    when different draws gave identical pixels of a structured image; excused when both
    views are uniform (any crop of a flat region looks the same, whatever was drawn).
    """
    if a is b or (a.numel() and a.data_ptr() == b.data_ptr() and a.stride() == b.stride()):
        return True, "the same view object returned twice"
    draw_a, draw_b = _draw(ra), _draw(rb)
    if draw_a is not None and draw_a == draw_b:
        return True, "the same random draw used for both views"
    if _constant(a):
        return False, "both views are uniform (a flat region or a blank image)"
    if draw_a is None or draw_b is None:
        return True, "identical pixels (the draws were not recorded)"
    return True, "different draws gave identical pixels"


@dataclass
class ViewTally:
    """Running tallies of view tensors: what the dtype, channel, finiteness, range and
    normalisation checks read."""

    dtypes: Counter[str] = field(default_factory=Counter)
    non_float_views: int = 0
    bad_channels: Counter[str] = field(default_factory=Counter)  # shape text -> views not 3xHxW
    nonfinite: int = 0
    value_low: float = math.inf
    value_high: float = -math.inf
    # per channel over every 3xHxW view: sum, sum of x^2 (float64), and the pixels counted
    channel_sums: np.ndarray = field(default_factory=lambda: np.zeros(3))
    channel_squares: np.ndarray = field(default_factory=lambda: np.zeros(3))
    channel_count: int = 0

    def add_values(self, values: torch.Tensor, rgb: bool) -> None:
        """Tally ``values``: a stack of views ``(N, 3, H, W)`` (``rgb``) or one view ``(1, ...)``.

        A view holding NaN has a NaN minimum, which leaves the range as it was (Python's
        ``min`` keeps its first argument): the range is that of the views without NaN.
        """
        finite_sums = False
        if rgb:
            pixels = values.to(torch.float64)  # float64 sums of float32 values: exact
            sums = pixels.sum(dim=(0, 2, 3))
            squares = (pixels * pixels).sum(dim=(0, 2, 3))
            self.channel_sums += sums.cpu().numpy()
            self.channel_squares += squares.cpu().numpy()
            self.channel_count += pixels.numel() // 3
            # finite sums: no NaN or inf anywhere (either would make its sum NaN or inf), so
            # the count of non-finite values (a pass over every value) is skipped
            finite_sums = bool(torch.isfinite(sums).all() and torch.isfinite(squares).all())
        if not finite_sums:
            self.nonfinite += int((~torch.isfinite(values)).sum())
        lows, highs = torch.aminmax(values.reshape(values.shape[0], -1), dim=1)  # per view
        for low, high in zip(lows.tolist(), highs.tolist(), strict=True):
            self.value_low, self.value_high = min(self.value_low, low), max(self.value_high, high)


def tally_views(views: list[torch.Tensor]) -> ViewTally:
    """The tallies of one sample's views: the 3xHxW views stacked by shape and tallied at
    once (the per-view loop cost ~17 ms a view on a busy machine), any other view alone."""
    tally = ViewTally()
    stacks: dict[tuple[Any, ...], list[torch.Tensor]] = {}
    for view in views:
        tally.dtypes[str(view.dtype).replace("torch.", "")] += 1
        if not view.is_floating_point():
            tally.non_float_views += 1
        rgb = view.ndim == 3 and view.shape[0] == 3
        if not rgb:
            tally.bad_channels[shape_text(view)] += 1
        if view.numel() == 0:
            continue
        if rgb:
            stacks.setdefault((tuple(view.shape), view.dtype, view.device), []).append(view)
        else:
            tally.add_values(view.float().reshape(1, -1), rgb=False)
    for stack in stacks.values():
        tally.add_values(torch.stack(stack).float(), rgb=True)
    return tally


@dataclass
class SampleDigest:
    """What the checks keep of one sample (:func:`digest_sample`), small enough to send from a
    worker process: rows, tallies, duplicate pairs, settings; the whole sample for the first
    :data:`EXAMPLES_KEPT` only."""

    number: int  # the sample's place in the run
    rows: list[dict[str, Any]]
    notes: list[str]
    image_size: tuple[int, int]  # (W, H) of the source image
    view_count: tuple[int, int]  # (globals, locals)
    shapes: dict[str, Counter[str]]  # "globals" / "locals" -> shape text -> views
    max_global_side: int
    views: ViewTally
    duplicates: Duplicates
    settings: dict[tuple[str, str], set[Any]]
    whole: MultiCropSample | None  # kept for the first EXAMPLES_KEPT samples


def digest_sample(
    sample: MultiCropSample, number: int, image_index: int, image: str = "", keep: bool = False
) -> SampleDigest:
    """What the checks keep of sample ``number`` (``keep``: the whole sample too)."""
    shapes: dict[str, Counter[str]] = {"globals": Counter(), "locals": Counter()}
    for group, views in (("globals", sample.global_crops), ("locals", sample.local_crops)):
        for view in views:
            shapes[group][shape_text(view)] += 1
    settings: dict[tuple[str, str], set[Any]] = {}
    _tally_settings(sample.records, settings)
    return SampleDigest(
        number=number,
        rows=sample_rows(sample, number, image_index, image),
        notes=list(sample.notes),
        image_size=tuple(sample.source_size),
        view_count=(len(sample.global_crops), len(sample.local_crops)),
        shapes=shapes,
        max_global_side=max((int(max(v.shape[-2:])) for v in sample.global_crops), default=0),
        views=tally_views(sample.views),
        duplicates=_duplicates(sample, number),
        settings=settings,
        whole=sample if keep else None,
    )


def sample_digest_of(pipeline: Pipeline, image: Any, task: Task) -> SampleDigest:
    """One task of a check run (:func:`dinodiag.workers.run_tasks`'s work: runs in a worker)."""
    sample = pipeline(image, seed=task.seed)
    return digest_sample(
        sample, task.number, task.image_index, task.image, keep=task.number < EXAMPLES_KEPT
    )


def _duplicates(sample: MultiCropSample, number: int) -> Duplicates:
    """The identical view pairs of one sample, each a fault or excused (:func:`pair_verdict`)."""
    found = Duplicates()
    views = sample.views
    by_key = {(r.group, r.index): r for r in sample.records}
    keys = [("global", i) for i in range(len(sample.global_crops))]
    keys += [("local", i) for i in range(len(sample.local_crops))]
    for i in range(len(views)):
        for j in range(i + 1, len(views)):
            a, b = views[i], views[j]
            if a.shape != b.shape or not torch.equal(a, b):
                continue
            fault, reason = pair_verdict(a, b, by_key.get(keys[i]), by_key.get(keys[j]))
            (found.faults if fault else found.excused)[reason] += 1
            if fault and found.example is None:
                names = [f"{g[0].upper()}{k + 1}" for g, k in (keys[i], keys[j])]
                found.example = f"sample {number}: {names[0]} and {names[1]}"
    return found


def _tally_settings(records: list[ViewRecord], settings: dict[tuple[str, str], set[Any]]) -> None:
    for record in records:
        kind = view_kind(record)
        for op in record.operations or ():
            if not op.applied and op.kind != "normalize":
                continue
            for key in SETTING_KEYS.get(op.kind, ()):
                if key == "threshold" and op.source == "measured":
                    continue  # a measured threshold is a range: threshold_range
                value = op.params.get(key)
                if value is not None:
                    settings.setdefault((kind, key), set()).add(value)


class Evidence:
    """What the checks look at: tallies of every sample, whole samples for the first few."""

    def __init__(
        self, expect: PipelineConfig, expect_name: str, config: PipelineConfig | None
    ) -> None:
        self.expect, self.expect_name, self.config = expect, expect_name, config
        self.examples: list[MultiCropSample] = []  # the first EXAMPLES_KEPT samples, whole
        self.repeat: MultiCropSample | None = None  # sample 0 drawn again with the same seed
        self.rows = RowFrames()  # one row per view (dinodiag.stats.sample_rows)
        self.sample_count = 0
        self.image_sizes: list[tuple[int, int]] = []  # (W, H) of the dataset images looked at
        self.notes: set[str] = set()
        self.view_counts: Counter[tuple[int, int]] = Counter()
        self.shapes: dict[str, Counter[str]] = {"globals": Counter(), "locals": Counter()}
        self.dtypes: Counter[str] = Counter()
        self.non_float_views = 0
        self.bad_channels: Counter[str] = Counter()  # shape text -> views not 3xHxW
        self.nonfinite = 0
        self.value_low, self.value_high = math.inf, -math.inf
        self.channel_sums = np.zeros(3)  # per channel over every 3xHxW view: sum, sum of x^2
        self.channel_squares = np.zeros(3)
        self.channel_count = 0
        self.max_global_side = 0
        self.duplicates = Duplicates()
        self.settings: dict[tuple[str, str], set[Any]] = {}  # (view kind, setting) -> values

    # ------------------------------------------------------------------ gathering
    def add(self, sample: MultiCropSample, image_index: int) -> None:
        """Tally one sample (the ``sample_count``-th) and keep it whole if among the first."""
        keep = len(self.examples) < EXAMPLES_KEPT
        self.merge(digest_sample(sample, self.sample_count, image_index, keep=keep))

    def merge(self, digest: SampleDigest) -> None:
        """Add one sample's digest (samples merged in their order: the first fault example
        and the kept samples are the first ones)."""
        self.sample_count += 1
        self.rows.extend(digest.rows)
        self.notes.update(digest.notes)
        if len(self.image_sizes) < 500:
            self.image_sizes.append(digest.image_size)
        self.view_counts[digest.view_count] += 1
        for group, counter in digest.shapes.items():
            self.shapes[group].update(counter)
        self.max_global_side = max(self.max_global_side, digest.max_global_side)
        views = digest.views
        self.dtypes.update(views.dtypes)
        self.non_float_views += views.non_float_views
        self.bad_channels.update(views.bad_channels)
        self.nonfinite += views.nonfinite
        self.value_low = min(self.value_low, views.value_low)
        self.value_high = max(self.value_high, views.value_high)
        self.channel_sums += views.channel_sums
        self.channel_squares += views.channel_squares
        self.channel_count += views.channel_count
        self.duplicates.faults.update(digest.duplicates.faults)
        self.duplicates.excused.update(digest.duplicates.excused)
        self.duplicates.example = self.duplicates.example or digest.duplicates.example
        for key, values in digest.settings.items():
            self.settings.setdefault(key, set()).update(values)
        if digest.whole is not None and len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(digest.whole)

    # ------------------------------------------------------------------ reading
    @property
    def frame(self) -> pd.DataFrame:
        """Every view's row (:func:`dinodiag.stats.sample_rows` columns) as one data frame."""
        return self.rows.frame()

    def group_frame(self, group: str) -> pd.DataFrame:
        """The rows of the ``global`` or ``local`` views."""
        frame = self.frame
        return frame[frame["group"] == group] if len(frame) else frame

    @property
    def first(self) -> MultiCropSample:
        """The first sample, whole."""
        return self.examples[0]

    def channel_stats(self) -> tuple[list[float], list[float]] | None:
        """Per-channel mean and (sample) standard deviation over every 3xHxW view."""
        n = self.channel_count
        if n < 2:
            return None
        mean = self.channel_sums / n
        variance = np.maximum(self.channel_squares / n - mean**2, 0.0) * n / (n - 1)
        return [float(m) for m in mean], [float(s) for s in np.sqrt(variance)]


# Operation parameters worth comparing with the recipe, by operation kind.
SETTING_KEYS = {
    "jitter": ("brightness_range", "contrast_range", "saturation_range", "hue_range"),
    "blur": ("sigma_range", "sigma"),  # sigma: fitted to a hand-written blur's effect
    "solarize": ("threshold", "threshold_range"),
    "normalize": ("mean", "std"),
}


def fmt_range(value: tuple[float, float] | None) -> str:
    return "none" if value is None else f"({value[0]:g}, {value[1]:g})"


def shape_text(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape)


def make_result(
    check_id: str, title: str, status: str, measured: Any, expected: Any, message: str
) -> CheckResult:
    return CheckResult(check_id, title, status, measured, expected, message)
