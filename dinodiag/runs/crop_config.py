"""A run's crop config judged from its values alone, and the reference scaled to the run's
resolution.

Without the run's images (``open-run`` without ``--data``) only what the values show can be
judged: the view count, patch alignment, locals smaller than globals, the scale ranges against
the reference. Checking crops on images that are not the user's (dinodiag's sample images)
would judge ``source_size`` and ``upsampling`` on the wrong pictures, so those checks run only
with ``--data``, and the report says so.

A deliberate resolution is not an error: DINOv2's 224 / 98 px (patch 14) at 896 / 392 px is
the same recipe four times larger. :func:`scaled_reference` scales the reference's sizes to
the run's global size (patch-aligned) when the run keeps the reference's local / global ratio.
"""

from __future__ import annotations

from dinodiag.augment.config import PipelineConfig
from dinodiag.runs.findings import Finding

RATIO_TOLERANCE = 0.05  # local / global within 5% of the reference's: the same recipe, scaled
SCALE_TOLERANCE = 0.02  # a scale bound within 0.02 of the reference's counts as the same
NEEDS_IMAGES = (
    "value range, NaN / Inf, source image sizes, upsampling, photometric rates and "
    "strengths (these need the run's images: --data DIR)"
)


def scaled_reference(reference: PipelineConfig, run: PipelineConfig) -> tuple[PipelineConfig, str]:
    """``reference`` with its crop sizes scaled to ``run``'s global size when the run keeps the
    reference's local / global ratio at another resolution (patch-aligned); the note says so
    ("" when nothing was scaled)."""
    ref_g, ref_l = reference.global_crops_size, reference.local_crops_size
    if run.global_crops_size == ref_g or not ref_g or not run.global_crops_size:
        return reference, ""
    ratio_ref = ref_l / ref_g
    ratio_run = run.local_crops_size / run.global_crops_size
    if abs(ratio_run - ratio_ref) > RATIO_TOLERANCE * ratio_ref:
        return reference, ""
    patch = run.patch_size or 1
    local = max(patch, round(ref_l * run.global_crops_size / ref_g / patch) * patch)
    scaled = reference.replace(global_crops_size=run.global_crops_size, local_crops_size=local)
    factor = run.global_crops_size / ref_g
    note = (
        f"the reference's {ref_g} / {ref_l} px crops scaled x{factor:g} to the run's chosen "
        f"resolution ({run.global_crops_size} / {local} px): the same recipe at another size"
    )
    return scaled, note


def _scale_finding(
    which: str, run: tuple[float, float], ref: tuple[float, float], ref_name: str
) -> Finding:
    code = f"crops.{which}_scale"
    same = all(abs(a - b) <= SCALE_TOLERANCE for a, b in zip(run, ref, strict=True))
    evidence = f"{which} crop scale {tuple(run)}; {ref_name}: {tuple(ref)}."
    if same:
        return Finding("pass", code, f"The {which} crop scale matches {ref_name}", evidence)
    low_run, low_ref = run[0], ref[0]
    what = "smaller" if low_run < low_ref else "larger"
    return Finding(
        "warn",
        code,
        f"The {which} crop scale differs from {ref_name}",
        f"{evidence} The smallest crops keep {100 * low_run:.0f}% of the image, "
        f"{what} than the reference's {100 * low_ref:.0f}%.",
        f"Set crops.{which}_crops_scale to {list(ref)} unless the change is deliberate.",
    )


def config_findings(run: PipelineConfig, reference: PipelineConfig, ref_name: str) -> list[Finding]:
    """What the crop values alone show, against ``reference`` (already scaled)."""
    found = []
    n = run.local_crops_number
    evidence = f"{run.global_crops_number} global + {n} local crops; {ref_name}: 2 + " + str(
        reference.local_crops_number
    )
    if n < 2:
        found.append(
            Finding(
                "fail",
                "crops.view_count",
                "Multi-crop is missing: fewer than 2 local crops",
                evidence + ".",
                "Set crops.local_crops_number to 8 (DINOv2) or 6-10.",
            )
        )
    else:
        found.append(Finding("pass", "crops.view_count", "Multi-crop views present", evidence))
    patch = run.patch_size
    off = [
        f"{name} {size} px"
        for name, size in (("global", run.global_crops_size), ("local", run.local_crops_size))
        if patch and size % patch
    ]
    found.append(
        Finding(
            "fail" if off else "pass",
            "crops.patch_multiple",
            "Crop sizes are not multiples of the patch" if off else "Crop sizes fit the patch",
            (
                ", ".join(off)
                if off
                else f"global {run.global_crops_size} px, local {run.local_crops_size} px"
            )
            + f"; patch {patch} px.",
            "Use sizes divisible by student.patch_size (224 / 98 for patch 14, 224 / 96 for 16)."
            if off
            else "",
        )
    )
    bigger = run.local_crops_size >= run.global_crops_size
    found.append(
        Finding(
            "fail" if bigger and n else "pass",
            "crops.local_vs_global_size",
            "Local crops are not smaller than the globals"
            if bigger and n
            else "Local crops are smaller than the globals",
            f"global {run.global_crops_size} px, local {run.local_crops_size} px "
            f"({ref_name}: {reference.global_crops_size} / {reference.local_crops_size} px).",
            "Multi-crop relies on small local views against large global ones: keep the local "
            "size near 0.43 x the global (98 / 224)."
            if bigger and n
            else "",
        )
    )
    found.append(
        _scale_finding("global", run.global_crops_scale, reference.global_crops_scale, ref_name)
    )
    if n:
        found.append(
            _scale_finding("local", run.local_crops_scale, reference.local_crops_scale, ref_name)
        )
    return found
