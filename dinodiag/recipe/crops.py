"""The crops a training config trains: its ``data.pipeline`` (a preset, a pipeline file or a
DINOv2 config file) with the crop overrides, the patch size and a DINOv2 file's blur applied,
checked against the ViT (crop sides multiples of the patch, two views or more)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import ConfigError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import VIEWS, ModelConfig, TrainConfig


def resolve_pipeline(config: TrainConfig) -> PipelineConfig:
    """The augmentation a run uses: ``data.pipeline`` with the crop overrides and patch size.

    Raises :class:`ConfigError` when a ViT crop size is not a multiple of the patch size, or
    when ``data.pipeline`` is code (``file.py:factory``): your own pipeline is measured on
    the data (:func:`dinodiag.train.pipelines.resolve_run_pipeline`).
    """
    from dinodiag.augment.presets import load_config

    if is_pipeline_spec(config.data.pipeline):
        raise ConfigError(
            f"data.pipeline = {config.data.pipeline!r} is your own code: its crops are measured "
            "on the training images (dinodiag.train.pipelines.resolve_run_pipeline), not read "
            "from a config."
        )
    pipeline = load_config(config.data.pipeline)
    if _pipeline_file(config.data.pipeline)[1]:
        pipeline = with_dinov2_blur(pipeline, config.data.dinov2_blur)
    file_patch = pipeline_file_patch_size(config.data.pipeline)
    vit = config.model.arch.startswith("vit")
    if vit and file_patch is not None and file_patch != config.model.patch_size:
        raise ConfigError(
            f"the pipeline file {config.data.pipeline} sets the patch size {file_patch} "
            f"(student.patch_size / patch_size) but model.patch_size is "
            f"{config.model.patch_size}: the ViT must cut the crops it was made for, so set "
            f"--patch-size {file_patch} (the train command does when --patch-size is not given) "
            "or change the file."
        )
    changes: dict[str, Any] = {"patch_size": config.model.patch_size}
    if config.data.local_crops is not None:
        changes["local_crops_number"] = config.data.local_crops
    if config.data.global_crops_size is not None:
        changes["global_crops_size"] = config.data.global_crops_size
    if config.data.local_crops_size is not None:
        changes["local_crops_size"] = config.data.local_crops_size
    pipeline = pipeline.replace(**changes)
    check_crops(pipeline, config.model)
    return pipeline


def pipeline_file_patch_size(spec: str) -> int | None:
    """The patch size a pipeline *file* sets: a DINOv2 config's ``student.patch_size`` (DINOv2's
    default 16 when the file leaves it out), a dinodiag file's ``patch_size`` key; None for a
    preset name or a file without one. The model must use it (:func:`resolve_pipeline`)."""
    from dinodiag.augment.dinov2_config import resolve_dinov2_config

    data, dinov2 = _pipeline_file(spec)
    if data is None:
        return None
    if dinov2:
        value = resolve_dinov2_config(data, source=spec).get("student.patch_size")
    else:
        value = data.get("patch_size")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pipeline_file(spec: str) -> tuple[dict[str, Any] | None, bool]:
    """``(the mapping of a pipeline file, whether it is a DINOv2 training config)``;
    ``(None, False)`` for a preset name or anything that is not a file."""
    from dinodiag.augment.config import parse_config_text
    from dinodiag.augment.dinov2_config import is_dinov2_config
    from dinodiag.augment.presets import PRESETS

    path = Path(spec)
    if spec.strip().lower().replace("_", "-") in PRESETS or not path.is_file():
        return None, False
    data = parse_config_text(path.read_text(encoding="utf-8", errors="replace"), source=spec)
    return data, is_dinov2_config(data)


def with_dinov2_blur(pipeline: PipelineConfig, blur: str) -> PipelineConfig:
    """A DINOv2 config file's pipeline with the blur ``data.dinov2_blur`` names: "released"
    takes the per-view blur probabilities of the ``dinov2-released`` preset (what DINOv2's code
    runs), "published" keeps the recipe's; the name says which."""
    from dinodiag.augment.presets import get_preset

    if blur == "released":
        released = get_preset("dinov2-released").config
        pipeline = pipeline.replace(
            **{view: {"blur_p": getattr(released, view).blur_p} for view in VIEWS}
        )
    return pipeline.replace(name=f"{pipeline.name}, {blur} blur")


def check_crops(pipeline: PipelineConfig, model: ModelConfig) -> None:
    """Crop sizes must be multiples of the ViT patch size; 2+ views are needed for DINO."""
    if model.arch.startswith("vit"):
        p = model.patch_size
        for name in ("global_crops_size", "local_crops_size"):
            size = getattr(pipeline, name)
            if name == "local_crops_size" and pipeline.local_crops_number == 0:
                continue
            if size % p:
                raise ConfigError(
                    f"pipeline {name} = {size} px is not a multiple of the ViT patch size {p}: "
                    f"use {max(p, size // p * p)} or {size // p * p + p} px (--global-crops-size / "
                    "--local-crops-size), or change --patch-size."
                )
    if pipeline.global_crops_number + pipeline.local_crops_number < 2:
        raise ConfigError(
            "the pipeline makes a single view: DINO compares different views of an image, so "
            "use 2 global crops (the recipe) or add local crops."
        )
