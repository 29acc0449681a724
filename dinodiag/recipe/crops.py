"""The crops a training config trains: its ``data.pipeline`` (a preset, a pipeline file or a
DINOv2 config file) with the crop overrides, the patch size and a DINOv2 file's blur applied,
or your own code's views as measured (:class:`ViewShapes`, and the :class:`PipelineConfig`
standing in for them); checked against the ViT (crop sides multiples of the patch, two views
or more)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import ConfigError, PipelineSpecError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import VIEWS, ModelConfig, TrainConfig

IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class ViewShapes:
    """Your own pipeline's views as measured on a few images (the same for every image)."""

    global_number: int
    global_size: tuple[int, int]  # (height, width)
    local_number: int
    local_size: tuple[int, int] | None  # None without local crops
    value_range: tuple[float, float]  # min / max of the view values seen
    notes: tuple[str, ...] = ()  # what the wrapper converted or guessed
    label: str = ""  # the code measured: "seed_pipeline.py:build_two_view_augment"
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # a Normalize found

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of the global crops, then of the local ones when there are any."""
        return [self.global_size] + ([self.local_size] if self.local_size else [])


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


def fitting_patch_sizes(sizes: list[tuple[int, int]], near: int) -> list[int]:
    """Patch sizes that divide every crop side, nearest to ``near`` first (at most 3)."""
    sides = [side for size in sizes for side in size]
    common = math.gcd(*sides)
    divisors = [p for p in range(1, common + 1) if common % p == 0]
    return sorted(divisors, key=lambda p: (abs(p - near), -p))[:3]


def check_view_shapes(views: ViewShapes, model: ModelConfig) -> None:
    """Every crop side must be a multiple of the ViT patch (the positional embeddings then
    interpolate to any grid); DINO needs two views. Refused with the patch sizes that fit."""
    if model.arch.startswith("vit"):
        p = model.patch_size
        if any(size[0] % p or size[1] % p for size in views.sizes):
            shown = ", ".join(f"{h}x{w}" for h, w in views.sizes)
            fits = fitting_patch_sizes(views.sizes, p)
            raise ConfigError(
                f"pipeline {views.label} makes crops of {shown} px, which the ViT patch size "
                f"{p} does not divide: use --patch-size {' or '.join(map(str, fits))} (every "
                f"crop side must be a multiple of it), or make crops that are multiples of "
                f"{p} px in your code."
            )
    if views.global_number + views.local_number < 2:
        raise ConfigError(
            f"pipeline {views.label} makes a single view per image: DINO compares two views of "
            "each image, so return two global crops (or add local crops)."
        )


def own_normalisation(views: ViewShapes) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """The mean / std your code's views are normalised with (the k-NN images get the same)
    and where they come from: its Normalize, else [0, 1] as is, else ImageNet's."""
    if views.normalize is not None:
        mean, std = views.normalize
        where = f"Normalize(mean={list(mean)}, std={list(std)}) found in the pipeline"
    elif views.value_range[0] >= 0.0 and views.value_range[1] <= 1.0:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        where = "no Normalize found and views in [0, 1]: k-NN images stay in [0, 1]"
    else:
        mean, std = IMAGENET_MEAN_STD
        where = "no Normalize found but views outside [0, 1]: k-NN images use ImageNet's mean / std"
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    return tuple(mean[:3]), tuple(std[:3]), where


def stand_in_pipeline(views: ViewShapes, model: ModelConfig) -> PipelineConfig:
    """A :class:`PipelineConfig` with your code's counts, sizes and normalisation (its
    photometric fields are the defaults and mean nothing: the code makes the views), which
    the model, the masks and the k-NN images are built from."""
    height, _width = views.global_size
    local = views.local_size[0] if views.local_size else max(1, height // 2)
    mean, std, _where = own_normalisation(views)
    try:
        return PipelineConfig(
            name=f"yours: {views.label}",
            global_crops_number=views.global_number,
            global_crops_size=height,
            local_crops_number=views.local_number,
            local_crops_size=local,
            mean=mean,  # type: ignore[arg-type]
            std=std,  # type: ignore[arg-type]
            patch_size=model.patch_size,
        )
    except ConfigError as exc:
        raise PipelineSpecError(
            f"pipeline {views.label}: its views cannot be trained: {exc}"
        ) from None
