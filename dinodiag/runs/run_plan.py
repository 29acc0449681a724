"""What a dashboard run trains: a training preset's :class:`TrainConfig` with the form's
changes, the crops it trains with, validated before anything starts (the devices:
``runs/devices.py``; yours vs the reference and the seed story: ``runs/story.py``).

    base = get_train_preset("cpu-demo").config
    plan = plan_run(base, {"data.batch_size": 32, "run.max_seconds": 120})  # ConfigError /
    plan = plan_run(base, {}, recipe=get_preset("dinov2").config)  # DataError naming the field
    plan = plan_run(with_own_pipeline(base, "my_aug.py:build", '{"size": 32}'))  # your code
    runs.launch(plan)   # config.json (the plan, runs/manager.py) and `train --run-dir D`

``overrides`` are ``{"section.field": value}`` as :meth:`TrainConfig.with_overrides` takes
them; for ``run.max_steps`` and ``run.max_seconds`` a 0 means "no limit" (the form's
convention). A plan trains a recipe (``data.pipeline``: a preset or a file; or ``recipe``, a
:class:`PipelineConfig` the manager writes next to the run as ``pipeline.yaml``) or your own
code (``data.pipeline`` = ``file.py:factory``): the code's crops are measured on the training
images, and unless ``model.patch_size`` is among the overrides the patch adapts to them
(:mod:`dinodiag.train.pipelines`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import ConfigError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import check_crops, resolve_pipeline
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.devices import check_device
from dinodiag.train.pipelines import RunPipeline, resolve_run_pipeline, with_adapted_patch

LAUNCH_PRESETS = ("cpu-demo", "gpu", "small-images", "tiny-test")  # what the form offers
PIPELINE_FILE = "pipeline.yaml"  # a plan's recipe, written next to the run by the manager
ZERO_IS_NO_LIMIT = ("run.max_steps", "run.max_seconds")  # the form's 0 = "no limit"
CROP_FIELDS = ("data.local_crops", "data.global_crops_size", "data.local_crops_size")


@dataclass(frozen=True)
class RunPlan:
    """What a validated run will train."""

    config: TrainConfig  # the training config (preset + changes); a recipe plan's
    # data.pipeline is PIPELINE_FILE until the manager writes the recipe there
    pipeline: PipelineConfig  # the crops it trains with (sizes and patch applied); for your
    # own code its measured counts, sizes and normalisation
    train_images: int | None  # images in the training split (None when not opened)
    recipe: PipelineConfig | None = None  # a recipe to write as pipeline.yaml (None: the
    # config's data.pipeline names the crops)
    run_pipeline: RunPipeline | None = None  # your own code as measured (None: a recipe)
    adapted: str = ""  # why the patch size differs from the preset's (your code's crops)
    label: str = ""  # end of the run id (default: the config's name)

    @property
    def own(self) -> bool:
        """Whether the plan trains your own code rather than a recipe."""
        return is_pipeline_spec(self.config.data.pipeline)

    @property
    def steps(self) -> int | None:
        """Planned optimisation steps (the time budget may end the run earlier)."""
        if self.train_images is None:
            return None
        per_epoch = max(1, self.train_images // self.config.data.batch_size)  # drop_last
        steps = max(1, round(self.config.run.epochs * per_epoch))
        cap = self.config.run.max_steps
        return min(steps, cap) if cap else steps

    def with_run(self, changes: dict[str, Any]) -> RunPlan:
        """The plan with ``{"run.field": value}`` changes (threads, steps): nothing the crops
        or the data depend on, so nothing is measured again."""
        if any(not key.startswith("run.") for key in changes):
            raise ConfigError(f"with_run changes run.* fields only, not {sorted(changes)}.")
        return dataclasses.replace(self, config=self.config.with_overrides(changes))

    def summary(self) -> str:
        """One sentence for the form: steps, batch, training images, time budget, views."""
        p = self.pipeline
        views = f"{p.global_crops_number} × {p.global_crops_size} px"
        if p.local_crops_number:
            views += f" + {p.local_crops_number} × {p.local_crops_size} px"
        budget = self.config.run.max_seconds
        stop = f", stopping at {budget:g} s (set-up and k-NN included)" if budget else ""
        # With a budget the count is a cap: how many fit depends on the machine and the
        # pipeline's cost per step (the form's "Estimate the time" measures it).
        steps = "The planned" if self.steps is None else f"{'Up to ' if budget else ''}{self.steps}"
        what = f"pipeline `{p.name}`"
        if self.run_pipeline is not None:
            what = f"your code `{self.run_pipeline.label}` (views measured on the training images)"
        text = (
            f"{steps} steps of {self.config.data.batch_size} images "
            f"({self.train_images} training images){stop}; views per image: {views}; {what}."
        )
        return text + (f" ViT {self.adapted}." if self.adapted else "")


def _changes(base: TrainConfig, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides with the form's conventions applied: 0 = no limit; a new architecture
    brings its own width (a preset's custom width belongs to the preset's arch)."""
    changes = {
        key: None if key in ZERO_IS_NO_LIMIT and not value else value
        for key, value in overrides.items()
    }
    arch = changes.get("model.arch")
    if arch is not None and arch != base.model.arch:
        changes.setdefault("model.embed_dim", None)
        changes.setdefault("model.num_heads", None)
    return changes


def plan_run(
    base: TrainConfig,
    overrides: dict[str, Any] | None = None,
    *,
    recipe: PipelineConfig | None = None,
    label: str = "",
    check_data: bool = True,
) -> RunPlan:
    """The training config and the crops ``base`` with ``overrides`` trains, validated as the
    engine will (crops multiple of the patch, 2+ views, KoLeo batch, device, dataset).

    ``recipe``: train this recipe, scaled to the run's global crop size and patch (counts,
    scales and photometrics kept, :func:`scaled_pipeline`), then the crop fields applied.
    ``check_data``: open the training split (always done for your code: it is measured there).
    Raises :class:`ConfigError` naming the field, or :class:`DataError` for the dataset.
    """
    changes = _changes(base, overrides or {})
    if recipe is not None:
        changes.update({"data.pipeline": PIPELINE_FILE, "data.pipeline_kwargs": ""})
    config = base.with_overrides(changes)
    if recipe is None and is_pipeline_spec(config.data.pipeline):
        return _plan_code(config, "model.patch_size" in changes, label)
    if recipe is None:
        pipeline = resolve_pipeline(config)  # the crop fields and the patch applied, checked
    else:
        size = config.data.global_crops_size or recipe.global_crops_size
        pipeline = scaled_pipeline(recipe, size, config.model.patch_size)
        pipeline = pipeline.replace(**_crop_changes(config))
        check_crops(pipeline, config.model)
    check_batch(config)
    check_device(config.run.device)
    plan = RunPlan(config, pipeline, None, recipe=pipeline if recipe else None, label=label)
    return with_data_checked(plan) if check_data else plan


def _crop_changes(config: TrainConfig) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for knob, target in (
        ("local_crops", "local_crops_number"),
        ("global_crops_size", "global_crops_size"),
        ("local_crops_size", "local_crops_size"),
    ):
        value = getattr(config.data, knob)
        if value is not None:
            changes[target] = value
    return changes


def _plan_code(config: TrainConfig, patch_given: bool, label: str) -> RunPlan:
    """The plan of a config that trains your code: imported, measured on the training images
    (always opened: the views are measured on them), the patch adapted unless given."""
    from dinodiag.data import open_dataset

    check_batch(config)
    check_device(config.run.device)
    dataset = open_dataset(config.data.data, split=config.data.train_split)
    adapted = ""
    if not patch_given:
        config, adapted = with_adapted_patch(config, dataset)
    run_pipeline = resolve_run_pipeline(config, dataset)
    _check_images(config, len(dataset))
    return RunPlan(
        config,
        run_pipeline.config,
        len(dataset),
        run_pipeline=run_pipeline,
        adapted=adapted,
        label=label,
    )


def check_batch(config: TrainConfig) -> None:
    """KoLeo needs two images per step (at one its neighbour distance is infinite)."""
    if config.optim.koleo_weight > 0 and config.data.batch_size < 2:
        raise ConfigError(
            f"batch size {config.data.batch_size}: KoLeo needs at least 2 images per step "
            "(at 1 it is infinite). Use a batch of 2 or more (DINO works best from 64)."
        )


def _check_images(config: TrainConfig, images: int) -> None:
    if images < config.data.batch_size:
        raise ConfigError(
            f"batch size {config.data.batch_size} is larger than the training set "
            f"({images} images in {config.data.data}): lower the batch size."
        )


def with_data_checked(plan: RunPlan) -> RunPlan:
    """The plan with its training images counted (the dataset opened, the batch checked
    against it); as it is when they were counted already. Raises :class:`DataError`."""
    if plan.train_images is not None:
        return plan
    from dinodiag.data import open_dataset

    config = plan.config
    images = len(open_dataset(config.data.data, split=config.data.train_split))
    _check_images(config, images)
    return dataclasses.replace(plan, train_images=images)


def preset_plan(preset: str) -> RunPlan:
    """A training preset as it is (its own crops), the dataset not opened."""
    return plan_run(get_train_preset(preset).config, check_data=False)


def form_defaults(preset: str, recipe: PipelineConfig | None = None) -> dict[str, Any]:
    """The launch form's starting values, ``{"section.field": value}``: every knob at the
    training preset's value, the crop sizes those of ``recipe`` (default: the preset's
    pipeline) scaled to the preset's global crop size and patch (:func:`scaled_pipeline`).
    ``0`` stands for "no limit"."""
    base = get_train_preset(preset).config
    own = preset_plan(preset).pipeline
    recipe = recipe or own
    scaled = scaled_pipeline(recipe, own.global_crops_size, base.model.patch_size)
    return {
        "run.epochs": float(base.run.epochs),
        "run.max_steps": base.run.max_steps or 0,
        "run.max_seconds": int(base.run.max_seconds or 0),
        "data.batch_size": base.data.batch_size,
        "optim.base_lr": base.optim.base_lr,
        "model.arch": base.model.arch,
        "model.patch_size": base.model.patch_size,
        "model.depth": base.model.depth or 12,  # None in a preset means 12 blocks
        "run.eval_every": base.run.eval_every,
        "data.local_crops": recipe.local_crops_number,
        "data.global_crops_size": scaled.global_crops_size,
        "data.local_crops_size": scaled.local_crops_size,
        "run.seed": base.run.seed,
    }


def recipe_overrides(recipe: PipelineConfig, patch_size: int | None = None) -> dict[str, Any]:
    """The crop fields that train ``recipe`` as it is (its counts and sizes, and
    ``patch_size`` when given), so that no preset override changes them."""
    out: dict[str, Any] = {
        "data.local_crops": recipe.local_crops_number,
        "data.global_crops_size": recipe.global_crops_size,
        "data.local_crops_size": recipe.local_crops_size,
    }
    return out | ({"model.patch_size": patch_size} if patch_size else {})


def reference_at(plan: RunPlan, reference: PipelineConfig) -> PipelineConfig:
    """The reference recipe at the crop sizes ``plan`` trains: the same global size and patch,
    the same local size when the plan has local crops (else scaled in proportion), so that
    only the recipe (counts, scales, photometrics) differs."""
    patch = plan.config.model.patch_size
    scaled = scaled_pipeline(reference, plan.pipeline.global_crops_size, patch)
    if plan.pipeline.local_crops_number and plan.pipeline.local_crops_size % patch == 0:
        scaled = scaled.replace(local_crops_size=plan.pipeline.local_crops_size)
    name = reference.name.split("@")[0]  # "seed-fixed@32px" -> "seed-fixed"
    return scaled.replace(name=f"{name}@{scaled.global_crops_size}px")


def scaled_pipeline(pipeline: PipelineConfig, global_size: int, patch_size: int) -> PipelineConfig:
    """The recipe at another global crop size: counts, scales and photometrics kept, the local
    size scaled in proportion (rounded to a multiple of ``patch_size``, at least one patch).

    ``seed-fixed`` (96 / 96 px) at 32 px gives 32 / 32 px; ``dinov2`` (224 / 96) gives 32 / 12.
    """
    if global_size < 1 or patch_size < 1:
        raise ConfigError(f"crop size {global_size} and patch size {patch_size} must be >= 1.")
    ratio = pipeline.local_crops_size / pipeline.global_crops_size
    local = max(patch_size, round(global_size * ratio / patch_size) * patch_size)
    return pipeline.replace(
        global_crops_size=global_size, local_crops_size=local, patch_size=patch_size
    )
