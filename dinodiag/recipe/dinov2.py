"""A DINOv2 training config file as a :class:`~dinodiag.recipe.config.TrainConfig`.

``python -m dinodiag train --config vitl14.yaml --data DIR`` trains what the file describes, the
file merged over DINOv2's ``ssl_default_config.yaml`` as DINOv2's trainer merges it
(:func:`~dinodiag.augment.dinov2_config.resolve_dinov2_config`). Every DINOv2 key that shapes
training maps to one dinodiag field (:data:`FIELD_MAP`); ``crops:`` and ``student.patch_size``
make the pipeline (``data.pipeline`` is the file itself). Schedules are laid out as DINOv2 lays
them out: ``optim.epochs`` epochs of ``train.OFFICIAL_EPOCH_LENGTH`` steps, and ``--max-steps`` /
``--max-seconds`` run the first steps of that schedule (``run.keep_full_schedules``).

What dinodiag cannot train the way the file says (biases turned off, pretrained weights, an
unknown scaling rule ...) is refused with what to change; what does not change training
(``output_dir``, ``block_chunks``, precision settings ...) is listed in ``notes``.

    recipe = recipe_from_file("vitl14.yaml")
    recipe.config.model.patch_size        # 14 (from the file)
    recipe.origins["model.patch_size"]    # ("student.patch_size", "file")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dinodiag.augment.config import parse_config_text
from dinodiag.augment.dinov2_config import (
    DINOV2_DEFAULTS,
    ResolvedDinov2Config,
    resolve_dinov2_config,
)
from dinodiag.errors import ConfigError
from dinodiag.recipe.config import TrainConfig
from dinodiag.safe_yaml import read_config_file


def _arch(value: Any) -> str:
    name = str(value).removesuffix("_memeff")  # DINOv2 strips the same suffix
    if name not in ("vit_small", "vit_base", "vit_large", "vit_giant2", "vit_tiny", "resnet18"):
        raise ConfigError(
            f"student.arch = {value!r} is not a ViT dinodiag builds: use vit_small, vit_base, "
            "vit_large or vit_giant2 (DINOv2's names)."
        )
    return name


def _centering(value: Any) -> str:
    names = {"centering": "center", "sinkhorn_knopp": "sinkhorn"}
    if value not in names:
        raise ConfigError(
            f"train.centering = {value!r} is not one of DINOv2's: centering or sinkhorn_knopp."
        )
    return names[value]


def _scaling(value: Any) -> str:
    if value != "sqrt_wrt_1024":
        raise ConfigError(
            f"optim.scaling_rule = {value!r}: DINOv2 (and dinodiag) know only sqrt_wrt_1024 "
            "(lr = base_lr * sqrt(batch / 1024)); remove the key or set it to sqrt_wrt_1024."
        )
    return "sqrt"


def _layerscale(value: Any) -> float | None:
    return value or None  # DINOv2: None or 0 means no LayerScale


def _ffn(value: Any) -> str:
    if value not in ("mlp", "swiglu", "swiglufused"):
        raise ConfigError(
            f"student.ffn_layer = {value!r}: dinodiag's ViT has mlp and swiglu (= swiglufused); "
            "an identity FFN is not supported."
        )
    return "swiglu" if value == "swiglufused" else str(value)


# DINOv2 key -> (dinodiag field, conversion). Applied to every value of the merged config.
FIELD_MAP: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "student.arch": ("model.arch", _arch),
    "student.patch_size": ("model.patch_size", None),
    "student.drop_path_rate": ("model.drop_path_rate", None),
    "student.drop_path_uniform": ("model.drop_path_uniform", None),
    "student.layerscale": ("model.layerscale_init", _layerscale),
    "student.ffn_layer": ("model.ffn_layer", _ffn),
    "student.num_register_tokens": ("model.num_register_tokens", None),
    "student.interpolate_offset": ("model.interpolate_offset", None),
    "student.interpolate_antialias": ("model.interpolate_antialias", None),
    "dino.loss_weight": ("optim.dino_weight", None),
    "dino.head_n_prototypes": ("model.num_prototypes", None),
    "dino.head_bottleneck_dim": ("model.head_bottleneck_dim", None),
    "dino.head_nlayers": ("model.head_layers", None),
    "dino.head_hidden_dim": ("model.head_hidden_dim", None),
    "dino.koleo_loss_weight": ("optim.koleo_weight", None),
    "ibot.loss_weight": ("optim.ibot_weight", None),
    "ibot.mask_sample_probability": ("optim.mask_probability", None),
    "ibot.mask_ratio_min_max": ("optim.mask_ratio", None),
    "ibot.separate_head": ("model.ibot_separate_head", None),
    "train.batch_size_per_gpu": ("data.batch_size", None),
    "train.seed": ("run.seed", None),
    "train.OFFICIAL_EPOCH_LENGTH": ("run.epoch_length", None),
    "train.centering": ("optim.centering", _centering),
    "teacher.momentum_teacher": ("optim.momentum_start", None),
    "teacher.final_momentum_teacher": ("optim.momentum_end", None),
    "teacher.warmup_teacher_temp": ("optim.teacher_temp_start", None),
    "teacher.teacher_temp": ("optim.teacher_temp_end", None),
    "teacher.warmup_teacher_temp_epochs": ("optim.teacher_temp_warmup_epochs", None),
    "optim.epochs": ("run.epochs", None),
    "optim.weight_decay": ("optim.weight_decay_start", None),
    "optim.weight_decay_end": ("optim.weight_decay_end", None),
    "optim.base_lr": ("optim.base_lr", None),
    "optim.warmup_epochs": ("optim.warmup_epochs", None),
    "optim.min_lr": ("optim.min_lr", None),
    "optim.clip_grad": ("optim.clip_grad", None),
    "optim.freeze_last_layer_epochs": ("optim.freeze_last_layer_epochs", None),
    "optim.scaling_rule": ("optim.lr_scaling", _scaling),
    "optim.patch_embed_lr_mult": ("optim.patch_embed_lr_mult", None),
    "optim.layerwise_decay": ("optim.layerwise_decay", None),
    "optim.adamw_beta1": ("optim.beta1", None),
    "optim.adamw_beta2": ("optim.beta2", None),
}
# The separate iBOT head's shape (only read with ibot.separate_head: true).
IBOT_HEAD_MAP = {
    "ibot.head_n_prototypes": "model.ibot_num_prototypes",
    "ibot.head_hidden_dim": "model.ibot_head_hidden_dim",
    "ibot.head_bottleneck_dim": "model.ibot_head_bottleneck_dim",
    "ibot.head_nlayers": "model.ibot_head_layers",
}
CROP_KEYS = tuple(f"crops.{key}" for key in DINOV2_DEFAULTS["crops"])  # read by the pipeline
# Keys that do not change what is trained: why each is left alone.
NOT_USED = {
    "train.dataset_path": "the data comes from --data",
    "train.output_dir": "the run directory is --run-dir",
    "train.saveckp_freq": "checkpoints follow --checkpoint-every",
    "train.cache_dataset": "dinodiag's loaders cache on their own",
    "train.num_workers": "loader processes: --workers (auto by default)",
    "student.block_chunks": "FSDP wrapping only (DINOv2 checkpoints then nest blocks.C.N)",
    "optim.lr": "set from base_lr and the batch, as DINOv2 does",
    "evaluation.eval_period_iterations": "teacher checkpoints for evaluation: k-NN follows "
    "--eval-every",
}
# Keys with one value dinodiag can train: another value is refused with the reason.
REQUIRED = {
    "student.qkv_bias": (True, "dinodiag's attention always has qkv biases"),
    "student.proj_bias": (True, "dinodiag's attention always has a projection bias"),
    "student.ffn_bias": (True, "dinodiag's FFN layers always have biases"),
    "student.pretrained_weights": ("", "dinodiag trains from scratch; remove the key"),
}


@dataclass(frozen=True)
class Dinov2Recipe:
    """What a DINOv2 config file trains, and where each value came from."""

    config: TrainConfig  # the run's config (``data.data`` still to be given)
    resolved: ResolvedDinov2Config  # the file merged over DINOv2's defaults
    origins: dict[str, tuple[str, str]]  # dinodiag field -> (DINOv2 key, "file" | "DINOv2 default")
    notes: tuple[str, ...] = field(default=())  # accepted, not used, and why

    def describe(self) -> dict[str, Any]:
        """Plain data for ``--print-config``: each field taken from the file, each from
        DINOv2's defaults, and what was not used."""
        taken: dict[str, dict[str, Any]] = {"file": {}, "DINOv2 default": {}}
        for target, (key, origin) in sorted(self.origins.items()):
            taken[origin][key] = {"field": target, "value": _plain(self.resolved.get(key))}
        return {
            "file": self.resolved.source,
            "from_file": taken["file"],
            "from_dinov2_defaults": taken["DINOv2 default"],
            "not_used": list(self.notes),
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def recipe_from_file(path: str | Path) -> Dinov2Recipe:
    """Read a DINOv2 training config (YAML) and map it to a :class:`TrainConfig`.

    Raises :class:`ConfigError` naming the file and the DINOv2 key for anything dinodiag cannot
    train as written.
    """
    path = Path(path)
    text = read_config_file(path)  # says what a path that is no regular file is; never blocks
    resolved = resolve_dinov2_config(parse_config_text(text, source=str(path)), str(path))
    return recipe_from_resolved(resolved, pipeline=str(path))


def recipe_from_resolved(resolved: ResolvedDinov2Config, pipeline: str) -> Dinov2Recipe:
    """The :class:`Dinov2Recipe` of a merged DINOv2 config whose crops ``pipeline`` reads."""
    source = resolved.source
    for key, (wanted, why) in REQUIRED.items():
        value = resolved.get(key)
        if value != wanted and not (wanted == "" and not value):
            raise ConfigError(f"{source}: {key} = {value!r} cannot be trained: {why}.")
    overrides: dict[str, Any] = {}
    origins: dict[str, tuple[str, str]] = {}
    for key, (target, convert) in FIELD_MAP.items():
        value = resolved.get(key)
        try:
            overrides[target] = convert(value) if convert else value
        except ConfigError as exc:  # the value's file first (or DINOv2's default it kept)
            raise ConfigError(f"{source}: {exc} ({resolved.origin(key)})") from None
        origins[target] = (key, resolved.origin(key))
    if overrides["optim.mask_ratio"] is not None:
        overrides["optim.mask_ratio"] = tuple(overrides["optim.mask_ratio"])
    notes = list(resolved.notes)
    if resolved.get("ibot.separate_head"):
        for key, target in IBOT_HEAD_MAP.items():
            overrides[target] = resolved.get(key)
            origins[target] = (key, resolved.origin(key))
    else:
        dino_k, ibot_k = (
            resolved.get("dino.head_n_prototypes"),
            resolved.get("ibot.head_n_prototypes"),
        )
        if dino_k != ibot_k:
            raise ConfigError(
                f"{source}: ibot.head_n_prototypes = {ibot_k} differs from "
                f"dino.head_n_prototypes = {dino_k} but the iBOT head is shared with the DINO "
                "head (ibot.separate_head: false): DINOv2 itself fails on this. Set "
                "ibot.separate_head: true, or the same prototype count."
            )
        notes += [
            f"{key}: the iBOT head is the DINO head (ibot.separate_head: false)"
            for key in IBOT_HEAD_MAP
            if key in resolved.from_file and key != "ibot.head_n_prototypes"
        ]
    workers = resolved.get("train.num_workers")
    if "train.num_workers" in resolved.from_file:
        overrides["data.workers"] = workers
        origins["data.workers"] = ("train.num_workers", "file")
    notes += [
        f"{key} = {_plain(resolved.get(key))!r}: {why}"
        for key, why in NOT_USED.items()
        if key in resolved.from_file and key != "train.num_workers"
    ]
    overrides.update(
        {
            "name": Path(source).stem or "dinov2",
            "data.pipeline": pipeline,  # crops: and student.patch_size
            "run.keep_full_schedules": True,
        }
    )
    for key in CROP_KEYS:
        origins[f"pipeline.{key.removeprefix('crops.')}"] = (key, resolved.origin(key))
    try:
        config = TrainConfig().with_overrides(overrides)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {_name_dinov2_key(str(exc), origins)}") from None
    return Dinov2Recipe(config=config, resolved=resolved, origins=origins, notes=tuple(notes))


def _name_dinov2_key(message: str, origins: dict[str, tuple[str, str]]) -> str:
    """Append the DINOv2 key behind the dinodiag field a validation message names."""
    for target, (key, _) in origins.items():
        if re.search(rf"\b{re.escape(target)}\b", message):
            return f"{message} (from {key})"
    return message
