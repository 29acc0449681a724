"""Checks on the sampled crops: scale ranges, local vs global size, upsampling, source size,
patch size."""

from __future__ import annotations

import math
import statistics

import pandas as pd

from dinodiag.augment.presets import METHOD_CROPS, methods_with
from dinodiag.checks.evidence import (
    SCALE_COVERAGE,
    SCALE_TOLERANCE,
    Evidence,
    fmt_range,
    make_result,
)
from dinodiag.checks.report import CheckResult

MAX_UPSAMPLING = 2.0  # median magnification of source pixels above which crops warn


def _outside(rows: pd.DataFrame, lo: float, hi: float) -> pd.Series:
    """Which crops' scales are outside ``[lo, hi]`` by more than whole-pixel rounding explains.

    RandomResizedCrop rounds the box sides to pixels: each side may move by half a
    pixel, so the area fraction may move by about (w + h) / 2 / (W * H).
    """
    scale = rows["scale"].astype(float)
    slack = (0.5 * (rows["box_w"] + rows["box_h"]) + 0.25) / (rows["source_w"] * rows["source_h"])
    return (scale < lo - slack - 1e-9) | (scale > hi + slack + 1e-9)


def _numbers(rows: pd.DataFrame, column: str) -> pd.Series:
    """A column as floats, unknown values dropped."""
    if column not in rows:
        return pd.Series([], dtype=float)
    return pd.to_numeric(rows[column], errors="coerce").dropna()


def _scale_check(ev: Evidence, group: str) -> CheckResult:
    check_id, field_name = f"{group}_scale", f"{group}_crops_scale"
    title = f"{group} crop scale"
    expected_range = getattr(ev.expect, field_name)
    expected = f"{fmt_range(expected_range)} ({ev.expect_name})"
    rows = ev.group_frame(group)
    if "scale" in rows:
        rows = rows[pd.to_numeric(rows["scale"], errors="coerce").notna()]
    scales = rows["scale"].astype(float).tolist() if len(rows) else []
    if not scales:
        reason = (
            "the pipeline produces no local crops (see view_count)"
            if group == "local" and not any(n_local for _, n_local in ev.view_counts)
            else "no torchvision crop (RandomResizedCrop, RandomCrop, CenterCrop) was recorded for "
            "these views, so their crop scale is unknown"
        )
        return make_result(check_id, title, "skip", "not measured", expected, f"Skipped: {reason}.")
    known = rows[rows["configured_scale_min"].notna()]
    configured_set = sorted(
        {
            (float(a), float(b))
            for a, b in zip(
                known["configured_scale_min"], known["configured_scale_max"], strict=True
            )
        }
    )
    if not configured_set:  # crops without a configured range (RandomCrop, CenterCrop)
        configured_set = [(min(scales), max(scales))]
    configured = configured_set[0] if len(configured_set) == 1 else None
    sampled = (min(scales), max(scales))
    fallback = rows["fallback"].fillna(False).astype(bool) if "fallback" in rows else None
    n_fallback = int(fallback.sum()) if fallback is not None else 0
    measured = (
        f"configured {' / '.join(fmt_range(c) for c in configured_set)}, sampled "
        f"{sampled[0]:.3f}-{sampled[1]:.3f} over {len(scales)} crops"
    )
    lo_c, hi_c = min(c[0] for c in configured_set), max(c[1] for c in configured_set)
    outside = _outside(rows, lo_c, hi_c)
    if fallback is not None:
        outside &= ~fallback
    if outside.any():
        return make_result(
            check_id,
            title,
            "fail",
            measured,
            expected,
            f"Sampled {group} crops fall outside the configured range {fmt_range((lo_c, hi_c))}: "
            "the "
            "pipeline does not crop the way its configuration says.",
        )
    if configured is not None and all(
        abs(a - b) <= SCALE_TOLERANCE for a, b in zip(configured, expected_range, strict=False)
    ):
        status, message = (
            "pass",
            f"{group.capitalize()} crops are sampled in {fmt_range(configured)}, as expected.",
        )
        if n_fallback > 0.2 * len(rows):
            status = "warn"
            message += (
                f" But {n_fallback}/{len(rows)} crops fell back to a centre crop (the range or "
                "aspect "
                "ratios do not fit these images)."
            )
        return make_result(check_id, title, status, measured, expected, message)
    low, high = expected_range
    fix = f"set {field_name}: [{low:g}, {high:g}] to follow {ev.expect_name}"
    known = _known_recipes(ev, field_name, configured) if configured is not None else []
    lo, hi = configured if configured is not None else (lo_c, hi_c)
    covered, inside = scale_coverage((lo, hi), expected_range)
    shares = (
        f"it covers {covered:.0%} of {fmt_range(expected_range)} and {inside:.0%} of its crops "
        f"fall inside it; the tolerance is {SCALE_COVERAGE:.0%} each way"
    )

    def verdict(status: str, message: str) -> CheckResult:
        return make_result(check_id, title, status, measured, expected, message)

    if covered >= SCALE_COVERAGE and inside >= SCALE_COVERAGE:
        also = f" It is the range of {' and '.join(known)}." if known else ""
        return verdict(
            "pass",
            f"{fmt_range((lo, hi))} is within tolerance of {ev.expect_name}'s "
            f"{fmt_range(expected_range)}: {shares}." + also,
        )
    if known:
        return verdict(
            "warn",
            f"{fmt_range(configured)} is the range of {' and '.join(known)}, not "
            f"{ev.expect_name}'s {fmt_range(expected_range)}: a known recipe, but not the one "
            f"you compare against; {fix}.",
        )
    effects = _scale_effects(group, (lo, hi), expected_range)
    return verdict("fail", f"{'; '.join(effects)} ({shares}); {fix}.")


def scale_coverage(
    configured: tuple[float, float], reference: tuple[float, float]
) -> tuple[float, float]:
    """``(covered, inside)``: the share of ``reference`` that ``configured`` spans, and the
    share of ``configured`` inside ``reference``. RandomResizedCrop draws the area fraction
    uniformly in its range, so these are shares of the crops each range draws."""
    (lo, hi), (a, b) = configured, reference
    overlap = max(0.0, min(hi, b) - max(lo, a))
    covered = overlap / (b - a) if b > a else float(lo <= a <= hi)
    inside = overlap / (hi - lo) if hi > lo else float(a <= lo <= b)
    return covered, inside


def _scale_effects(
    group: str, configured: tuple[float, float], reference: tuple[float, float]
) -> list[str]:
    """What a range beyond the tolerance does, each sentence true for its numbers."""
    (lo, hi), (a, b) = configured, reference
    width = max(hi - lo, 1e-12)
    effects = []
    if lo < a:
        share = (min(a, hi) - lo) / width
        effect = (
            f"{share:.0%} of the crops are smaller than {a:.0%} of the image, the reference's "
            f"smallest, down to {lo:.0%}"
        )
        if group == "global":
            effect += (
                ": global crops (teacher + student) should keep most of the image, so these "
                "cut away too much"
            )
        effects.append(effect)
    if hi > b:
        share = (hi - max(b, lo)) / width
        effect = (
            f"{share:.0%} of the crops are larger than {b:.0%} of the image, the reference's "
            f"largest, up to {hi:.0%}"
        )
        if group == "local":
            effect += ": local crops (student only) that large overlap the global views more"
        effects.append(effect)
    missing = [r for r in ((a, min(lo, b)), (max(hi, a), b)) if r[1] > r[0]]
    if missing:
        gaps = " and ".join(f"{x:.0%}-{y:.0%}" for x, y in missing)
        effects.append(
            f"no crops of {gaps} of the image, which the reference draws: less scale variety"
        )
    text = "; ".join(effects)
    return [text[0].upper() + text[1:]]


def _known_recipes(ev: Evidence, field_name: str, configured: tuple[float, float]) -> list[str]:
    """Other methods whose documented range ``configured`` is, each with its preset if any."""
    names = set(methods_with(field_name, configured, SCALE_TOLERANCE))
    return [
        f"{m.name} (preset {m.preset})" if m.preset else m.name
        for m in METHOD_CROPS
        if m.name in names and m.preset != ev.expect_name
    ]


def check_global_scale(ev: Evidence) -> CheckResult:
    return _scale_check(ev, "global")


def check_local_scale(ev: Evidence) -> CheckResult:
    return _scale_check(ev, "local")


def check_local_vs_global_size(ev: Evidence) -> CheckResult:
    title = "local smaller than global"
    sample = ev.first
    if not sample.local_crops or not sample.global_crops:
        return make_result(
            "local_vs_global_size",
            title,
            "skip",
            "no local crops",
            "local < global",
            "Skipped: the pipeline produces no local crops (see view_count).",
        )
    g = max(v.shape[-1] * v.shape[-2] for v in sample.global_crops) ** 0.5
    loc = max(v.shape[-1] * v.shape[-2] for v in sample.local_crops) ** 0.5
    measured, expected = (
        f"local {loc:.0f} px vs global {g:.0f} px",
        "local < global (96 vs 224 in DINOv2)",
    )
    if loc < g:
        return make_result(
            "local_vs_global_size",
            title,
            "pass",
            measured,
            expected,
            "Local crops are smaller than global crops.",
        )
    status = "warn" if loc == g else "fail"
    return make_result(
        "local_vs_global_size",
        title,
        status,
        measured,
        expected,
        f"Local crops are {'as large as' if loc == g else 'larger than'} global crops: the "
        "small-to-large "
        "asymmetry multi-crop relies on is gone. Use larger global crops (224 px when the images "
        "allow) "
        "or smaller locals (about 0.4x the global size, e.g. 96 for 224).",
    )


def check_upsampling(ev: Evidence) -> CheckResult:
    title = "crop upsampling"
    local = _numbers(ev.group_frame("local"), "upsampling").tolist()
    glob = _numbers(ev.group_frame("global"), "upsampling").tolist()
    expected = (
        f"median <= {MAX_UPSAMPLING:g}x for global and local crops, locals <= 1.25x the "
        "globals' density (DINOv2: ~0.8x)"
    )
    if not local and not glob:
        return make_result(
            "upsampling",
            title,
            "skip",
            "not measured",
            expected,
            "Skipped: no recorded crops (no RandomResizedCrop or other crop recorded).",
        )
    med_global = statistics.median(glob) if glob else math.nan
    med_local = statistics.median(local) if local else math.nan
    relative = med_local / med_global if glob and local else math.nan
    parts = []
    if glob:
        parts.append(f"globals: median {med_global:.2f}x source pixels")
    if local:
        parts.append(f"locals: median {med_local:.2f}x source pixels")
    if not math.isnan(relative):
        parts.append(f"locals at {relative:.2f}x the pixel density of the globals")
    measured = "; ".join(parts)
    problems, fixes = [], []
    if med_global > MAX_UPSAMPLING:
        problems.append(
            f"global crops are blown up {med_global:.1f}x on median: the teacher sees mostly "
            "interpolation"
        )
        fixes.append(
            "raise the smallest global crop scale or lower global_crops_size "
            f"(DINOv2: {ev.expect.global_crops_size} px from (0.32, 1) of large images)"
        )
    if med_local > MAX_UPSAMPLING:
        problems.append(
            f"local crops are blown up {med_local:.1f}x on median: they are mostly interpolation"
        )
    if not math.isnan(relative) and relative > 1.25:
        problems.append(
            f"local crops are rendered at {relative:.1f}x the resolution of the global crops, so "
            "they show finer detail than the globals instead of a zoomed-out part"
        )
    if med_local > MAX_UPSAMPLING or (not math.isnan(relative) and relative > 1.25):
        fixes.append("lower local_crops_size (DINOv2: 96 for 224 px globals)")
    if problems:
        return make_result(
            "upsampling",
            title,
            "warn",
            measured,
            expected,
            "; ".join(problems).capitalize()
            + ". "
            + "; ".join(fixes).capitalize()
            + ", or use larger source images.",
        )
    return make_result(
        "upsampling", title, "pass", measured, expected, "No crops are over-magnified."
    )


def check_source_size(ev: Evidence) -> CheckResult:
    size = ev.max_global_side or ev.expect.global_crops_size
    short = [min(w, h) for w, h in ev.image_sizes]
    small = [s for s in short if s < size]
    measured = (
        f"{len(small)}/{len(short)} images have a short side < {size} px "
        f"(median short side {statistics.median(short):.0f} px)"
    )
    expected = f"short side >= {size} px (the global crop size)"
    if len(small) > 0.25 * len(short):
        return make_result(
            "source_size",
            "source image size",
            "warn",
            measured,
            expected,
            f"{len(small)} of {len(short)} images are smaller than {size} px: their global "
            "crops will be upsampled. Lower the crop sizes to fit the data (e.g. the "
            "small-images preset for 32-96 px images).",
        )
    if small:  # a few small images: a pass that says so, not "large enough"
        message = (
            f"{len(short) - len(small)} of {len(short)} images are large enough for the global "
            f"crops; the {len(small)} smaller than {size} px ({len(small) / len(short):.0%}, "
            "at most 25% allowed) are upsampled."
        )
    else:
        message = "Every image is large enough for the global crops."
    return make_result("source_size", "source image size", "pass", measured, expected, message)


def check_patch_multiple(ev: Evidence) -> CheckResult:
    patch = (ev.config or ev.expect).patch_size
    sizes = sorted({int(d) for v in ev.first.views for d in v.shape[-2:]})
    bad = [s for s in sizes if s % patch]
    measured = f"sizes {sizes}, patch {patch}"
    if bad:
        return make_result(
            "patch_multiple",
            "multiple of the patch size",
            "warn",
            measured,
            f"multiples of {patch}",
            f"Crop sizes {bad} are not multiples of the patch size {patch}: the ViT drops the "
            "remainder "
            f"pixels. Use multiples (e.g. 224/96 for patch 16, 224/98 for patch 14).",
        )
    return make_result(
        "patch_multiple",
        "multiple of the patch size",
        "pass",
        measured,
        f"multiples of {patch}",
        "Every crop size is a multiple of the patch size.",
    )
