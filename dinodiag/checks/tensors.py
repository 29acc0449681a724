"""Checks on the output tensors: count, sizes, dtype, channels, values, duplicates, determinism.

They read the running tallies of :class:`~dinodiag.checks.evidence.Evidence` (every sample)
and, where tensors must be compared side by side, its first samples kept whole.
"""

from __future__ import annotations

import torch

from dinodiag.augment.presets import SizeVariant, methods_with, size_variant
from dinodiag.augment.records import collate_views
from dinodiag.checks.evidence import Evidence, fmt_range, make_result
from dinodiag.checks.report import CheckResult

MIN_LOCAL_CROPS = 2  # fewer local crops than this fail view_count; other counts warn


def check_view_count(ev: Evidence) -> CheckResult:
    counts = sorted(ev.view_counts)
    want = (ev.expect.global_crops_number, ev.expect.local_crops_number)
    measured = " or ".join(f"{g} global + {n} local" for g, n in counts)
    expected = f"{want[0]} global + {want[1]} local"
    title = "number of views"
    if len(counts) > 1:
        return make_result(
            "view_count",
            title,
            "fail",
            measured,
            expected,
            "The number of views changes from image to image; every sample must give the same "
            "views.",
        )
    got = counts[0]
    if got == want:
        return make_result(
            "view_count",
            title,
            "pass",
            measured,
            expected,
            f"{sum(got)} views per image, as expected.",
        )
    hints = []
    if got[1] == 0 and want[1] > 0:
        hints.append(
            f"multi-crop is missing: add {want[1]} local crops of {ev.expect.local_crops_size} px "
            f"(scale {fmt_range(ev.expect.local_crops_scale)}), seen by the student only"
        )
    elif got[1] < MIN_LOCAL_CROPS and want[1] >= MIN_LOCAL_CROPS:
        hints.append(
            f"a single local crop gives the student one small view per image: use {want[1]} "
            f"({MIN_LOCAL_CROPS} is the fewest dinodiag accepts)"
        )
    if got[0] != want[0]:
        hints.append(f"produce {want[0]} global crops: the teacher compares the two global views")
    if not hints and got[1] != want[1]:
        return _other_local_count(ev, got, measured, expected)
    return make_result(
        "view_count",
        title,
        "fail",
        measured,
        expected,
        f"{ev.expect_name} expects {expected}; " + "; ".join(hints) + ".",
    )


def _other_local_count(
    ev: Evidence, got: tuple[int, int], measured: str, expected: str
) -> CheckResult:
    """A warning for a usable local crop count other than the reference's: named after the
    methods that document it, if any."""
    n_local, want = got[1], ev.expect.local_crops_number
    methods = methods_with("local_crops_number", n_local)
    known = (
        f"{n_local} local crops is the count {' and '.join(methods)} document"
        if methods
        else f"{n_local} local crops is no documented method's count"
    )
    effect = (
        "fewer small views per image: less local-to-global matching, less compute"
        if n_local < want
        else "more small views per image: more local-to-global matching, more compute"
    )
    return make_result(
        "view_count",
        "number of views",
        "warn",
        measured,
        expected,
        f"{known}; {ev.expect_name} uses {want} ({effect}). Set local_crops_number: {want} to "
        f"follow {ev.expect_name}.",
    )


def check_view_sizes(ev: Evidence) -> CheckResult:
    e = ev.expect
    expected = f"globals 3x{e.global_crops_size}x{e.global_crops_size}" + (
        f", locals 3x{e.local_crops_size}x{e.local_crops_size}"
        if e.local_crops_number
        else ", no locals"
    )
    shapes = {group: sorted(counter) for group, counter in ev.shapes.items()}
    measured = ", ".join(f"{k} {' / '.join(v)}" for k, v in shapes.items() if v) or "no views"
    variant = _size_variant(ev, shapes)
    if variant is not None:
        return make_result(
            "view_sizes",
            "view sizes",
            "pass",
            measured,
            expected + f" (or {variant.global_crops_size} / {variant.local_crops_size})",
            f"The sizes of {ev.expect_name}'s {variant.name} variant ({variant.global_crops_size}"
            f" / {variant.local_crops_size} px for patch {variant.patch_size}; "
            f"{variant.source}).",
        )
    problems = []
    for group, size in (("globals", e.global_crops_size), ("locals", e.local_crops_size)):
        if len(shapes[group]) > 1:
            problems.append(
                f"{group} come in several sizes ({', '.join(shapes[group])}); they cannot be "
                "batched"
            )
        elif shapes[group] and shapes[group][0] != f"3x{size}x{size}":
            problems.append(
                f"{group} are {shapes[group][0]}, {ev.expect_name} uses 3x{size}x{size}"
            )
    if problems:
        return make_result(
            "view_sizes",
            "view sizes",
            "fail",
            measured,
            expected,
            "; ".join(problems) + ". Set the crop sizes of the pipeline (global_crops_size / "
            "local_crops_size), or check against a reference that matches your image size.",
        )
    return make_result(
        "view_sizes", "view sizes", "pass", measured, expected, "Every view has the expected size."
    )


def _square_side(shape: str) -> int | None:
    """The side of a ``3xSxS`` view shape, else None."""
    parts = shape.split("x")
    if len(parts) == 3 and parts[0] == "3" and parts[1] == parts[2] and parts[1].isdigit():
        return int(parts[1])
    return None


def _size_variant(ev: Evidence, shapes: dict[str, list[str]]) -> SizeVariant | None:
    """The expected reference's size variant the views match (one size per group), if any."""
    if len(shapes["globals"]) != 1 or len(shapes["locals"]) > 1:
        return None
    global_side = _square_side(shapes["globals"][0])
    local_side = _square_side(shapes["locals"][0]) if shapes["locals"] else None
    if global_side is None or (shapes["locals"] and local_side is None):
        return None
    if global_side == ev.expect.global_crops_size and local_side in (
        None,
        ev.expect.local_crops_size,
    ):
        return None  # the expected sizes themselves
    return size_variant(ev.expect_name, global_side, local_side)


def check_dtype(ev: Evidence) -> CheckResult:
    dtypes = sorted(ev.dtypes)
    ok = ev.non_float_views == 0
    return make_result(
        "dtype",
        "floating point",
        "pass" if ok else "fail",
        ", ".join(dtypes),
        "float32 (or float16/bfloat16)",
        "Views are floating point."
        if ok
        else "Views are not floating point: end the pipeline with ToTensor (or ToDtype(float32, "
        "scale=True)) "
        "and Normalize.",
    )


def check_channels(ev: Evidence) -> CheckResult:
    bad = list(ev.bad_channels.elements())
    if not bad:
        return make_result(
            "channels",
            "3 channels, channel-first",
            "pass",
            "C=3, CxHxW",
            "3xHxW",
            "Views are 3xHxW.",
        )
    example = bad[0]
    if "x3" in example and example.endswith("x3"):
        hint = "the views are channel-last (HxWx3): convert with ToTensor or .permute(2, 0, 1)"
    elif example.startswith("1x"):
        hint = (
            "the views have one channel: convert grayscale sources to RGB "
            "(image.convert('RGB')) first"
        )
    else:
        hint = "every view must be a 3xHxW tensor"
    return make_result(
        "channels",
        "3 channels, channel-first",
        "fail",
        f"{len(bad)} views like {example}",
        "3xHxW",
        hint + ".",
    )


def check_finite(ev: Evidence) -> CheckResult:
    bad = ev.nonfinite
    if bad:
        return make_result(
            "finite",
            "no NaN / Inf",
            "fail",
            f"{bad} NaN/Inf values",
            "0",
            "Some views contain NaN or Inf: look for a division by a zero std in Normalize, or an "
            "operation on an empty crop.",
        )
    return make_result(
        "finite", "no NaN / Inf", "pass", "0 NaN/Inf values", "0", "All values are finite."
    )


def check_value_range(ev: Evidence) -> CheckResult:
    lo, hi = ev.value_low, ev.value_high
    measured = f"[{lo:.3g}, {hi:.3g}]"
    expected = "normalised: negative values present, |x| < ~5"
    title = "value range"
    if lo >= 0 and hi <= 1.0:
        return make_result(
            "value_range",
            title,
            "fail",
            measured,
            expected,
            "Values are in [0, 1]: the pipeline is missing Normalize(mean, std) after ToTensor.",
        )
    if lo >= 0 and hi > 1.0:
        return make_result(
            "value_range",
            title,
            "fail",
            measured,
            expected,
            "Values look like raw pixels [0, 255]: convert with ToTensor (divides by 255), then "
            "Normalize.",
        )
    if max(abs(lo), abs(hi)) > 50:
        return make_result(
            "value_range",
            title,
            "fail",
            measured,
            expected,
            "Values are far too large for normalised images: check the mean/std given to Normalize "
            "(they are fractions, e.g. 0.229, not 58.4, once ToTensor has run).",
        )
    return make_result("value_range", title, "pass", measured, expected, "Values look normalised.")


def check_normalization(ev: Evidence) -> CheckResult:
    stats = ev.channel_stats()
    if stats is None:
        return make_result(
            "normalization",
            "per-channel mean/std",
            "skip",
            "no 3-channel views",
            "mean ~0, std ~1",
            "Skipped: no 3xHxW views to measure (see the channels check).",
        )
    mean = [round(m, 2) for m in stats[0]]
    std = [round(s, 2) for s in stats[1]]
    measured = f"mean {mean}, std {std}"
    off = [i for i in range(3) if abs(mean[i]) > 1.5 or not (0.4 <= std[i] <= 2.5)]
    if off:
        return make_result(
            "normalization",
            "per-channel mean/std",
            "warn",
            measured,
            "mean within +-1.5, std 0.4-2.5",
            f"Channel(s) {off} are far from mean 0 / std 1 over these images: check that "
            "Normalize uses "
            "the mean/std your model was trained with (ImageNet: 0.485/0.456/0.406, "
            "0.229/0.224/0.225) "
            "and that they are in [0, 1] units.",
        )
    return make_result(
        "normalization",
        "per-channel mean/std",
        "pass",
        measured,
        "mean within +-1.5, std 0.4-2.5",
        "Per-channel statistics look normalised.",
    )


def check_collate(ev: Evidence) -> CheckResult:
    try:
        for group, counter in ev.shapes.items():
            if len(counter) > 1:
                raise ValueError(
                    f"{group} come in shapes {' / '.join(sorted(counter))} across the samples; "
                    "all views of a group must have one size"
                )
        if len(ev.view_counts) > 1:
            raise ValueError(
                "samples have different view counts "
                + ", ".join(f"{g} global + {n} local" for g, n in sorted(ev.view_counts))
            )
        batch = collate_views(ev.examples)
    except (ValueError, RuntimeError) as exc:
        return make_result(
            "collate",
            "batch collation",
            "fail",
            str(exc),
            "per-group tensors",
            f"A batch cannot be stacked: {exc}. Every sample must give views of the same sizes "
            "per group.",
        )
    measured = ", ".join(f"{k} {tuple(v.shape)}" for k, v in batch.items() if v.numel())
    return make_result(
        "collate",
        "batch collation",
        "pass",
        measured,
        "per-group tensors",
        "A batch stacks per group.",
    )


def check_distinct_views(ev: Evidence) -> CheckResult:
    dup = ev.duplicates
    excused = sum(dup.excused.values())
    excuse = (
        f"; {excused} identical pair(s) excused: "
        + "; ".join(f"{n} as {reason}" for reason, n in dup.excused.most_common())
        if excused
        else ""
    )
    if dup.fault_count:
        reasons = "; ".join(f"{n} x {reason}" for reason, n in dup.faults.most_common())
        return make_result(
            "distinct_views",
            "distinct views",
            "fail",
            f"{dup.fault_count} identical view pairs ({reasons}), e.g. {dup.example}{excuse}",
            "0",
            "Some views of one image are identical although they could have differed: each "
            "view needs its own random draw (call the transform once per view, do not reuse one "
            "output).",
        )
    return make_result(
        "distinct_views",
        "distinct views",
        "pass",
        f"0 identical view pairs that could have differed{excuse}",
        "0",
        "Every view of a sample is different"
        + (
            f" (except {excused} pair(s) of uniform views: a crop of a flat region looks the "
            "same whatever was drawn)."
            if excused
            else "."
        ),
    )


def check_determinism(ev: Evidence) -> CheckResult:
    first, again = ev.first.views, ev.repeat.views if ev.repeat is not None else []
    same = len(first) == len(again) and all(
        a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, again, strict=False)
    )
    if same:
        return make_result(
            "determinism",
            "seeded reproducibility",
            "pass",
            "identical",
            "identical",
            "The same seed gives the same views.",
        )
    return make_result(
        "determinism",
        "seeded reproducibility",
        "warn",
        "different",
        "identical",
        "The same seed gave different views: the pipeline uses a random source dinodiag does not "
        "seed "
        "(e.g. its own numpy Generator); reproducible runs need it seeded from torch/random.",
    )
