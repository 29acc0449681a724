"""How the views were resampled, against the reference's interpolation.

DINOv2 (like DINO, iBOT and lightly) crops with ``RandomResizedCrop(...,
interpolation=BICUBIC)``; torchvision's default is bilinear, which SwAV's and VISSL's code
keep, and a hand-written crop resizes with whatever it passes to PIL or torchvision. A built
pipeline resizes with its config's ``interpolation``; your own one with what each crop /
resize step used, recorded per view (:attr:`~dinodiag.augment.records.ViewRecord.resampled_by`:
a torchvision transform's own setting, or the interpolation a hand-written step passed to
``Image.resize``, ``functional.resize`` / ``resized_crop`` or ``interpolate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dinodiag.stats.frames import KINDS

if TYPE_CHECKING:
    from dinodiag.checks.evidence import Evidence

RECIPE_STEP = "RandomResizedCrop"  # the step that resizes a built pipeline's views


def resampling_steps(ev: Evidence) -> dict[str, dict[str, set[str]]]:
    """Per view kind (``global1`` / ``global2`` / ``local``), each step that resampled its
    views and the interpolations it used: ``{"local": {"RandomResizedCrop": {"bilinear"}}}``.
    Empty when nothing was recorded (your own pipeline without a resampling step)."""
    if ev.config is not None:
        kinds = KINDS if ev.config.local_crops_number else KINDS[:2]
        return {kind: {RECIPE_STEP: {ev.config.interpolation}} for kind in kinds}
    frame = ev.frame
    if frame.empty or "resampled_by" not in frame:
        return {}
    steps: dict[str, dict[str, set[str]]] = {}
    for kind, text in frame[["kind", "resampled_by"]].drop_duplicates().itertuples(index=False):
        if not isinstance(text, str):
            continue
        for part in text.split("; "):  # "RandomResizedCrop: bicubic; Resize: bilinear"
            step, _, mode = part.rpartition(": ")
            steps.setdefault(kind, {}).setdefault(step, set()).add(mode)
    return steps


def interpolations(ev: Evidence) -> set[str]:
    """Every interpolation any view was resampled with."""
    return {m for steps in resampling_steps(ev).values() for modes in steps.values() for m in modes}


def interpolation_findings(
    ev: Evidence, view_names: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """``(measured, problems)``: per view kind the steps and their interpolations, and one
    sentence per step resampling otherwise than the reference, naming the views it did so to."""
    want = ev.expect.interpolation
    measured: dict[str, str] = {}
    off: dict[tuple[str, str], list[str]] = {}  # (step, interpolations) -> view names
    for kind, steps in resampling_steps(ev).items():
        measured[f"{kind}.interpolation"] = "; ".join(
            f"{step}: {', '.join(sorted(modes))}" for step, modes in sorted(steps.items())
        )
        for step, modes in sorted(steps.items()):
            other = sorted(m for m in modes if m != want)
            if other:
                off.setdefault((step, " / ".join(other)), []).append(view_names[kind])
    name = want.upper()
    fix = (
        f"set interpolation: {want} in the config"
        if ev.config is not None
        else f"pass it InterpolationMode.{name} (PIL: Image.{name})"
    )
    problems = [
        f"{', '.join(views)}: {step} resizes with {modes} interpolation, {ev.expect_name} "
        f"with {want} ({fix})"
        for (step, modes), views in off.items()
    ]
    return measured, problems
