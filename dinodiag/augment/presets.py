"""Named pipeline presets: the references a configuration is compared against.

Each preset carries a one-line description and where its values come from, so
a report can say "this config matches DINO v1, not DINOv2" with a source. Beside the
published DINOv2 recipe sits ``dinov2-released``, the recipe DINOv2's released code
actually runs (its ``GaussianBlur`` passes ``1 - p`` to ``RandomApply``: blur 0 / 0.9 / 0.5
on global 1 / global 2 / locals, REFERENCE.md), so a report can tell "you copied
DINOv2's code" from "you have a new bug". A preset may know size variants of its recipe
(DINOv2's patch-14 models use 98 px locals), which the checks accept as that recipe.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig, ViewAugment, load_config_file
from dinodiag.errors import ConfigError


@dataclass(frozen=True)
class SizeVariant:
    """Crop sizes under which a reference's recipe also runs (its other model sizes)."""

    name: str  # "patch-14"
    global_crops_size: int
    local_crops_size: int
    patch_size: int
    source: str  # where the variant is used


@dataclass(frozen=True)
class Preset:
    name: str  # the name users type: `--preset dinov2`
    description: str  # one line: what it is and when to use it
    source: str  # where the values were read from
    config: PipelineConfig
    reference: bool = True  # False for presets that are examples of mistakes, not references
    size_variants: tuple[SizeVariant, ...] = ()  # other crop sizes of the same recipe
    crops_of: str | None = None  # a preset with the same crops (only photometry differs)


# DINOv2's ViT-L/14 and ViT-g/14 configs (configs/train/vitl14.yaml, vitg14.yaml) keep the
# 224 px globals and cut 98 px locals: multiples of the patch size 14.
DINOV2_PATCH14 = SizeVariant(
    "patch-14", 224, 98, 14, "facebookresearch/dinov2 configs/train/vitl14.yaml, vitg14.yaml"
)


def _recipe(name: str, **crops: object) -> PipelineConfig:
    """The DINO/DINOv2 per-view photometric recipe with the given crop geometry."""
    return PipelineConfig(name=name, **crops)  # type: ignore[arg-type]


_PRESETS = [
    Preset(
        "dinov2",
        "DINOv2 default: 2 x 224 px globals (0.32-1.0), 8 x 96 px locals (0.05-0.32)",
        "facebookresearch/dinov2 dinov2/configs/ssl_default_config.yaml, crops: section",
        _recipe("dinov2"),
        size_variants=(DINOV2_PATCH14,),
    ),
    Preset(
        "dinov2-released",
        "DINOv2 as its released code runs: the dinov2 recipe, but blur 0 / ~0.9 / 0.5 on global "
        "1 / global 2 / locals (its GaussianBlur passes 1 - p to RandomApply)",
        "facebookresearch/dinov2 dinov2/data/transforms.py GaussianBlur and augmentations.py; "
        "dinov2 PR #411, dinov3 issue #286 (open); the released checkpoints were trained so",
        _recipe(
            "dinov2-released",
            global1=ViewAugment(blur_p=0.0, solarize_p=0.0),
            global2=ViewAugment(blur_p=0.9, solarize_p=0.2),
            local=ViewAugment(blur_p=0.5, solarize_p=0.0),
        ),
        size_variants=(DINOV2_PATCH14,),
        crops_of="dinov2",
    ),
    Preset(
        "dino",
        "DINO v1 default: 2 x 224 px globals (0.4-1.0), 8 x 96 px locals (0.05-0.4)",
        "facebookresearch/dino main_dino.py arguments",
        _recipe("dino", global_crops_scale=(0.4, 1.0), local_crops_scale=(0.05, 0.4)),
    ),
    Preset(
        "lightly",
        "lightly DINOTransform default: 2 x 224 px globals (0.4-1.0), 6 x 96 px locals (0.05-0.4)",
        "lightly lightly/transforms/dino_transform.py defaults",
        _recipe(
            "lightly",
            global_crops_scale=(0.4, 1.0),
            local_crops_number=6,
            local_crops_scale=(0.05, 0.4),
        ),
    ),
    Preset(
        "small-images",
        "DINOv2 recipe scaled to 32-96 px datasets (CIFAR, STL-10): 32 px globals, 6 x 16 px "
        "locals, "
        "patch 4, no blur (it wipes out 32 px images)",
        "dinodiag: DINOv2 scale ranges with crop sizes for small images",
        _recipe(
            "small-images",
            global_crops_size=32,
            local_crops_number=6,
            local_crops_size=16,
            patch_size=4,
            global1=ViewAugment(blur_p=0.0),
            global2=ViewAugment(blur_p=0.0, solarize_p=0.2),
            local=ViewAugment(blur_p=0.0),
        ),
    ),
    Preset(
        "seed-broken",
        "the seed write-up's broken pipeline at img_size=96: two views only, global scale 0.2-1.0",
        "shared/SEED.md, 'before' column (build_two_view_augment)",
        _recipe(
            "seed-broken",
            global_crops_size=96,
            global_crops_scale=(0.2, 1.0),
            local_crops_number=0,
            local_crops_size=32,
            local_crops_scale=(0.05, 0.2),
        ),
        reference=False,
    ),
    Preset(
        "seed-fixed",
        "the seed write-up's 'fixed' pipeline at img_size=96: DINO v1 scales, 96 px globals AND "
        "locals",
        "shared/SEED.md, 'after' column (DINO v1 values, globals kept at 96 px)",
        _recipe(
            "seed-fixed",
            global_crops_size=96,
            global_crops_scale=(0.4, 1.0),
            local_crops_number=8,
            local_crops_size=96,
            local_crops_scale=(0.05, 0.4),
        ),
        reference=False,
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}
REFERENCE_PRESETS = tuple(p.name for p in _PRESETS if p.reference)
# References that differ in their crops (a preset that only changes photometry is left out
# of "which crop recipe does this match").
CROP_REFERENCES = tuple(p.name for p in _PRESETS if p.reference and p.crops_of is None)


@dataclass(frozen=True)
class MethodCrops:
    """Another self-supervised method's documented multi-crop geometry.

    Not a preset to compare against: what lets a check say "6 locals is lightly's and
    SwAV's count" instead of calling a known recipe a mistake.
    """

    name: str  # how a message names it: "lightly DINOTransform"
    global_crops_number: int
    local_crops_number: int
    global_crops_scale: tuple[float, float]
    local_crops_scale: tuple[float, float]
    source: str  # where the values were read from
    preset: str | None = None  # the dinodiag preset with this geometry, if any


METHOD_CROPS = (
    MethodCrops(
        "DINOv2", 2, 8, (0.32, 1.0), (0.05, 0.32), "dinov2 ssl_default_config.yaml", "dinov2"
    ),
    MethodCrops("DINO v1", 2, 8, (0.4, 1.0), (0.05, 0.4), "dino main_dino.py arguments", "dino"),
    MethodCrops(
        "lightly DINOTransform",
        2,
        6,
        (0.4, 1.0),
        (0.05, 0.4),
        "lightly lightly/transforms/dino_transform.py defaults",
        "lightly",
    ),
    # iBOT's README commands for its ViT-S/16 and Swin-T models (main_ibot.py's own
    # defaults are 0 locals, (0.14, 1) / (0.05, 0.4)).
    MethodCrops(
        "iBOT", 2, 10, (0.25, 1.0), (0.05, 0.25), "bytedance/ibot README pre-training commands"
    ),
    # SwAV's multi-crop: nmb_crops [2, 6], min_scale_crops [0.14, 0.05], max [1, 0.14].
    MethodCrops("SwAV", 2, 6, (0.14, 1.0), (0.05, 0.14), "facebookresearch/swav main_swav.py"),
    # MSN as lightly's MSNTransform writes it: 2 random views, 10 focal views.
    MethodCrops(
        "MSN", 2, 10, (0.3, 1.0), (0.05, 0.3), "lightly lightly/transforms/msn_transform.py"
    ),
)


def methods_with(field_name: str, value: object, tolerance: float = 1e-3) -> list[str]:
    """Names of the methods whose documented ``field_name`` (a MethodCrops field) is ``value``
    (ranges equal within ``tolerance``)."""
    found = []
    for method in METHOD_CROPS:
        known = getattr(method, field_name)
        if isinstance(known, tuple):
            same = isinstance(value, (tuple, list)) and all(
                abs(float(a) - float(b)) <= tolerance for a, b in zip(known, value, strict=True)
            )
        else:
            same = known == value
        if same:
            found.append(method.name)
    return found


def size_variant(reference: str, global_size: int, local_size: int | None) -> SizeVariant | None:
    """The size variant of preset ``reference`` with these crop sizes, if it has one."""
    preset = PRESETS.get(reference)
    for variant in preset.size_variants if preset else ():
        if variant.global_crops_size == global_size and local_size in (
            None,
            variant.local_crops_size,
        ):
            return variant
    return None


def lookup_preset(name: str, table: dict[str, Any], kind: str, tail: str = "") -> Any:
    """``table[name]`` with names folded (case, ``_`` = ``-``); a near miss gets a suggestion.

    ``kind`` names the table in the error ("preset", "training preset"); ``tail`` adds
    what else the caller accepts.
    """
    key = name.strip().lower().replace("_", "-")
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, list(table), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"unknown {kind} {name!r}.{hint} {kind.capitalize()}s: {', '.join(table)}{tail}."
    )


def get_preset(name: str) -> Preset:
    """The preset called ``name``; a near miss gets a suggestion."""
    return lookup_preset(
        name, PRESETS, "preset", " (or give the path of a YAML / JSON / DINOv2 config file)"
    )


def load_config(name_or_path: str | Path) -> PipelineConfig:
    """A config from a preset name, a dinodiag YAML/JSON file, or a DINOv2 training config file."""
    text = str(name_or_path)
    path = Path(text)
    if text.strip().lower().replace("_", "-") in PRESETS:
        return PRESETS[text.strip().lower().replace("_", "-")].config
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        return load_config_file(path)
    return get_preset(text).config
