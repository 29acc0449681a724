r"""python -m dinodiag train: run a short DINOv2 training and write a run directory.

Examples:

    python -m dinodiag train --preset cpu-demo --run-dir runs/demo          # ~4.5 min on 2 cores
    python -m dinodiag train --preset small-images --data cifar10:~/data --run-dir runs/c10
    python -m dinodiag train --preset gpu --data /path/to/imagenette/train --batch-size 128
    python -m dinodiag train --run-dir runs/demo --resume --max-steps 3000  # continue a run
    python -m dinodiag train --config vitl16_short.yaml --data DIR --max-steps 500  # DINOv2 file
    python -m dinodiag train --pipeline examples/seed_pipeline.py:build_multicrop_augment \
        --pipeline-kwargs '{"img_size": 32, "local_size": 16, "num_local_crops": 4}'  # yours
    python -m dinodiag train --preset cpu-demo --max-seconds 120 --estimate  # time it first
    torchrun --nproc_per_node 2 -m dinodiag train --preset tiny-test --run-dir runs/ddp

Stop a run cleanly with Ctrl-C, kill -TERM <pid> or by creating a STOP file in its run
directory: it writes a checkpoint and ends "stopped"; --resume continues it. A run
checkpoints after its first step, then every 60 s (--checkpoint-seconds) and every
--checkpoint-every steps, so a SIGKILL loses at most a minute. --max-seconds counts
from the start of the process: the imports, the set-up and every k-NN evaluation are in it.
--estimate measures the set-up, a training step and a k-NN evaluation here and says how
many steps and evaluations fit, without writing a run.
Exit codes: 0 finished or stopped; 1 the run failed (see its status.json); 2 bad input, found
before anything was written: a flag or config value, the dataset, pipeline, device or
checkpoint, or a run directory that is a file, not writable or in use by another trainer.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from dinodiag.errors import ConfigError
from dinodiag.printable import stdout_reserved
from dinodiag.train.config import Knob, TrainConfig, knob_table
from dinodiag.train.presets import TRAIN_PRESETS, get_train_preset
from dinodiag.train.rundir import is_planned

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _number(text: str) -> float:
    """A finite float for a flag (``inf`` / ``nan`` are refused by argparse, naming the flag)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a finite number (to lift a limit use --set section.field=none "
            "where the field allows it)"
        )
    return value


def _integer(text: str) -> int:
    """An integer for a flag; ``1e9`` is read as 1000000000 (the config then says if it is
    too large), ``1.5`` / ``inf`` are refused naming the flag."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = _number(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite integer") from None
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    return int(value)


# Flags of earlier versions, renamed to their field's name: a clear usage error, not a silent
# alias (a knob has one name).
RENAMED = {
    "--lr": "--base-lr",
    "--global-size": "--global-crops-size",
    "--local-size": "--local-crops-size",
    "--drop-path": "--drop-path-rate",
    "--momentum": "--momentum-start",
    "--teacher-temp": "--teacher-temp-end",
    "--warmup-teacher-temp": "--teacher-temp-start",
    "--mask-sample-probability": "--mask-probability",
    "--mask-ratio-min-max": "--mask-ratio",
    "--layerscale": "--layerscale-init",
}
SECTION_TITLES = {
    "model": "model (the backbone and heads)",
    "optim": "optim (losses, optimiser, schedules)",
    "data": "data (dataset, crops, loader, k-NN data)",
    "run": "run (length, logging, evaluation, where it runs)",
}


def _argument_type(knob: Knob) -> Any:
    """argparse's early check of a value: a number for a number knob (or "none" where None is
    allowed); text where the config parses it (bools, pairs), the config then naming the flag."""
    if knob.kind not in (int, float):
        return str
    number = _integer if knob.kind is int else _number
    if not knob.allows_none:
        return number

    def number_or_none(text: str) -> Any:  # "none" stays text: the config reads it as None
        return "none" if text.strip().lower() in ("none", "null") else number(text)

    number_or_none.__name__ = number.__name__  # argparse names the type in its messages
    return number_or_none


def _knob_help(knob: Knob) -> str:
    allowed = knob.allowed()
    if knob.bounds is not None and knob.bounds.choices:
        shown = all(choice in knob.help for choice in knob.bounds.choices)
        return knob.help if shown else f"{knob.help} ({allowed})"
    return f"{knob.help} [{allowed}]".replace("%", "%%")


class _Renamed(argparse.Action):
    """A flag of an earlier version: the usage error names the flag to use."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        new = RENAMED[str(option)]
        field = next(k.field for k in knob_table() if k.flag == new)
        parser.error(f"{option} is now {new} (the config field {field}): use {new}.")


def add_knob_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (:func:`~dinodiag.train.config.knob_table`), grouped by
    section; every default is None, so only the flags given change the preset (or, with
    --resume, the run's own config)."""
    groups = {
        section: parser.add_argument_group(title) for section, title in SECTION_TITLES.items()
    }
    for knob in knob_table():
        group = groups[knob.field.partition(".")[0]]
        metavar = knob.flag.lstrip("-").upper().replace("-", "_")
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if knob.kind is bool else {}
        group.add_argument(
            knob.flag,
            type=_argument_type(knob),
            default=None,
            dest=_dest(knob.field),
            metavar=metavar,
            help=_knob_help(knob),
            **extra,
        )
    for old in RENAMED:
        parser.add_argument(old, action=_Renamed, nargs="?", help=argparse.SUPPRESS)


def _dest(field: str) -> str:
    return "override__" + field.replace(".", "__")


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``train`` command to the lead CLI's subparsers."""
    presets = "; ".join(f"{p.name}: {p.description}" for p in TRAIN_PRESETS.values())
    parser = subparsers.add_parser(
        "train",
        help="run a short DINOv2 training (k-NN and collapse diagnostics in a run directory)",
        usage="python -m dinodiag train [--preset NAME | --config DINOV2_YAML] [--run-dir DIR] "
        "[--resume] [--estimate [--json]] [--print-config] [--set SECTION.FIELD=VALUE] "
        "[--FIELD VALUE ...]",
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # a knob has one name: --layers is not --layerscale-init
    )
    parser.add_argument(
        "--preset", default=None, help=f"training preset (default cpu-demo). {presets}"
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="DINOV2_YAML",
        help="a DINOv2 training config (configs/train/*.yaml): trains as DINOv2 would, the "
        "file over DINOv2's defaults; needs --data to train (not to --print-config); "
        "--max-steps / --max-seconds run its first steps, --epochs shortens its schedules",
    )
    parser.add_argument(
        "--run-dir", default=None, help="the run directory (default runs/<date-time>-<preset>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run-dir from its checkpoint, same step count "
        "(its config.json is used; flags given here change it)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="any other config field, e.g. --set optim.min_lr=1e-5 (repeatable)",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config as JSON and exit"
    )
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="measure the set-up, one training step and one k-NN evaluation, say how many "
        "steps fit in --max-seconds and exit (nothing is written)",
    )
    parser.add_argument(
        "--json", action="store_true", help="with --estimate: print the estimate as JSON"
    )
    parser.add_argument(
        "--allow-pipeline-change",
        action="store_true",
        help="with --resume: go on although the file of the run's own pipeline code changed "
        "(refused by default: the run would mix two pipelines)",
    )
    add_knob_flags(parser)
    parser.set_defaults(func=cmd_train)
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``{"section.field": value}`` for every flag given (and every ``--set``)."""
    return {field: value for field, (value, _) in _given(args).items()}


def _given(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
    """``{"section.field": (value, how it was given)}``: ``"--base-lr 0.1"`` or ``"--set x=y"``."""
    flags = {knob.field: knob.flag for knob in knob_table()}
    given: dict[str, tuple[Any, str]] = {}
    for key, value in vars(args).items():
        if key.startswith("override__") and value is not None:
            field = key.removeprefix("override__").replace("__", ".")
            if isinstance(value, float):
                shown = f"{flags[field]} {value:g}"
            else:
                shown = f"{flags[field]} {value}"
            given[field] = (value, shown)
    for item in args.set:
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--set {item!r} must look like section.field=value.")
        given[key.strip()] = (value.strip(), f"--set {item.strip()}")
    return given


_FIELD_IN_MESSAGE = re.compile(r"^(?:unknown key ')?([A-Za-z_]\w*\.[A-Za-z_]\w*)")


def _naming_the_option(exc: ConfigError, given: dict[str, tuple[Any, str]]) -> ConfigError:
    """The error of a config field, prefixed with the flag or ``--set`` that gave the value."""
    match = _FIELD_IN_MESSAGE.match(str(exc))
    if match is None or match.group(1) not in given:
        return exc
    return ConfigError(f"{given[match.group(1)][1]}: {exc}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset, the DINOv2 file of ``--config`` or, with --resume, the run's config.json,
    with the flags applied.

    A value out of range names its flag; on --resume a missing, unreadable or invalid
    config.json is refused (never replaced by the preset's values).
    """
    return _config_and_recipe(args)[0]


def _config_and_recipe(args: argparse.Namespace) -> tuple[TrainConfig, Any]:
    recipe = None
    config_file = getattr(args, "config", None)
    given = _given(args)
    if config_file:
        from dinodiag.train.dinov2_recipe import recipe_from_file

        if args.preset:
            raise ConfigError(
                "--config and --preset both give a whole training config: use one of them."
            )
        if args.resume:
            raise ConfigError("--resume continues a run with its own config.json: drop --config.")
        if "data.data" not in given and not getattr(args, "print_config", False):
            raise ConfigError(
                f"{config_file}: give the images with --data (a folder, cifar10:ROOT, ...): "
                "DINOv2's train.dataset_path names its own dataset classes."
            )
        recipe = recipe_from_file(config_file)
        base = recipe.config
    else:
        base = get_train_preset(args.preset or "cpu-demo").config
    if args.resume and args.run_dir:
        base = _saved_config(args.run_dir, "resume")
    elif args.run_dir and is_planned(args.run_dir):
        if config_file or args.preset:
            raise ConfigError(
                f"--run-dir {args.run_dir} holds a planned run (its config.json): drop "
                f"{'--config' if config_file else '--preset'}, or give another --run-dir."
            )
        base = _saved_config(args.run_dir, "start the planned run")
    if "data.pipeline" in given and not args.resume:
        _drop_crop_knobs(given, base)
    if "data.pipeline" in given and "model.patch_size" not in given:
        # A pipeline file with a patch size (a DINOv2 config's student.patch_size) sets the ViT's.
        from dinodiag.train.config import pipeline_file_patch_size

        pipeline, how = given["data.pipeline"]
        patch = pipeline_file_patch_size(str(pipeline))
        if patch is not None:
            given["model.patch_size"] = (patch, f"{how} (its student.patch_size)")
    try:
        config = base.with_overrides({field: value for field, (value, _) in given.items()})
    except ConfigError as exc:
        raise _naming_the_option(exc, given) from None
    if "data.pipeline" in given and "model.patch_size" not in given and not args.resume:
        config = _adapt_patch_size(config)
    return config, recipe


def _saved_config(run_dir: str, action: str) -> TrainConfig:
    """The TrainConfig of a run directory's config.json (a run to resume, or a plan), read
    strictly: never replaced by a preset's values, never rewritten when it cannot be read."""
    from dinodiag.train.run_writer import load_run_config
    from dinodiag.train.rundir import CONFIG_FILE

    saved = load_run_config(run_dir, action)
    sections = ("name", "model", "optim", "data", "run")
    try:
        return TrainConfig.from_dict({k: v for k, v in saved.items() if k in sections})
    except ConfigError as exc:
        raise ConfigError(
            f"cannot {action}: {Path(run_dir) / CONFIG_FILE} does not hold a valid training "
            f"config: {exc} dinodiag did not change it."
        ) from None


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
    from dinodiag.train.pipelines import adapted_patch_size

    if not is_pipeline_spec(config.data.pipeline):
        return config
    adapted = adapted_patch_size(config, open_train_set(config))
    if adapted is None:
        return config
    patch, why = adapted
    if os.environ.get("RANK", "0") == "0":
        print(f"[note] {why}", file=sys.stderr, flush=True)
    return config.with_overrides({"model.patch_size": patch})


def process_start_time() -> float | None:
    """Unix time this process started (the clock of ``--max-seconds``); None if unknown."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # psutil missing or no /proc: the clock starts at the set-up instead
        return None


def _resolved_config(config: TrainConfig, recipe: Any) -> dict[str, Any]:
    """What ``--print-config`` shows: the config with its pipeline resolved (a brought
    pipeline is called on images; a DINOv2 file's crops need none)."""
    from dinodiag.augment.config import to_dict
    from dinodiag.train.data import open_train_set
    from dinodiag.train.pipelines import brought_spec, resolve_run_pipeline

    images = open_train_set(config) if brought_spec(config) is not None else None
    pipeline = resolve_run_pipeline(config, images)
    shown = {**config.to_dict(), "pipeline": to_dict(pipeline.config)}
    if pipeline.record() is not None:
        shown["brought_pipeline"] = pipeline.record()
    if recipe is not None:
        shown["dinov2_config"] = recipe.describe()
    return shown


def _estimate(config: TrainConfig, started: float) -> tuple[Any, Any]:
    """``train --estimate``: the measured estimate and whether its k-NN could judge a change."""
    from dinodiag.train.knn_horizon import judge_estimate
    from dinodiag.train.warmup import estimate_training

    estimate = estimate_training(config, started=started)
    # earlier runs here: the dashboard's runs directory (dinodiag.runs.manager.runs_root)
    runs_root = os.environ.get("DINODIAG_RUNS_DIR") or "runs"
    return estimate, judge_estimate(estimate, config.name, config.data.data, runs_root)


def _machine_answer(
    args: argparse.Namespace, config: TrainConfig, recipe: Any, started: float
) -> str:
    """The JSON of ``--print-config`` or ``--estimate --json``."""
    from dinodiag.train.dinov2_recipe import check_fits_device
    from dinodiag.train.rundir import dumps

    if args.print_config:
        return dumps(_resolved_config(config, recipe), indent=2)
    check_fits_device(config)
    estimate, plan = _estimate(config, started)
    knn_plan = {"status": plan.status, "needed_steps": plan.needed_steps}
    return dumps({**estimate.to_dict(), "knn_plan": knn_plan})


def cmd_train(args: argparse.Namespace) -> int:
    from dinodiag.train.dinov2_recipe import check_fits_device
    from dinodiag.train.engine import run_training
    from dinodiag.train.rundir import new_run_id

    started = process_start_time()
    if args.print_config or (args.estimate and args.json):
        # The answer is JSON for a script: a brought pipeline (called while the config is
        # resolved) may print, so standard output is kept for the JSON alone.
        with stdout_reserved():
            config, recipe = _config_and_recipe(args)
            answer = _machine_answer(args, config, recipe, started)
        print(answer, flush=True)
        return EXIT_OK
    config, recipe = _config_and_recipe(args)
    check_fits_device(config)
    if args.estimate:
        estimate, plan = _estimate(config, started)
        print(estimate.sentence() + "\n" + plan.sentence(), flush=True)
        return EXIT_OK
    if recipe is not None and os.environ.get("RANK", "0") == "0":
        for note in recipe.notes:
            print(f"[note] {recipe.resolved.source}: {note}", file=sys.stderr, flush=True)
    if args.resume and not args.run_dir:
        raise ConfigError("--resume needs --run-dir: the run directory to continue.")
    run_dir = Path(args.run_dir or Path("runs") / new_run_id(config.name))
    main = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    if main:
        print(f"run directory: {run_dir}", flush=True)
    result = run_training(
        config,
        run_dir,
        resume=args.resume,
        progress=lambda line: print(line, flush=True),
        started=started,
        allow_pipeline_change=args.allow_pipeline_change,
    )
    if result.refused:  # bad input, found before anything was written
        if main:
            print(f"error: {result.message}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    if not main:
        return EXIT_FAILED if result.state == "failed" else EXIT_OK
    summary = f"{result.state}: {result.message}"
    if result.knn_top1 is not None and result.knn_top1_start is not None:
        from dinodiag.train.eval.knn_noise import judge_change

        change = judge_change(result.knn_top1_start, result.knn_top1, result.knn_test)
        summary += (
            f" | k-NN top-1 {result.knn_top1_start:.1f}% at step 0 -> "
            f"{result.knn_top1:.1f}% ({change.describe()}"
        )
        if change.status in ("noise", "too_few"):
            summary += ": too short to judge, train longer" if change.status == "noise" else ""
        summary += ")"
    print(summary, flush=True)
    return EXIT_FAILED if result.state == "failed" else EXIT_OK
