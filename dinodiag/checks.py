"""Pipeline checks: one click (or one command) tells what is wrong with a multi-crop pipeline.

:func:`run_checks` runs the pipeline (built from a config, or brought by the
user) on a few images, gathers the output tensors and the sampled crop
records, and evaluates every check against an expected config (a preset, the
user's YAML or a DINOv2 config file). Each check returns a
:class:`~dinodiag.report.CheckResult` with a stable id, a status, the measured
and expected values and a sentence a person can act on.

Checks use what was *measured* (output tensors, recorded crops) wherever they
can, so the same checks work on a brought pipeline; the config of a built
pipeline is used only for what cannot be measured (e.g. its configured scale
range, for the message).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dinodiag.augment import MultiCropSample, collate_views
from dinodiag.config import PipelineConfig
from dinodiag.presets import PRESETS, REFERENCE_PRESETS
from dinodiag.report import CheckReport, CheckResult
from dinodiag.stats import Dataset, Pipeline, sample_rows

Check = Callable[["Evidence"], CheckResult]
SCALE_TOLERANCE = 1e-3  # configured ranges closer than this count as equal


@dataclass
class Evidence:
    """What the checks look at: the samples, their rows, and the two configs."""

    samples: list[MultiCropSample]
    rows: list[dict[str, Any]]
    repeat: MultiCropSample  # sample 0 drawn again with the same seed
    expect: PipelineConfig
    expect_name: str
    config: PipelineConfig | None  # None for a brought pipeline
    image_sizes: list[tuple[int, int]]  # (W, H) of the dataset images looked at
    notes: list[str] = field(default_factory=list)

    def group_rows(self, group: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["group"] == group]

    @property
    def views(self) -> list[torch.Tensor]:
        return [v for s in self.samples for v in s.views]


def _fmt_range(value: tuple[float, float] | None) -> str:
    return "none" if value is None else f"({value[0]:g}, {value[1]:g})"


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape)


def _result(check_id: str, title: str, status: str, measured: Any, expected: Any, message: str) -> CheckResult:
    return CheckResult(check_id, title, status, measured, expected, message)


# --------------------------------------------------------------------------- tensor checks


def check_view_count(ev: Evidence) -> CheckResult:
    counts = sorted({(len(s.global_crops), len(s.local_crops)) for s in ev.samples})
    want = (ev.expect.global_crops_number, ev.expect.local_crops_number)
    measured = " or ".join(f"{g} global + {n} local" for g, n in counts)
    expected = f"{want[0]} global + {want[1]} local"
    title = "number of views"
    if len(counts) > 1:
        return _result("view_count", title, "fail", measured, expected,
                       "The number of views changes from image to image; every sample must give the same views.")
    got = counts[0]
    if got == want:
        return _result("view_count", title, "pass", measured, expected, f"{sum(got)} views per image, as expected.")
    hints = []
    if got[1] == 0 and want[1] > 0:
        hints.append(
            f"multi-crop is missing: add {want[1]} local crops of {ev.expect.local_crops_size} px "
            f"(scale {_fmt_range(ev.expect.local_crops_scale)}), seen by the student only"
        )
    elif got[1] != want[1]:
        hints.append(f"use {want[1]} local crops (6-10 is the usual range; fewer only to save compute)")
    if got[0] != want[0]:
        hints.append(f"produce {want[0]} global crops: the teacher compares the two global views")
    return _result("view_count", title, "fail", measured, expected,
                   f"{ev.expect_name} expects {expected}; " + "; ".join(hints) + ".")


def check_view_sizes(ev: Evidence) -> CheckResult:
    e = ev.expect
    expected = f"globals 3x{e.global_crops_size}x{e.global_crops_size}" + (
        f", locals 3x{e.local_crops_size}x{e.local_crops_size}" if e.local_crops_number else ", no locals"
    )
    shapes = {"globals": sorted({_shape(v) for s in ev.samples for v in s.global_crops}),
              "locals": sorted({_shape(v) for s in ev.samples for v in s.local_crops})}  # fmt: skip
    measured = ", ".join(f"{k} {' / '.join(v)}" for k, v in shapes.items() if v) or "no views"
    problems = []
    for group, size in (("globals", e.global_crops_size), ("locals", e.local_crops_size)):
        if len(shapes[group]) > 1:
            problems.append(f"{group} come in several sizes ({', '.join(shapes[group])}); they cannot be batched")
        elif shapes[group] and shapes[group][0] != f"3x{size}x{size}":
            problems.append(f"{group} are {shapes[group][0]}, {ev.expect_name} uses 3x{size}x{size}")
    if problems:
        return _result("view_sizes", "view sizes", "fail", measured, expected,
                       "; ".join(problems) + ". Set the crop sizes of the pipeline (global_crops_size / "
                       "local_crops_size), or check against a reference that matches your image size.")
    return _result("view_sizes", "view sizes", "pass", measured, expected, "Every view has the expected size.")


def check_dtype(ev: Evidence) -> CheckResult:
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in ev.views})
    ok = all(v.is_floating_point() for v in ev.views)
    return _result("dtype", "floating point", "pass" if ok else "fail", ", ".join(dtypes), "float32 (or float16/bfloat16)",
                   "Views are floating point." if ok else
                   "Views are not floating point: end the pipeline with ToTensor (or ToDtype(float32, scale=True)) "
                   "and Normalize.")  # fmt: skip


def check_channels(ev: Evidence) -> CheckResult:
    bad = [_shape(v) for v in ev.views if v.ndim != 3 or v.shape[0] != 3]
    if not bad:
        return _result("channels", "3 channels, channel-first", "pass", "C=3, CxHxW", "3xHxW", "Views are 3xHxW.")
    example = bad[0]
    if "x3" in example and example.endswith("x3"):
        hint = "the views are channel-last (HxWx3): convert with ToTensor or .permute(2, 0, 1)"
    elif example.startswith("1x"):
        hint = "the views have one channel: convert grayscale sources to RGB (image.convert('RGB')) first"
    else:
        hint = "every view must be a 3xHxW tensor"
    return _result("channels", "3 channels, channel-first", "fail", f"{len(bad)} views like {example}", "3xHxW", hint + ".")


def check_finite(ev: Evidence) -> CheckResult:
    bad = sum(int((~torch.isfinite(v.float())).sum()) for v in ev.views)
    if bad:
        return _result("finite", "no NaN / Inf", "fail", f"{bad} NaN/Inf values", "0",
                       "Some views contain NaN or Inf: look for a division by a zero std in Normalize, or an "
                       "operation on an empty crop.")
    return _result("finite", "no NaN / Inf", "pass", "0 NaN/Inf values", "0", "All values are finite.")


def check_value_range(ev: Evidence) -> CheckResult:
    floats = [v.float() for v in ev.views if v.numel()]
    lo = min(float(v.min()) for v in floats)
    hi = max(float(v.max()) for v in floats)
    measured = f"[{lo:.3g}, {hi:.3g}]"
    expected = "normalised: negative values present, |x| < ~5"
    title = "value range"
    if lo >= 0 and hi <= 1.0:
        return _result("value_range", title, "fail", measured, expected,
                       "Values are in [0, 1]: the pipeline is missing Normalize(mean, std) after ToTensor.")
    if lo >= 0 and hi > 1.0:
        return _result("value_range", title, "fail", measured, expected,
                       "Values look like raw pixels [0, 255]: convert with ToTensor (divides by 255), then Normalize.")
    if max(abs(lo), abs(hi)) > 50:
        return _result("value_range", title, "fail", measured, expected,
                       "Values are far too large for normalised images: check the mean/std given to Normalize "
                       "(they are fractions, e.g. 0.229, not 58.4, once ToTensor has run).")
    return _result("value_range", title, "pass", measured, expected, "Values look normalised.")


def check_normalization(ev: Evidence) -> CheckResult:
    stacked = [v.float().reshape(v.shape[0], -1) for v in ev.views if v.ndim == 3 and v.shape[0] == 3]
    if not stacked:
        return _result("normalization", "per-channel mean/std", "skip", "no 3-channel views", "mean ~0, std ~1",
                       "Skipped: no 3xHxW views to measure (see the channels check).")
    pixels = torch.cat(stacked, dim=1)
    mean = [round(float(m), 2) for m in pixels.mean(dim=1)]
    std = [round(float(s), 2) for s in pixels.std(dim=1)]
    measured = f"mean {mean}, std {std}"
    off = [i for i in range(3) if abs(mean[i]) > 1.5 or not (0.4 <= std[i] <= 2.5)]
    if off:
        return _result("normalization", "per-channel mean/std", "warn", measured, "mean within +-1.5, std 0.4-2.5",
                       f"Channel(s) {off} are far from mean 0 / std 1 over these images: check that Normalize uses "
                       "the mean/std your model was trained with (ImageNet: 0.485/0.456/0.406, 0.229/0.224/0.225) "
                       "and that they are in [0, 1] units.")  # fmt: skip
    return _result("normalization", "per-channel mean/std", "pass", measured, "mean within +-1.5, std 0.4-2.5",
                   "Per-channel statistics look normalised.")


def check_collate(ev: Evidence) -> CheckResult:
    try:
        batch = collate_views(ev.samples)
    except (ValueError, RuntimeError) as exc:
        return _result("collate", "batch collation", "fail", str(exc), "per-group tensors",
                       f"A batch cannot be stacked: {exc}. Every sample must give views of the same sizes per group.")
    measured = ", ".join(f"{k} {tuple(v.shape)}" for k, v in batch.items() if v.numel())
    return _result("collate", "batch collation", "pass", measured, "per-group tensors", "A batch stacks per group.")


def check_distinct_views(ev: Evidence) -> CheckResult:
    duplicates = 0
    for sample in ev.samples:
        views = sample.views
        for i in range(len(views)):
            for j in range(i + 1, len(views)):
                if views[i].shape == views[j].shape and torch.equal(views[i], views[j]):
                    duplicates += 1
    if duplicates:
        return _result("distinct_views", "distinct views", "fail", f"{duplicates} identical view pairs", "0",
                       "Some views of one image are identical: each view needs its own random draw (call the "
                       "transform once per view, do not reuse one output).")
    return _result("distinct_views", "distinct views", "pass", "0 identical view pairs", "0",
                   "Every view of a sample is different.")


def check_determinism(ev: Evidence) -> CheckResult:
    first, again = ev.samples[0].views, ev.repeat.views
    same = len(first) == len(again) and all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, again, strict=False))
    if same:
        return _result("determinism", "seeded reproducibility", "pass", "identical", "identical",
                       "The same seed gives the same views.")
    return _result("determinism", "seeded reproducibility", "warn", "different", "identical",
                   "The same seed gave different views: the pipeline uses a random source dinodiag does not seed "
                   "(e.g. its own numpy Generator); reproducible runs need it seeded from torch/random.")


# --------------------------------------------------------------------------- crop checks


def _matching_reference(field_name: str, value: tuple[float, float]) -> str | None:
    for name in REFERENCE_PRESETS:
        ref = getattr(PRESETS[name].config, field_name)
        if all(abs(a - b) <= SCALE_TOLERANCE for a, b in zip(value, ref, strict=False)):
            return name
    return None


def _scale_check(ev: Evidence, group: str) -> CheckResult:
    check_id, field_name = f"{group}_scale", f"{group}_crops_scale"
    title = f"{group} crop scale"
    expected_range = getattr(ev.expect, field_name)
    expected = f"{_fmt_range(expected_range)} ({ev.expect_name})"
    rows = ev.group_rows(group)
    scales = [r["scale"] for r in rows if r.get("scale") is not None and not math.isnan(r["scale"])]
    if not scales:
        reason = ("the pipeline produces no local crops (see view_count)" if group == "local" and
                  not any(s.local_crops for s in ev.samples) else
                  "no RandomResizedCrop was recorded for these views, so their crop scale is unknown")  # fmt: skip
        return _result(check_id, title, "skip", "not measured", expected, f"Skipped: {reason}.")
    configured_set = sorted({(r["configured_scale_min"], r["configured_scale_max"]) for r in rows})
    configured = configured_set[0] if len(configured_set) == 1 else None
    sampled = (min(scales), max(scales))
    fallback = [r for r in rows if r.get("fallback")]
    measured = (f"configured {' / '.join(_fmt_range(c) for c in configured_set)}, sampled "
                f"{sampled[0]:.3f}-{sampled[1]:.3f} over {len(scales)} crops")  # fmt: skip
    honoured = [s for s, r in zip(scales, rows, strict=False) if not r.get("fallback")]
    lo_c, hi_c = min(c[0] for c in configured_set), max(c[1] for c in configured_set)
    if honoured and (min(honoured) < lo_c - 1e-6 or max(honoured) > hi_c + 1e-6):
        return _result(check_id, title, "fail", measured, expected,
                       f"Sampled {group} crops fall outside the configured range {_fmt_range((lo_c, hi_c))}: the "
                       "pipeline does not crop the way its configuration says.")
    what = ("global crops (teacher + student) should keep most of the image" if group == "global"
            else "local crops (student only) should show a small part of the image")  # fmt: skip
    if configured is not None and all(abs(a - b) <= SCALE_TOLERANCE for a, b in zip(configured, expected_range, strict=False)):
        status, message = "pass", f"{group.capitalize()} crops are sampled in {_fmt_range(configured)}, as expected."
        if len(fallback) > 0.2 * len(rows):
            status = "warn"
            message += (f" But {len(fallback)}/{len(rows)} crops fell back to a centre crop (the range or aspect "
                        "ratios do not fit these images).")  # fmt: skip
        return _result(check_id, title, status, measured, expected, message)
    reference = _matching_reference(field_name, configured) if configured is not None else None
    fix = f"set {field_name}: [{expected_range[0]:g}, {expected_range[1]:g}] to follow {ev.expect_name}"
    if reference is not None:
        return _result(check_id, title, "warn", measured, expected,
                       f"{_fmt_range(configured)} is the {reference} preset's range, not {ev.expect_name}'s "
                       f"{_fmt_range(expected_range)}: a known recipe, but not the one you compare against; {fix}.")
    lo, hi = configured if configured is not None else (lo_c, hi_c)
    if lo < expected_range[0] - SCALE_TOLERANCE:
        effect = (f"crops as small as {lo:.0%} of the image: {what}, so these cut away too much" if group == "global"
                  else f"crops down to {lo:.0%} of the image carry little content")  # fmt: skip
    elif hi > expected_range[1] + SCALE_TOLERANCE:
        effect = f"crops up to {hi:.0%} of the image: {what}, these overlap the global views too much"
    else:
        effect = (f"the range {_fmt_range((lo, hi))} is narrower than {_fmt_range(expected_range)}: less scale "
                  "variety between views")  # fmt: skip
    return _result(check_id, title, "fail", measured, expected, f"{effect.capitalize()}; {fix}.")


def check_global_scale(ev: Evidence) -> CheckResult:
    return _scale_check(ev, "global")


def check_local_scale(ev: Evidence) -> CheckResult:
    return _scale_check(ev, "local")


def check_local_vs_global_size(ev: Evidence) -> CheckResult:
    title = "local smaller than global"
    sample = ev.samples[0]
    if not sample.local_crops or not sample.global_crops:
        return _result("local_vs_global_size", title, "skip", "no local crops", "local < global",
                       "Skipped: the pipeline produces no local crops (see view_count).")
    g = max(v.shape[-1] * v.shape[-2] for v in sample.global_crops) ** 0.5
    loc = max(v.shape[-1] * v.shape[-2] for v in sample.local_crops) ** 0.5
    measured, expected = f"local {loc:.0f} px vs global {g:.0f} px", "local < global (96 vs 224 in DINOv2)"
    if loc < g:
        return _result("local_vs_global_size", title, "pass", measured, expected,
                       "Local crops are smaller than global crops.")
    status = "warn" if loc == g else "fail"
    return _result("local_vs_global_size", title, status, measured, expected,
                   f"Local crops are {'as large as' if loc == g else 'larger than'} global crops: the small-to-large "
                   "asymmetry multi-crop relies on is gone. Use larger global crops (224 px when the images allow) "
                   "or smaller locals (about 0.4x the global size, e.g. 96 for 224).")


def check_upsampling(ev: Evidence) -> CheckResult:
    title = "local crop upsampling"
    local = [r["upsampling"] for r in ev.group_rows("local") if not math.isnan(r.get("upsampling", math.nan))]
    glob = [r["upsampling"] for r in ev.group_rows("global") if not math.isnan(r.get("upsampling", math.nan))]
    if not local:
        return _result("upsampling", title, "skip", "not measured", "median <= 2x, <= 1.25x the globals'",
                       "Skipped: no recorded local crops (no local views, or no RandomResizedCrop recorded).")
    med_local = statistics.median(local)
    relative = med_local / statistics.median(glob) if glob else math.nan
    measured = f"median {med_local:.2f}x source pixels; {relative:.2f}x the pixel density of the global crops"
    expected = "median <= 2x, and <= 1.25x the globals' density (DINOv2: ~0.8x)"
    problems = []
    if med_local > 2.0:
        problems.append(f"local crops are blown up {med_local:.1f}x on median: they are mostly interpolation")
    if not math.isnan(relative) and relative > 1.25:
        problems.append(f"local crops are rendered at {relative:.1f}x the resolution of the global crops, so "
                        "they show finer detail than the globals instead of a zoomed-out part")  # fmt: skip
    if problems:
        return _result("upsampling", title, "warn", measured, expected,
                       "; ".join(problems).capitalize() + ". Lower local_crops_size (DINOv2: 96 for 224 px "
                       "globals) or use larger source images.")
    return _result("upsampling", title, "pass", measured, expected, "Local crops are not over-magnified.")


def check_source_size(ev: Evidence) -> CheckResult:
    size = max((max(v.shape[-2:]) for s in ev.samples for v in s.global_crops), default=ev.expect.global_crops_size)
    short = [min(w, h) for w, h in ev.image_sizes]
    small = [s for s in short if s < size]
    measured = (f"{len(small)}/{len(short)} images have a short side < {size} px "
                f"(median short side {statistics.median(short):.0f} px)")  # fmt: skip
    expected = f"short side >= {size} px (the global crop size)"
    if len(small) > 0.25 * len(short):
        return _result("source_size", "source image size", "warn", measured, expected,
                       f"Most global crops will be upsampled from images smaller than {size} px: lower the crop "
                       "sizes to fit the data (e.g. the small-images preset for 32-96 px images).")
    return _result("source_size", "source image size", "pass", measured, expected,
                   "The images are large enough for the global crops.")


def check_patch_multiple(ev: Evidence) -> CheckResult:
    patch = (ev.config or ev.expect).patch_size
    sizes = sorted({int(d) for v in ev.samples[0].views for d in v.shape[-2:]})
    bad = [s for s in sizes if s % patch]
    measured = f"sizes {sizes}, patch {patch}"
    if bad:
        return _result("patch_multiple", "multiple of the patch size", "warn", measured, f"multiples of {patch}",
                       f"Crop sizes {bad} are not multiples of the patch size {patch}: the ViT drops the remainder "
                       f"pixels. Use multiples (e.g. 224/96 for patch 16, 224/98 for patch 14).")
    return _result("patch_multiple", "multiple of the patch size", "pass", measured, f"multiples of {patch}",
                   "Every crop size is a multiple of the patch size.")


# The reference_diff check lives in its own module (config comparison, not measurement).
from dinodiag.reference import check_reference_diff  # noqa: E402

CHECKS: list[Check] = [
    check_view_count, check_view_sizes, check_dtype, check_channels, check_finite, check_value_range,
    check_normalization, check_global_scale, check_local_scale, check_local_vs_global_size,
    check_patch_multiple, check_distinct_views, check_determinism, check_upsampling, check_source_size,
    check_reference_diff, check_collate,
]  # fmt: skip
CHECK_IDS = [c.__name__.removeprefix("check_") for c in CHECKS]


def run_checks(
    pipeline: Pipeline,
    dataset: Dataset,
    *,
    expect: PipelineConfig,
    expect_name: str | None = None,
    config: PipelineConfig | None = None,
    samples: int = 16,
    seed: int = 0,
    pipeline_name: str | None = None,
    data_name: str | None = None,
) -> CheckReport:
    """Run every check on ``samples`` images of ``dataset`` through ``pipeline``.

    ``config`` defaults to ``pipeline.config`` (``None`` for a brought pipeline).
    Errors raised by the user's pipeline propagate as ``PipelineSpecError``.
    """
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to check")
    if samples < 1:
        raise ValueError(f"samples = {samples} is invalid: allowed an integer >= 1")
    config = config if config is not None else getattr(pipeline, "config", None)
    order = np.random.default_rng(seed).permutation(len(dataset))
    drawn: list[MultiCropSample] = []
    rows: list[dict[str, Any]] = []
    sizes: list[tuple[int, int]] = []
    first_image = None
    for i in range(samples):
        image, _ = dataset[int(order[i % len(order)])]
        first_image = first_image or image
        sample = pipeline(image, seed=seed * 1_000_003 + i)
        drawn.append(sample)
        rows.extend(sample_rows(sample, i, int(order[i % len(order)]), ""))
        sizes.append(image.size)
    repeat = pipeline(first_image, seed=seed * 1_000_003)
    if hasattr(dataset, "image_sizes"):
        sizes = dataset.image_sizes(limit=500) or sizes
    notes = sorted({n for s in drawn for n in s.notes})
    ev = Evidence(drawn, rows, repeat, expect, expect_name or expect.name, config, sizes, notes)
    results = [check(ev) for check in CHECKS]
    return CheckReport(
        results=results,
        pipeline=pipeline_name or (config.name if config is not None else repr(pipeline)),
        expected=ev.expect_name,
        data=data_name or getattr(dataset, "name", type(dataset).__name__),
        samples=samples,
        seed=seed,
        notes=notes,
    )
