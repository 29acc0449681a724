"""DINOv2 training configs read as DINOv2 reads them: the file overrides the default config.

DINOv2's trainer merges every file in ``configs/train/`` over its
``ssl_default_config.yaml`` (``vitl16_short.yaml`` sets only ``train:`` and
``student.block_chunks``; ``vitl14.yaml`` sets patch 14, SwiGLU, Sinkhorn and
98 px locals). :data:`DINOV2_DEFAULTS` writes those default values down (the
sections that describe the data pipeline and the training recipe, see
``shared/REFERENCE.md``); :func:`resolve_dinov2_config` merges a user's file over
them and says which values came from the file.

    resolved = resolve_dinov2_config(yaml.safe_load(text), source="vitl14.yaml")
    resolved.values["crops"]["local_crops_size"]   # 98 (from the file)
    resolved.values["crops"]["global_crops_scale"]  # [0.32, 1.0] (DINOv2's default)
    resolved.from_file                              # {"crops.local_crops_size", ...}
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Any

from dinodiag.errors import ConfigError

# ssl_default_config.yaml, section by section (DINOv2's names and values).
DINOV2_DEFAULTS: dict[str, dict[str, Any]] = {
    "dino": {
        "loss_weight": 1.0,
        "head_n_prototypes": 65536,
        "head_bottleneck_dim": 256,
        "head_nlayers": 3,
        "head_hidden_dim": 2048,
        "koleo_loss_weight": 0.1,
    },
    "ibot": {
        "loss_weight": 1.0,
        "mask_sample_probability": 0.5,
        "mask_ratio_min_max": [0.1, 0.5],
        "separate_head": False,
        "head_n_prototypes": 65536,
        "head_bottleneck_dim": 256,
        "head_nlayers": 3,
        "head_hidden_dim": 2048,
    },
    "train": {
        "batch_size_per_gpu": 64,
        "dataset_path": "ImageNet:split=TRAIN",
        "output_dir": ".",
        "saveckp_freq": 20,
        "seed": 0,
        "num_workers": 10,
        "OFFICIAL_EPOCH_LENGTH": 1250,
        "cache_dataset": True,
        "centering": "centering",  # or "sinkhorn_knopp"
    },
    "student": {
        "arch": "vit_large",
        "patch_size": 16,
        "drop_path_rate": 0.3,
        "layerscale": 1.0e-05,
        "drop_path_uniform": True,
        "pretrained_weights": "",
        "ffn_layer": "mlp",
        "block_chunks": 0,
        "qkv_bias": True,
        "proj_bias": True,
        "ffn_bias": True,
        "num_register_tokens": 0,
        "interpolate_antialias": False,
        "interpolate_offset": 0.1,
    },
    "teacher": {
        "momentum_teacher": 0.992,
        "final_momentum_teacher": 1,
        "warmup_teacher_temp": 0.04,
        "teacher_temp": 0.07,
        "warmup_teacher_temp_epochs": 30,
    },
    "optim": {
        "epochs": 100,
        "weight_decay": 0.04,
        "weight_decay_end": 0.4,
        "base_lr": 0.004,  # for a batch of 1024, scaled by scaling_rule
        "lr": 0.0,  # set by the trainer from base_lr and the batch size
        "warmup_epochs": 10,
        "min_lr": 1.0e-06,
        "clip_grad": 3.0,
        "freeze_last_layer_epochs": 1,
        "scaling_rule": "sqrt_wrt_1024",
        "patch_embed_lr_mult": 0.2,
        "layerwise_decay": 0.9,
        "adamw_beta1": 0.9,
        "adamw_beta2": 0.999,
    },
    "crops": {
        "global_crops_scale": [0.32, 1.0],
        "local_crops_number": 8,
        "local_crops_scale": [0.05, 0.32],
        "global_crops_size": 224,
        "local_crops_size": 96,
    },
    "evaluation": {"eval_period_iterations": 12500},
}

# Top-level keys of DINOv2 configs that say nothing about the pipeline or the recipe:
# accepted and left alone (precision / sharding, pretrained weights).
DINOV2_OTHER_SECTIONS = ("MODEL", "compute_precision")

# Sections whose keys are checked strictly (an unknown key there is a typo to report).
STRICT_SECTIONS = ("crops",)
# The PipelineConfig fields a DINOv2 training config carries, and where: one key map, read by
# pipeline_values and written by dinov2_values (the fixes' DINOv2 section).
PIPELINE_KEYS = {
    "global_crops_scale": ("crops", "global_crops_scale"),
    "local_crops_number": ("crops", "local_crops_number"),
    "local_crops_scale": ("crops", "local_crops_scale"),
    "global_crops_size": ("crops", "global_crops_size"),
    "local_crops_size": ("crops", "local_crops_size"),
    "patch_size": ("student", "patch_size"),
}


@dataclass(frozen=True)
class ResolvedDinov2Config:
    """A DINOv2 config merged over :data:`DINOV2_DEFAULTS`."""

    values: dict[str, dict[str, Any]]  # every section, defaults filled in
    from_file: frozenset[str]  # "section.key" of every value the file set
    source: str  # the file (for messages)
    notes: tuple[str, ...] = field(default=())  # what was accepted but not used, and why

    def get(self, dotted: str) -> Any:
        """``resolved.get("student.patch_size")``."""
        section, _, key = dotted.partition(".")
        return self.values[section][key]

    def origin(self, dotted: str) -> str:
        """ "file" or "DINOv2 default" for a ``section.key``."""
        return "file" if dotted in self.from_file else "DINOv2 default"


def is_dinov2_config(data: Any) -> bool:
    """A mapping whose top-level keys are DINOv2 config sections (``crops:``, ``student:``, ...).

    dinodiag's own pipeline files use flat keys (``global_crops_size``, ``global1``, ...),
    none of which is a DINOv2 section name, so the two never overlap.
    """
    if not isinstance(data, dict) or not data:
        return False
    known = set(DINOV2_DEFAULTS) | set(DINOV2_OTHER_SECTIONS)
    return any(key in known for key in data)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(options)}."


def resolve_dinov2_config(
    data: dict[str, Any], source: str = "<dinov2 config>"
) -> ResolvedDinov2Config:
    """Merge a DINOv2 training config over DINOv2's defaults, as its trainer does.

    Unknown keys in ``crops:`` are refused (they would silently change nothing); a section
    that is not a mapping is refused; unknown sections and unknown keys elsewhere are kept
    and listed in ``notes`` (forks add their own), so nothing is dropped without a word.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: a DINOv2 config is a mapping of sections, got {type(data).__name__}."
        )
    values = copy.deepcopy(DINOV2_DEFAULTS)
    from_file: set[str] = set()
    notes: list[str] = []
    for section, content in data.items():
        section = str(section)
        if section in DINOV2_OTHER_SECTIONS:
            notes.append(f"{section}: not used by dinodiag (precision / sharding / weights)")
            continue
        if section not in values:
            notes.append(
                f"unknown section {section!r} kept as it is (not a DINOv2 default section)"
            )
            values[section] = content if isinstance(content, dict) else {"value": content}
            continue
        if content is None:  # "crops:" with nothing under it
            continue
        if not isinstance(content, dict):
            raise ConfigError(
                f"{source}: section {section!r} must be a mapping of keys, got {content!r:.80}."
            )
        for key, value in content.items():
            key = str(key)
            if key not in values[section]:
                if section in STRICT_SECTIONS:
                    raise ConfigError(
                        f"{source}: unknown key '{section}.{key}'."
                        f"{_suggest(key, list(DINOV2_DEFAULTS[section]))}"
                    )
                notes.append(f"{section}.{key}: not a DINOv2 default key, kept")
            values[section][key] = value
            from_file.add(f"{section}.{key}")
    return ResolvedDinov2Config(values, frozenset(from_file), source, tuple(notes))


def pipeline_values(resolved: ResolvedDinov2Config) -> dict[str, Any]:
    """The :class:`~dinodiag.augment.config.PipelineConfig` fields a DINOv2 config sets.

    Crop geometry from ``crops:`` and the patch size from ``student.patch_size``
    (:data:`PIPELINE_KEYS`); the photometric recipe is DINOv2's (the code, not the config,
    decides it).
    """
    return {field: resolved.values[section][key] for field, (section, key) in PIPELINE_KEYS.items()}


def dinov2_values(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The other direction: PipelineConfig ``values`` (``{"local_crops_number": 8, ...}``) as
    the DINOv2 sections that hold them (``{"crops": {...}, "student": {"patch_size": 14}}``),
    in :data:`PIPELINE_KEYS` order; fields a DINOv2 config cannot set are left out."""
    out: dict[str, dict[str, Any]] = {}
    for name, (section, key) in PIPELINE_KEYS.items():
        if name in values:
            out.setdefault(section, {})[key] = values[name]
    return out
