"""What a dashboard run trains: :func:`dinodiag.recipe.plan.plan_run` (the one planner, the
command line's too) with the form's conventions and the training images opened here; the
form's starting values and the recipe scaled to a run's crops (the devices:
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
images, and unless ``model.patch_size`` is among the overrides the patch adapts to them.
"""

from __future__ import annotations

from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.recipe import plan as planner
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.plan import RunPlan, scaled_pipeline
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.training_data import TrainingImages

LAUNCH_PRESETS = ("cpu-demo", "gpu", "small-images", "tiny-test")  # what the form offers
ZERO_IS_NO_LIMIT = ("run.max_steps", "run.max_seconds")  # the form's 0 = "no limit"


def plan_run(
    base: TrainConfig,
    overrides: dict[str, Any] | None = None,
    *,
    recipe: PipelineConfig | None = None,
    label: str = "",
    check_data: bool = True,
) -> RunPlan:
    """The form's plan: :func:`dinodiag.recipe.plan.plan_run` with a 0 for ``run.max_steps``
    / ``run.max_seconds`` read as "no limit", measured and checked on this machine's data
    and devices (``check_data``: count the training images; your code is always measured)."""
    changes = {
        key: None if key in ZERO_IS_NO_LIMIT and not value else value
        for key, value in (overrides or {}).items()
    }
    return planner.plan_run(
        base, changes, TrainingImages(), recipe=recipe, label=label, count_images=check_data
    )


def with_data_checked(plan: RunPlan) -> RunPlan:
    """The plan with its training images counted (the dataset opened, the batch checked
    against it); as it is when they were counted already. Raises :class:`DataError`."""
    return plan.with_images(TrainingImages())


def preset_plan(preset: str) -> RunPlan:
    """A training preset as it is (its own crops), the dataset not opened."""
    return planner.plan_run(get_train_preset(preset).config)


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
