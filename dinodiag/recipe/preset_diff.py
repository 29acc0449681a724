"""How each training preset differs from DINOv2's recipe, computed from the configs.

The reference is DINOv2's ``ssl_default_config.yaml`` read as ``train --config`` reads a file
(:func:`dinodiag.recipe.dinov2.recipe_from_resolved` on an empty file), and its pipeline
the ``dinov2`` augmentation preset (the published recipe). A knob that sizes the run for its
machine (architecture, width, depth, patch, K, head widths, batch, crop sides, length) is a
*size* and listed apart from the *recipe* knobs (regularisation, schedules, losses,
augmentation), which are what a short run's fidelity rests on.

The list of each preset's differences in :data:`DOC` (docs/training.md, "Fidelity to DINOv2")
is :func:`markdown` (a test compares them):

    python -m dinodiag.recipe.preset_diff            # print the list
    python -m dinodiag.recipe.preset_diff --write    # rewrite it in docs/training.md
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig, to_dict
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import resolve_pipeline

# The run's size for its machine: listed, never called a deviation from the recipe.
SIZE_FIELDS = frozenset(
    {
        "model.arch",
        "model.patch_size",
        "model.embed_dim",
        "model.num_heads",
        "model.depth",
        "model.num_prototypes",
        "model.head_hidden_dim",
        "model.head_bottleneck_dim",
        "model.head_layers",
        "model.ibot_num_prototypes",
        "model.ibot_head_hidden_dim",
        "model.ibot_head_bottleneck_dim",
        "model.ibot_head_layers",
        "data.batch_size",
        "pipeline.global_crops_size",
        "pipeline.local_crops_size",
    }
)
# Sections of TrainConfig whose every field is a training knob (data and run are where and how
# long, apart from the batch above).
KNOB_SECTIONS = ("model", "optim")
PIPELINE_SKIP = frozenset({"name", "patch_size", "mean", "std"})  # not part of the recipe
BY_ARCH = frozenset({"model.embed_dim", "model.num_heads", "model.depth"})  # None: the arch's
MARKERS = ("<!-- preset-differences:start -->", "<!-- preset-differences:end -->")
# The page that holds the list, relative to the repository root (the default of --write).
DOC = "docs/training.md"


@dataclass(frozen=True)
class Difference:
    """One knob of a preset that is not DINOv2's."""

    field: str  # "optim.momentum_start", "pipeline.global1.blur_p"
    value: Any  # the preset's
    dinov2: Any  # DINOv2's
    size: bool  # True: sizes the run for its machine; False: a recipe knob


def dinov2_reference() -> tuple[TrainConfig, PipelineConfig]:
    """DINOv2's defaults as a TrainConfig, and its published augmentation."""
    from dinodiag.augment.dinov2_config import resolve_dinov2_config
    from dinodiag.augment.presets import get_preset
    from dinodiag.recipe.dinov2 import recipe_from_resolved

    resolved = resolve_dinov2_config({}, source="ssl_default_config.yaml")
    return recipe_from_resolved(resolved, "dinov2").config, get_preset("dinov2").config


def _flat(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return out


def knobs(config: TrainConfig, pipeline: PipelineConfig) -> dict[str, Any]:
    """Every knob compared: the model and optimiser fields, the batch, and the pipeline's."""
    data = config.to_dict()
    out = {k: v for s in KNOB_SECTIONS for k, v in _flat(data[s], f"{s}.").items()}
    out["data.batch_size"] = config.data.batch_size
    shown = {k: v for k, v in to_dict(pipeline).items() if k not in PIPELINE_SKIP}
    out.update(_flat(shown, "pipeline."))
    return out


def differences(config: TrainConfig) -> list[Difference]:
    """The knobs of ``config`` (with its resolved pipeline) that differ from DINOv2's."""
    reference, reference_pipeline = dinov2_reference()
    ours = knobs(config, resolve_pipeline(config))
    theirs = knobs(reference, reference_pipeline)
    return [
        Difference(key, ours[key], theirs.get(key), key in SIZE_FIELDS)
        for key in ours
        if ours[key] != theirs.get(key)
    ]


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _cell(diffs: list[Difference]) -> str:
    if not diffs:
        return "none"
    return "; ".join(
        f"`{d.field}` {_show(d.value)} (DINOv2 "
        f"{'set by its arch' if d.dinov2 is None and d.field in BY_ARCH else _show(d.dinov2)})"
        for d in diffs
    )


def markdown() -> str:
    """The documented list: per preset, its recipe differences and its size differences."""
    from dinodiag.recipe.presets import TRAIN_PRESETS

    recipe_knobs = len([k for k in knobs(*dinov2_reference()) if k not in SIZE_FIELDS])
    lines = []
    for name, preset in TRAIN_PRESETS.items():
        diffs = differences(preset.config)
        recipe = [d for d in diffs if not d.size]
        size = [d for d in diffs if d.size]
        lines.append(
            f"- **`{name}`**: {len(recipe)} of {recipe_knobs} recipe knobs differ: "
            f"{_cell(recipe)}. Sized for its machine: {_cell(size)}."
        )
    return "\n".join(lines) + "\n"


def rewrite(text: str) -> str:
    """``text`` with the text between :data:`MARKERS` replaced by :func:`markdown`."""
    start, end = MARKERS
    if start not in text or end not in text.split(start, 1)[1]:
        raise ValueError(f"no {start} ... {end} markers to rewrite between: is it {DOC}?")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{markdown()}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinodiag.recipe.preset_diff")
    parser.add_argument("--write", metavar="FILE", nargs="?", const=DOC, default=None)
    args = parser.parse_args(argv)
    if args.write is None:
        sys.stdout.write(markdown())
        return 0
    path = Path(args.write)
    path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the preset differences in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
