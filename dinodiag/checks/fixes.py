"""From a validation report to the corrected config: every value a failing or warning check
judged is set to the reference's, and the result can be written back as a dinodiag config or
as the ``crops:`` section (plus ``student.patch_size``) of a DINOv2 training config.

    report = run_checks(pipeline, dataset, expect=get_preset("dinov2").config, config=cfg)
    plan = plan_fixes(report, cfg, get_preset("dinov2").config, "dinov2")
    plan.fixes                # [Fix("global_crops_scale", (0.2, 1.0), (0.32, 1.0), ...), ...]
    print(plan.diff())        # unified diff of the two YAML files
    write_fixed(plan, "fixed.yaml")                      # a dinodiag config
    write_fixed(plan, "crops.yaml", fixed_format="dinov2")  # paste into a DINOv2 config

The reference's own size variant is used where the config's patch size asks for it (DINOv2's
patch-14 models cut 98 px locals). ``keep_resolution=True`` keeps the config's global crop size
and scales the reference's local size to it, patch-aligned (dinov2 at 96 px globals: 96 / 48
px), for a dataset of small images where 224 px crops would only upsample them. Checks whose
fault is not in the config (images smaller than the crops, a pipeline that returns NaN) are
listed in :attr:`FixPlan.left` with their message: changing the config cannot fix them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dinodiag.augment.config import PipelineConfig, config_from_dict, flatten, to_dict
from dinodiag.augment.dinov2_config import PIPELINE_KEYS, dinov2_values
from dinodiag.augment.presets import PRESETS
from dinodiag.checks.reference import differences
from dinodiag.checks.report import STATUSES, CheckReport
from dinodiag.errors import ConfigError

_VIEWS = ("global1", "global2", "local")
_RATES = ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p")
_STRENGTHS = ("brightness", "contrast", "saturation", "hue", "blur_sigma", "solarize_threshold")
_SIZES = ("global_crops_size", "local_crops_size")

# The config fields each check judges (flat keys, see augment.config.flatten). A failing or
# warning check's fields take the reference's value. reference_diff judges every field.
CHECK_FIELDS: dict[str, tuple[str, ...]] = {
    "view_count": ("global_crops_number", "local_crops_number"),
    "view_sizes": _SIZES,
    "global_scale": ("global_crops_scale",),
    "local_scale": ("local_crops_scale",),
    "local_vs_global_size": _SIZES,
    "patch_multiple": ("patch_size", *_SIZES),
    "upsampling": (*_SIZES, "global_crops_scale", "local_crops_scale"),
    "normalization": ("mean", "std"),
    "photometric_rates": tuple(f"{v}.{f}" for v in _VIEWS for f in _RATES),
    "photometric_params": tuple(f"{v}.{f}" for v in _VIEWS for f in _STRENGTHS),
}
ALL_FIELDS_CHECK = "reference_diff"
# Fields a DINOv2 config file carries (crops: and student.patch_size, the key map the reader
# uses too); the rest is DINOv2's code (two global crops, the photometric recipe, normalisation).
DINOV2_FIELDS = {field: ".".join(where) for field, where in PIPELINE_KEYS.items()}
FIXED_FORMATS = ("dinodiag", "dinov2")


@dataclass(frozen=True)
class Fix:
    """One value set to the reference's."""

    field: str  # flat key: "global_crops_scale", "global2.blur_p"
    current: Any  # the config's value
    fixed: Any  # the reference's value
    checks: tuple[str, ...]  # ids of the checks that judged it, worst first
    status: str  # the worst status among them: "fail" or "warn"


@dataclass(frozen=True)
class FixPlan:
    """What applying a report's fixes does to a config."""

    original: PipelineConfig
    fixed: PipelineConfig
    fixes: tuple[Fix, ...]
    reference: str  # the reference's name
    left: tuple[tuple[str, str, str], ...]  # (check id, status, message) no config value fixes
    resolution: str = ""  # how the reference's sizes were scaled to the config's ("": not)

    @property
    def changed(self) -> bool:
        return bool(self.fixes)

    def diff(self) -> str:
        """Unified diff of the config's YAML and the corrected one ("" when they are equal)."""
        before = compact_yaml(self.original).splitlines(keepends=True)
        after = compact_yaml(self.fixed).splitlines(keepends=True)
        lines = difflib.unified_diff(
            before, after, fromfile=f"{self.original.name}.yaml", tofile=f"{self.fixed.name}.yaml"
        )
        return "".join(lines)

    def rows(self) -> list[dict[str, str]]:
        """One row per fix, for a table: field, yours, the reference's, flagged by."""
        return [
            {
                "field": fix.field,
                "yours": _text(fix.current),
                self.reference: _text(fix.fixed),
                "flagged by": ", ".join(f"{c} ({_status(c, fix)})" for c in fix.checks),
                "in a DINOv2 config": DINOV2_FIELDS.get(fix.field, "no: DINOv2's code"),
            }
            for fix in self.fixes
        ]

    def code_only(self) -> list[Fix]:
        """The fixes a DINOv2 config cannot carry (the photometric recipe, two global crops):
        they are changes to the augmentation code."""
        return [fix for fix in self.fixes if fix.field not in DINOV2_FIELDS]


class _FlowLists(yaml.SafeDumper):
    """YAML with each list on its line (``global_crops_scale: [0.32, 1.0]``), mappings in
    blocks: a diff then shows one changed line per changed value."""


_FlowLists.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)


def compact_yaml(config: PipelineConfig) -> str:
    """``config`` as dinodiag YAML with lists on one line (read back by ``load_config``)."""
    return yaml.dump(to_dict(config), Dumper=_FlowLists, sort_keys=False)


def _status(check: str, fix: Fix) -> str:
    return fix.status if check == fix.checks[0] else "also"


def _text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_text(v) for v in value) + ")"
    return f"{value:g}" if isinstance(value, float) else str(value)


def reference_target(
    config: PipelineConfig, reference: PipelineConfig, name: str
) -> PipelineConfig:
    """The reference as it applies to ``config``: its size variant for ``config``'s patch
    size when it has one (DINOv2 at patch 14: 224 / 98 px), else the reference itself."""
    preset = PRESETS.get(name)
    for variant in preset.size_variants if preset else ():
        if variant.patch_size == config.patch_size != reference.patch_size:
            return reference.replace(
                global_crops_size=variant.global_crops_size,
                local_crops_size=variant.local_crops_size,
                patch_size=variant.patch_size,
            )
    return reference


def at_resolution(reference: PipelineConfig, global_size: int) -> tuple[PipelineConfig, str]:
    """``reference`` at ``global_size`` px globals (rounded to its patch size), its local size
    scaled in proportion (a multiple of the patch, at least one); the sentence says so ("":
    the sizes are the reference's already)."""
    patch = reference.patch_size or 1
    size = max(patch, round(global_size / patch) * patch)
    ratio = reference.local_crops_size / reference.global_crops_size
    local = max(patch, round(size * ratio / patch) * patch)
    if (size, local) == (reference.global_crops_size, reference.local_crops_size):
        return reference, ""
    note = (
        f"sizes kept at your resolution: the reference's {reference.global_crops_size} / "
        f"{reference.local_crops_size} px crops scaled to {size} / {local} px (patch {patch})"
    )
    return reference.replace(global_crops_size=size, local_crops_size=local), note


def plan_fixes(
    report: CheckReport,
    config: PipelineConfig,
    reference: PipelineConfig,
    reference_name: str | None = None,
    levels: Sequence[str] = ("fail", "warn"),
    keep_resolution: bool = False,
) -> FixPlan:
    """The corrected config: every field judged by a check of ``report`` whose status is in
    ``levels`` set to the reference's value (see :data:`CHECK_FIELDS`); with
    ``keep_resolution``, the reference scaled to the config's global size
    (:func:`at_resolution`), so the crop sizes are not raised to the reference's.

    Local crops added to a config that had none also take the reference's local size, scale
    and photometric recipe (a count of 8 without them would keep the old values, which no
    check judged because there were no local crops). The name is kept, with "-fixed".
    """
    name = reference_name or reference.name
    target = reference_target(config, reference, name)
    resolution = ""
    if keep_resolution:
        target, resolution = at_resolution(target, config.global_crops_size)
    flagged = [r for r in report.sorted() if r.status in levels]
    current, wanted = flatten(config), flatten(target)
    by_field: dict[str, list[tuple[str, str]]] = {}
    left = []
    for result in flagged:
        fields = wanted if result.id == ALL_FIELDS_CHECK else CHECK_FIELDS.get(result.id, ())
        judged = [f for f in fields if f != "name" and f in current]
        differing = {f for f, _, _ in differences({f: current[f] for f in judged}, target)}
        if not differing:
            left.append((result.id, result.status, result.message))
        for field in judged:
            if field in differing:
                by_field.setdefault(field, []).append((result.id, result.status))
    if config.local_crops_number == 0 and "local_crops_number" in by_field:
        added = ("local_crops_size", "local_crops_scale", *(f"local.{f}" for f in _RATES))
        added += tuple(f"local.{f}" for f in _STRENGTHS)
        cause = by_field["local_crops_number"][0]
        for field in added:
            if differences({field: current[field]}, target):
                by_field.setdefault(field, []).append(cause)
    order = list(current)
    fixes = tuple(
        Fix(
            field,
            current[field],
            wanted[field],
            tuple(dict.fromkeys(c for c, _ in sorted(causes, key=lambda c: STATUSES.index(c[1])))),
            min((s for _, s in causes), key=STATUSES.index),
        )
        for field, causes in sorted(by_field.items(), key=lambda item: order.index(item[0]))
    )
    fixed = apply_fixes(config, fixes)
    return FixPlan(config, fixed, fixes, name, tuple(left), resolution)


def apply_fixes(config: PipelineConfig, fixes: Sequence[Fix]) -> PipelineConfig:
    """``config`` with each fix's value set and ``-fixed`` added to its name (validated)."""
    data = to_dict(config)
    for fix in fixes:
        value = list(fix.fixed) if isinstance(fix.fixed, tuple) else fix.fixed
        section, _, key = fix.field.rpartition(".")
        (data[section] if section else data)[key] = value
    if fixes and not str(data["name"]).endswith("-fixed"):
        data["name"] = f"{data['name']}-fixed"
    return config_from_dict(data)


def dinov2_section(config: PipelineConfig, plan: FixPlan | None = None) -> str:
    """``config`` as the ``crops:`` section and ``student.patch_size`` of a DINOv2 training
    config (YAML to paste over the file's own), with comments for what a DINOv2 config
    cannot set: those values live in DINOv2's augmentation code."""
    values = {
        field: list(value) if isinstance(value, tuple) else value
        for field in PIPELINE_KEYS
        for value in [getattr(config, field)]
    }
    text = yaml.dump(dinov2_values(values), Dumper=_FlowLists, sort_keys=False)
    head = f"# dinodiag: {config.name}, to paste into your DINOv2 training config\n"
    notes = []
    if config.global_crops_number != 2:
        notes.append(f"global_crops_number = {config.global_crops_number}: DINOv2 always cuts 2")
    for fix in plan.code_only() if plan else []:
        if fix.field != "global_crops_number":
            notes.append(f"{fix.field} = {_text(fix.fixed)} (now {_text(fix.current)})")
    if notes:
        tail = "# Not settable in a DINOv2 config (change the augmentation code):\n"
        tail += "".join(f"#   {note}\n" for note in notes)
        return head + text + tail
    return head + text


def resolve_format(path: str | Path, fixed_format: str | None = None) -> str:
    """The format ``--write-fixed`` writes: ``--fixed-format`` when given, else from the file
    extension (.yaml / .yml / .json: dinodiag). Raises :class:`ConfigError` for anything
    else, naming the file and what to use."""
    suffix = Path(path).suffix.lower()
    if fixed_format is not None and fixed_format not in FIXED_FORMATS:
        raise ConfigError(f"--fixed-format {fixed_format!r}: one of {', '.join(FIXED_FORMATS)}.")
    if suffix not in (".yaml", ".yml", ".json"):
        raise ConfigError(
            f"--write-fixed {path}: give a .yaml, .yml or .json file (a dinodiag config), or "
            "a .yaml file with --fixed-format dinov2 (a DINOv2 crops: section)."
        )
    if fixed_format == "dinov2" and suffix == ".json":
        raise ConfigError(
            f"--write-fixed {path} --fixed-format dinov2: DINOv2 configs are YAML; give a "
            ".yaml file."
        )
    return fixed_format or "dinodiag"


def fixed_text(plan: FixPlan, path: str | Path, fixed_format: str | None = None) -> str:
    """The text :func:`write_fixed` writes to ``path``."""
    if resolve_format(path, fixed_format) == "dinov2":
        return dinov2_section(plan.fixed, plan)
    if Path(path).suffix.lower() == ".json":
        return json.dumps(to_dict(plan.fixed), indent=2) + "\n"
    return compact_yaml(plan.fixed)


def write_fixed(plan: FixPlan, path: str | Path, fixed_format: str | None = None) -> Path:
    """Write the corrected config to ``path`` (dinodiag YAML / JSON, or the DINOv2 section)."""
    path = Path(path)
    path.write_text(fixed_text(plan, path, fixed_format), encoding="utf-8")
    return path


def summary_lines(plan: FixPlan) -> list[str]:
    """What the plan changes, one line per fix, then what it cannot fix (for the terminal)."""
    if not plan.fixes:
        lines = ["nothing to change: no failing or warning check names a config value"]
    else:
        lines = [f"{len(plan.fixes)} value(s) set to {plan.reference}'s:"]
        lines += [
            f"  {fix.field}: {_text(fix.current)} -> {_text(fix.fixed)}  ({', '.join(fix.checks)})"
            for fix in plan.fixes
        ]
    for check, status, message in plan.left:
        lines.append(f"not fixed by the config: [{status.upper()}] {check}: {message}")
    return lines
