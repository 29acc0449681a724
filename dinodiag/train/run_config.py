"""What a ``train`` command line trains: the preset, the DINOv2 file of ``--config``, the run's
own config.json (``--resume``, or a planned run directory), with the flags applied, the crop
knobs of a preset dropped for your own code and the patch size adapted to it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.flags import given_overrides, naming_the_option
from dinodiag.recipe.presets import get_train_preset
from dinodiag.rundir import is_planned


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset, the DINOv2 file of ``--config`` or, with --resume, the run's config.json,
    with the flags applied.

    A value out of range names its flag; on --resume a missing, unreadable or invalid
    config.json is refused (never replaced by the preset's values).
    """
    return config_and_recipe(args)[0]


def config_and_recipe(args: argparse.Namespace) -> tuple[TrainConfig, Any]:
    recipe = None
    config_file = getattr(args, "config", None)
    given = given_overrides(args)
    if config_file:
        from dinodiag.recipe.dinov2 import recipe_from_file

        if args.preset:
            raise ConfigError(
                "--config and --preset both give a whole training config: use one of them."
            )
        if args.resume:
            raise ConfigError("--resume continues a run with its own config.json: drop --config.")
        recipe = recipe_from_file(config_file)  # first: a file that is no file is named so
        if "data.data" not in given and not getattr(args, "print_config", False):
            raise ConfigError(
                f"{config_file}: give the images with --data (a folder, cifar10:ROOT, ...): "
                "DINOv2's train.dataset_path names its own dataset classes."
            )
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
    if "data.pipeline" in given and not args.resume:
        _drop_crop_knobs(given, base)
    if "data.pipeline" in given and "model.patch_size" not in given:
        # A pipeline file with a patch size (a DINOv2 config's student.patch_size) sets the ViT's.
        from dinodiag.recipe.crops import pipeline_file_patch_size

        pipeline, how = given["data.pipeline"]
        patch = pipeline_file_patch_size(str(pipeline))
        if patch is not None:
            given["model.patch_size"] = (patch, f"{how} (its student.patch_size)")
    try:
        config = base.with_overrides({field: value for field, (value, _) in given.items()})
    except ConfigError as exc:
        raise naming_the_option(exc, given) from None
    if "data.pipeline" in given and "model.patch_size" not in given and not args.resume:
        config = _adapt_patch_size(config)
    return config, recipe


def _drop_crop_knobs(given: dict[str, tuple[Any, str]], base: TrainConfig) -> None:
    """Your own code makes its crops: the preset's crop overrides (cpu-demo's 4 local crops)
    are dropped; the same flags given here are an error that names them."""
    from dinodiag.probe.spec import is_pipeline_spec
    from dinodiag.train.pipelines import CROP_KNOBS

    if not is_pipeline_spec(str(given["data.pipeline"][0])):
        return
    for knob in CROP_KNOBS:
        if f"data.{knob}" not in given and getattr(base.data, knob) is not None:
            given[f"data.{knob}"] = (None, f"the preset's data.{knob}, dropped")


def _adapt_patch_size(config: TrainConfig) -> TrainConfig:
    """Your own pipeline's crops set the ViT patch when the preset's does not divide them."""
    from dinodiag.probe.spec import is_pipeline_spec
    from dinodiag.train.data import open_train_set
    from dinodiag.train.pipelines import with_adapted_patch

    if not is_pipeline_spec(config.data.pipeline):
        return config
    config, why = with_adapted_patch(config, open_train_set(config))
    if why and os.environ.get("RANK", "0") == "0":
        print(f"[note] {why}", file=sys.stderr, flush=True)
    return config


def resolved_config(config: TrainConfig, recipe: Any) -> dict[str, Any]:
    """What ``--print-config`` shows: the config with its pipeline resolved (your own
    pipeline is called on images; a DINOv2 file's crops need none)."""
    from dinodiag.augment.config import to_dict
    from dinodiag.train.data import open_train_set
    from dinodiag.train.pipelines import own_spec, resolve_run_pipeline

    images = open_train_set(config) if own_spec(config) is not None else None
    pipeline = resolve_run_pipeline(config, images)
    shown = {**config.to_dict(), "pipeline": to_dict(pipeline.config)}
    if pipeline.record() is not None:
        shown["own_pipeline"] = pipeline.record()
    if recipe is not None:
        shown["dinov2_config"] = recipe.describe()
    return shown
