"""Which reference recipe does a configuration match, and where does it differ?

The seed write-up called DINO v1's crop scales "official DINOv2": a tool that
says which preset a config actually matches catches that confusion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dinodiag.augment.config import PipelineConfig, flatten
from dinodiag.augment.presets import CROP_REFERENCES, PRESETS, size_variant
from dinodiag.checks.photometric import matching_recipes
from dinodiag.checks.report import CheckResult
from dinodiag.checks.resampling import interpolations

if TYPE_CHECKING:
    from dinodiag.checks.evidence import Evidence

# The fields that identify a recipe (what "matches DINO v1" means); sizes are reported apart.
RECIPE_FIELDS = (
    "global_crops_number",
    "global_crops_scale",
    "local_crops_number",
    "local_crops_scale",
)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= 1e-3
    return a == b


def differences(values: dict[str, Any], reference: PipelineConfig) -> list[tuple[str, Any, Any]]:
    """``(field, value, reference value)`` for every field of ``values`` that differs."""
    ref = flatten(reference)
    return [
        (k, v, ref[k])
        for k, v in values.items()
        if k != "name" and k in ref and not _equal(v, ref[k])
    ]


def matching_presets(values: dict[str, Any]) -> list[str]:
    """Reference presets whose recipe fields (counts and scales) all equal ``values``."""
    return [
        name
        for name in CROP_REFERENCES
        if not differences(
            {k: values[k] for k in RECIPE_FIELDS if k in values}, PRESETS[name].config
        )
    ]


def measured_values(ev: Evidence) -> dict[str, Any]:
    """What can be said of your own pipeline's geometry from its outputs and recorded crops
    (counts, sizes, configured scales, the interpolation of every resampling step)."""
    sample = ev.first
    values: dict[str, Any] = {
        "global_crops_number": len(sample.global_crops),
        "local_crops_number": len(sample.local_crops),
    }
    if sample.global_crops:
        values["global_crops_size"] = int(sample.global_crops[0].shape[-1])
    if sample.local_crops:
        values["local_crops_size"] = int(sample.local_crops[0].shape[-1])
    for group in ("global", "local"):
        rows = ev.group_frame(group)
        rows = rows[rows["configured_scale_min"].notna()] if len(rows) else rows
        scales = (
            {
                (float(a), float(b))
                for a, b in zip(
                    rows["configured_scale_min"], rows["configured_scale_max"], strict=True
                )
            }
            if len(rows)
            else set()
        )
        if len(scales) == 1:
            values[f"{group}_crops_scale"] = scales.pop()
    modes = interpolations(ev)  # what every crop / resize step resampled with
    if modes:
        values["interpolation"] = ", ".join(sorted(modes))
    return values


def _variant_of_diffs(
    ev: Evidence, values: dict[str, Any], diffs: list[tuple[str, Any, Any]]
) -> str | None:
    """The name of the reference's size variant when the sizes (and patch) are all that
    differ and they are that variant's (DINOv2's patch-14 configs), else None."""
    fields = {k for k, _, _ in diffs}
    if not diffs or not fields <= {"global_crops_size", "local_crops_size", "patch_size"}:
        return None
    variant = size_variant(
        ev.expect_name, values.get("global_crops_size", -1), values.get("local_crops_size")
    )
    if variant is None or values.get("patch_size", variant.patch_size) != variant.patch_size:
        return None
    return variant.name


def _fmt(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_reference_diff(ev: Evidence) -> CheckResult:
    if ev.config is not None:
        values = flatten(ev.config)
        if not ev.config.local_crops_number:  # local fields mean nothing without local crops
            values = {
                k: v
                for k, v in values.items()
                if not k.startswith("local_crops_") or k == "local_crops_number"
            }
        scope = "every config value"
    else:
        values = measured_values(ev)
        scope = "measured crop geometry (counts, sizes, RandomResizedCrop scales, interpolation)"
    diffs = differences(values, ev.expect)
    variant = _variant_of_diffs(ev, values, diffs)
    if variant:
        diffs = []
    matches = matching_presets(values)
    rate_matches = matching_recipes(ev)
    match_text = (
        f"its crop recipe (counts and scales) matches {', '.join(matches)}"
        if matches
        else "its crop recipe matches no reference preset"
    )
    match_text += (
        f"; its measured photometric rates match {', '.join(rate_matches)}"
        if rate_matches
        else "; its measured photometric rates match no reference recipe"
    )
    if "dinov2-released" in rate_matches and "dinov2" not in rate_matches:
        match_text += (
            " (the recipe DINOv2's released code runs, its GaussianBlur passing 1 - p to "
            "RandomApply, not the published one)"
        )
    measured = {
        "differences": {k: f"{_fmt(v)} (expected {_fmt(r)})" for k, v, r in diffs},
        "matches": matches,
        "rate_matches": rate_matches,
    }
    expected = f"{ev.expect_name}: {scope} equal"
    if not diffs:
        same = f"{ev.expect_name}'s {variant} variant" if variant else ev.expect_name
        return CheckResult(
            "reference_diff",
            "difference from the reference",
            "pass",
            measured,
            expected,
            f"Identical to {same}; {match_text}.",
        )
    listed = "; ".join(f"{k} = {_fmt(v)} ({ev.expect_name}: {_fmt(r)})" for k, v, r in diffs[:8])
    more = f" and {len(diffs) - 8} more" if len(diffs) > 8 else ""
    hint = ""
    if "dino" in matches and ev.expect_name == "dinov2":
        hint = (
            " Note: (0.4, 1.0) / (0.05, 0.4) are DINO v1's defaults, often mislabelled as "
            "DINOv2's; "
            "DINOv2 uses (0.32, 1.0) / (0.05, 0.32)."
        )
    return CheckResult(
        "reference_diff",
        "difference from the reference",
        "warn",
        measured,
        expected,
        f"{len(diffs)} value(s) differ from {ev.expect_name}: {listed}{more}. "
        f"{match_text[0].upper()}{match_text[1:]}.{hint}",
    )
