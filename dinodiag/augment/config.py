"""The multi-crop pipeline configuration: one frozen object feeds every view.

Field names follow DINOv2's ``crops:`` section where one exists
(``global_crops_scale``, ``local_crops_number`` ...), so a config read from a
DINOv2 training YAML and one written by hand use the same words.

Validation lives in one place (:func:`validate`); every error names the field,
the value and the allowed range. :func:`config_from_dict` turns plain data
(YAML / JSON) into a config and refuses unknown keys with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dinodiag.augment import dinov2_config
from dinodiag.errors import ConfigError, shown
from dinodiag.safe_yaml import load_config_text, read_config_file
from dinodiag.typed_config import build_config, check_types

INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming")


@dataclass(frozen=True)
class ViewAugment:
    """Flip and photometric recipe of one kind of view (first global, other globals, locals).

    Defaults are the DINO / DINOv2 per-view recipe (REFERENCE.md): the probabilities
    that differ between view kinds are blur and solarize, set per preset.
    """

    flip_p: float = 0.5  # horizontal flip probability; 0 for data where left/right matters
    jitter_p: float = 0.8  # probability of applying colour jitter at all
    brightness: float = 0.4  # factor drawn in [max(0, 1-b), 1+b]; lower it for low-contrast data
    contrast: float = 0.4  # factor drawn in [max(0, 1-c), 1+c]
    saturation: float = 0.2  # factor drawn in [max(0, 1-s), 1+s]
    hue: float = 0.1  # shift drawn in [-h, h], h <= 0.5 (fraction of the hue circle)
    grayscale_p: float = 0.2  # probability of converting to 3-channel grayscale
    blur_p: float = 0.5  # Gaussian blur probability (1.0 / 0.1 / 0.5 for global1 / global2 / local)
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # sigma drawn uniformly in this range (pixels)
    solarize_p: float = 0.0  # solarize probability (0.2 on the second global view in DINO/DINOv2)
    solarize_threshold: int = 128  # pixels >= threshold are inverted (0..256)


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the multi-crop augmentation of DINO / DINOv2 needs.

    Global crops are seen by teacher and student; local crops by the student
    only. Sizes are output sizes in pixels (square crops).
    """

    name: str = "custom"  # a label shown in reports; does not change behaviour
    global_crops_number: int = 2  # DINO/DINOv2 use 2: the teacher compares the two global views
    global_crops_size: int = 224  # output side of global crops; 224 on ImageNet-size images
    global_crops_scale: tuple[float, float] = (0.32, 1.0)  # area fraction range of the source kept
    local_crops_number: int = 8  # 6-10 typical; fewer saves compute (each costs ~1/5 of a global)
    local_crops_size: int = 96  # must stay well below the global size (multi-crop asymmetry)
    local_crops_scale: tuple[float, float] = (
        0.05,
        0.32,
    )  # upper bound usually = global lower bound
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect-ratio range (w/h), log-uniform
    interpolation: str = "bicubic"  # resize filter of RandomResizedCrop
    global1: ViewAugment = field(default_factory=lambda: ViewAugment(blur_p=1.0, solarize_p=0.0))
    global2: ViewAugment = field(default_factory=lambda: ViewAugment(blur_p=0.1, solarize_p=0.2))
    local: ViewAugment = field(default_factory=lambda: ViewAugment(blur_p=0.5, solarize_p=0.0))
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet normalisation mean
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)  # ImageNet normalisation std
    patch_size: int = (
        16  # ViT patch size; crop sizes should be multiples of it (14 -> 98 px locals)
    )

    def __post_init__(self) -> None:
        validate(self)

    @property
    def num_views(self) -> int:
        return self.global_crops_number + self.local_crops_number

    def augment_for(self, group: str, index: int) -> ViewAugment:
        """The photometric recipe of view ``index`` of ``group`` ("global" / "local")."""
        if group == "local":
            return self.local
        return self.global1 if index == 0 else self.global2

    def replace(self, **changes: Any) -> PipelineConfig:
        """A copy with ``changes`` applied (validated). Nested keys: ``global1={'blur_p': 0.5}``."""
        data = to_dict(self)
        for key, value in changes.items():
            if key in _AUGMENT_FIELDS and isinstance(value, dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return config_from_dict(data)


_AUGMENT_FIELDS = ("global1", "global2", "local")


# --------------------------------------------------------------------------- validation


# Upper bounds: what one sample may cost. A view is a (3, size, size) float32 tensor, so a
# sample of N views of side S takes 12 * N * S^2 bytes before batching (DINOv2's 2 x 224 +
# 8 x 96 is 2 MiB); unbounded, 64 locals of 4096 px would be 13 GB per image.
COUNT_LIMITS = {  # field -> (min, max, why)
    "global_crops_number": (1, 16, "2 is the recipe"),
    "local_crops_number": (0, 64, "6-10 typical"),
}
MAX_CROP_SIZE = 1024  # output side of any crop, in pixels
MAX_SAMPLE_PIXELS = 16 * 1024 * 1024  # pixels of all views of one sample (192 MiB as float32)
FIELD_MAXIMA = {  # the largest value of each bounded integer field (for edit widgets)
    **{name: hi for name, (_, hi, _) in COUNT_LIMITS.items()},
    "global_crops_size": MAX_CROP_SIZE,
    "local_crops_size": MAX_CROP_SIZE,
    "patch_size": MAX_CROP_SIZE,
}


def view_bytes(size: int) -> int:
    """Bytes of one (3, size, size) float32 view."""
    return 3 * 4 * size * size


def sample_pixels(cfg: PipelineConfig) -> int:
    """Pixels of all the views of one sample (globals and locals)."""
    return (
        cfg.global_crops_number * cfg.global_crops_size**2
        + cfg.local_crops_number * cfg.local_crops_size**2
    )


def _mib(nbytes: int) -> str:
    return f"{nbytes / 2**20:,.0f} MiB" if nbytes >= 2**20 else f"{nbytes / 1024:,.0f} KiB"


def _fail(field_name: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{field_name} = {shown(value)} is invalid: allowed {allowed}.")


def _check_prob(name: str, value: float) -> None:
    if not (0.0 <= value <= 1.0):
        raise _fail(name, value, "a probability in [0, 1]")


def _check_range(name: str, value: tuple[float, float], lo: float, hi: float, what: str) -> None:
    a, b = value
    if not (lo < a <= hi and lo < b <= hi):
        raise _fail(name, value, f"{what}: both values in ({lo:g}, {hi:g}]")
    if a > b:
        raise _fail(name, value, f"min <= max (got min {a:g} > max {b:g}); swap the two values")


def _validate_augment(prefix: str, aug: ViewAugment) -> None:
    for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
        _check_prob(f"{prefix}.{name}", getattr(aug, name))
    for name in ("brightness", "contrast", "saturation"):
        value = getattr(aug, name)
        if not (0.0 <= value <= 10.0):
            raise _fail(
                f"{prefix}.{name}", value, "a jitter strength in [0, 10] (0.4 is the recipe)"
            )
    if not (0.0 <= aug.hue <= 0.5):
        raise _fail(f"{prefix}.hue", aug.hue, "a hue shift in [0, 0.5]")
    lo, hi = aug.blur_sigma
    if not (0 < lo <= hi <= 100):
        raise _fail(f"{prefix}.blur_sigma", aug.blur_sigma, "0 < min <= max <= 100 pixels")
    if not (0 <= aug.solarize_threshold <= 256):
        raise _fail(
            f"{prefix}.solarize_threshold", aug.solarize_threshold, "an integer in [0, 256]"
        )


def validate(cfg: PipelineConfig) -> None:
    """Raise :class:`ConfigError` naming the first field whose value is impossible (of the
    wrong type first: a config built in Python gets the message a file would)."""
    check_types(cfg)
    for name, (lo, hi, why) in COUNT_LIMITS.items():
        value = getattr(cfg, name)
        if not lo <= value <= hi:
            raise _fail(name, value, f"an integer in [{lo}, {hi}] ({why})")
    if not 1 <= cfg.patch_size <= MAX_CROP_SIZE:
        raise _fail(
            "patch_size",
            cfg.patch_size,
            f"an integer in [1, {MAX_CROP_SIZE}] (8, 14 or 16 for ViTs)",
        )
    for name in ("global_crops_size", "local_crops_size"):
        value = getattr(cfg, name)
        if value < 1 or value > MAX_CROP_SIZE:
            raise _fail(
                name,
                value,
                f"an integer in [1, {MAX_CROP_SIZE}] (one {MAX_CROP_SIZE} px view is "
                f"{_mib(view_bytes(MAX_CROP_SIZE))} as a float32 tensor; DINOv2 trains at 224 "
                "and fine-tunes at 518)",
            )
    pixels = sample_pixels(cfg)
    if pixels > MAX_SAMPLE_PIXELS:
        budget = _mib(view_bytes(1) * MAX_SAMPLE_PIXELS)
        raise ConfigError(
            "global_crops_number x global_crops_size² + local_crops_number x local_crops_size² "
            f"= {cfg.global_crops_number} x {cfg.global_crops_size}² + {cfg.local_crops_number} "
            f"x {cfg.local_crops_size}² = {pixels:,} pixels is invalid: the views of one image "
            f"would take {_mib(view_bytes(1) * pixels)} as float32 tensors, before batching; "
            f"allowed at most {MAX_SAMPLE_PIXELS:,} pixels ({budget}): lower the crop sizes "
            "or counts (the DINOv2 recipe has 174,080)."
        )
    _check_range("global_crops_scale", cfg.global_crops_scale, 0.0, 1.0, "area fractions")
    _check_range("local_crops_scale", cfg.local_crops_scale, 0.0, 1.0, "area fractions")
    lo, hi = cfg.crop_ratio
    if not (0 < lo <= hi <= 100):
        raise _fail("crop_ratio", cfg.crop_ratio, "0 < min <= max <= 100 (width / height)")
    if cfg.interpolation not in INTERPOLATIONS:
        raise _fail("interpolation", cfg.interpolation, f"one of {', '.join(INTERPOLATIONS)}")
    for name in _AUGMENT_FIELDS:
        _validate_augment(name, getattr(cfg, name))
    for name in ("mean", "std"):
        value = getattr(cfg, name)
        if len(value) != 3:
            raise _fail(name, value, "three numbers, one per RGB channel")
    if any(s <= 0 for s in cfg.std):
        raise _fail("std", cfg.std, "three positive numbers")


# --------------------------------------------------------------------------- dict <-> config


def to_dict(cfg: PipelineConfig) -> dict[str, Any]:
    """Plain data (lists, not tuples) that :func:`config_from_dict` reads back."""

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def config_from_dict(data: Any) -> PipelineConfig:
    """A validated config from plain data; missing keys take the DINOv2 defaults."""
    return build_config(PipelineConfig, data)


# --------------------------------------------------------------------------- files


def _read_mapping(path: Path) -> dict[str, Any]:
    return parse_config_text(read_config_file(path), source=str(path))


def parse_config_text(text: str, source: str = "<text>") -> dict[str, Any]:
    """Parse YAML or JSON text (JSON is YAML) into a mapping, with the line of a syntax error.

    Bounded (:mod:`dinodiag.safe_yaml`): no alias bomb, no nesting past 50 levels, no key
    given twice.
    """
    data = load_config_text(text, source=source)
    if data is None:
        raise ConfigError(f"{source}: the file is empty; write a mapping of config keys.")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of config keys at the top, got {type(data).__name__}."
        )
    return data


def is_dinov2_config(data: dict[str, Any]) -> bool:
    """A DINOv2 training config: its top-level keys are DINOv2 sections (``crops:``,
    ``student:``, ``train:`` ...), none of which is a dinodiag pipeline key (see
    :func:`dinodiag.augment.dinov2_config.is_dinov2_config`)."""
    return dinov2_config.is_dinov2_config(data)


def config_from_dinov2(data: dict[str, Any], source: str = "<dinov2 config>") -> PipelineConfig:
    """The pipeline a DINOv2 training config describes, read as DINOv2 reads it.

    The file is merged over DINOv2's ``ssl_default_config.yaml`` values
    (:func:`~dinodiag.augment.dinov2_config.resolve_dinov2_config`): a file without a
    ``crops:`` section (``vitl16_short.yaml`` sets only ``train:``) trains with DINOv2's
    default crops, ``vitl14.yaml`` with its 98 px locals and patch 14. The crop geometry and
    ``student.patch_size`` come from the merged config; the photometric recipe is DINOv2's
    (its code fixes it, not the config). Unknown keys of ``crops:`` are refused with a
    suggestion; the other sections do not describe the data pipeline.
    """
    resolved = dinov2_config.resolve_dinov2_config(data, source=source)
    values: dict[str, Any] = {"name": Path(source).stem if source else "dinov2-file"}
    values.update(dinov2_config.pipeline_values(resolved))
    try:
        return config_from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config_file(path: str | Path) -> PipelineConfig:
    """A config from a dinodiag YAML/JSON file or a DINOv2 training config file."""
    path = Path(path)
    data = _read_mapping(path)
    if is_dinov2_config(data):
        return config_from_dinov2(data, source=str(path))
    try:
        return config_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: PipelineConfig, path: str | Path) -> Path:
    """Write ``cfg`` as JSON (``.json``) or YAML (anything else); :func:`load_config` reads it."""
    path = Path(path)
    data = to_dict(cfg)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(dump_yaml(cfg), encoding="utf-8")
    return path


def dump_yaml(cfg: PipelineConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def flatten(cfg: PipelineConfig) -> dict[str, Any]:
    """``{"global_crops_size": 224, "global1.blur_p": 1.0, ...}``: for diffs and tables."""
    flat: dict[str, Any] = {}
    for key, value in to_dict(cfg).items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = (
                    tuple(sub_value) if isinstance(sub_value, list) else sub_value
                )
        else:
            flat[key] = tuple(value) if isinstance(value, list) else value
    return flat
