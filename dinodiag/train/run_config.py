"""What a ``train`` command line trains: the preset, the DINOv2 file of ``--config`` or the
run's own config.json (``--resume``, or a planned run directory), with the flags applied by
:func:`dinodiag.recipe.plan.plan_run`, the one planner the dashboard uses too."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.flags import given_overrides, naming_the_option
from dinodiag.recipe.presets import get_train_preset
from dinodiag.rundir import is_planned

if TYPE_CHECKING:  # the planner is imported when a config is planned: --help never needs it
    from dinodiag.recipe.plan import RunPlan


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset, the DINOv2 file of ``--config`` or, with --resume, the run's config.json,
    with the flags applied.

    A value out of range names its flag; on --resume a missing, unreadable or invalid
    config.json is refused (never replaced by the preset's values).
    """
    return config_and_recipe(args)[0].config


def config_and_recipe(args: argparse.Namespace) -> tuple[RunPlan, Any]:
    """What the command line trains (planned by :func:`dinodiag.recipe.plan.plan_run`, the
    dashboard's planner too) and the DINOv2 file of ``--config`` (None without one)."""
    base, recipe = _base(args)
    given = given_overrides(args)
    if recipe is not None and "data.data" not in given and not getattr(args, "print_config", False):
        raise ConfigError(
            f"{args.config}: give the images with --data (a folder, cifar10:ROOT, ...): "
            "DINOv2's train.dataset_path names its own dataset classes."
        )
    from dinodiag.recipe.plan import plan_run  # here: --help never needs the planner
    from dinodiag.train.training_data import TrainingImages

    try:
        plan = plan_run(
            base,
            {field: value for field, (value, _how) in given.items()},
            TrainingImages(),
            count_images=False,  # the trainer opens the data (DDP: each rank its shard)
            resume=bool(args.resume),
            check_machine=not getattr(args, "print_config", False),  # a config prints anywhere
        )
    except ConfigError as exc:
        raise naming_the_option(exc, given) from None
    if plan.adapted and os.environ.get("RANK", "0") == "0":
        print(f"[note] {plan.adapted}", file=sys.stderr, flush=True)
    return plan, recipe


def _base(args: argparse.Namespace) -> tuple[TrainConfig, Any]:
    """The config the flags change: the preset, the DINOv2 file of ``--config``, the run's
    own config.json (``--resume``, or a planned run directory); and that DINOv2 file."""
    recipe = None
    config_file = getattr(args, "config", None)
    if config_file:
        from dinodiag.recipe.dinov2 import recipe_from_file

        if args.preset:
            raise ConfigError(
                "--config and --preset both give a whole training config: use one of them."
            )
        if args.resume:
            raise ConfigError("--resume continues a run with its own config.json: drop --config.")
        recipe = recipe_from_file(config_file)  # first: a file that is no file is named so
        base = recipe.config
    else:
        base = get_train_preset(args.preset or "cpu-demo").config
    if args.resume and args.run_dir:
        base = TrainConfig.from_run_dir(args.run_dir, "resume")
    elif args.run_dir and is_planned(args.run_dir):
        if config_file or args.preset:
            raise ConfigError(
                f"--run-dir {args.run_dir} holds a planned run (its config.json): drop "
                f"{'--config' if config_file else '--preset'}, or give another --run-dir."
            )
        base = TrainConfig.from_run_dir(args.run_dir, "start the planned run")
    return base, recipe


def resolved_config(plan: RunPlan, recipe: Any) -> dict[str, Any]:
    """What ``--print-config`` shows: the config with its pipeline resolved. Your own code is
    shown as the plan measured it; on --resume (not measured by the plan) it is measured here."""
    from dinodiag.augment.config import to_dict
    from dinodiag.train.pipelines import measured_pipeline, own_spec, resolve_run_pipeline
    from dinodiag.train.training_data import open_train_set

    config, own = plan.config, own_spec(plan.config)
    if own is not None and plan.views is not None:
        pipeline = measured_pipeline(config, own, plan.views)
    else:
        images = open_train_set(config) if own is not None else None
        pipeline = resolve_run_pipeline(config, images)
    shown = {**config.to_dict(), "pipeline": to_dict(pipeline.config)}
    if pipeline.record() is not None:
        shown["own_pipeline"] = pipeline.record()
    if recipe is not None:
        shown["dinov2_config"] = recipe.describe()
    return shown
