"""What the commands share: the exit codes, the options that choose a pipeline and how its
samples are drawn (check, stats), argparse types, and checks of an output path or a count made
before any work is done."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dinodiag.errors import DinodiagError

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    """The options that choose the pipeline to look at (shared by check and stats)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--preset", help="a pipeline preset (python -m dinodiag presets lists them); default dinov2"
    )
    group.add_argument(
        "--config", help="a dinodiag YAML/JSON config or a DINOv2 training config file"
    )
    group.add_argument(
        "--pipeline",
        metavar="SPEC",
        help="your own pipeline: path/to/file.py:factory or package.module:factory",
    )
    parser.add_argument(
        "--pipeline-kwargs",
        metavar="JSON",
        default=None,
        help="keyword arguments for the --pipeline factory, as a JSON object",
    )
    parser.add_argument(
        "--data",
        default="sample",
        help="dataset: 'sample' (embedded images, default; an installed package draws them "
        "into ~/.cache/dinodiag once), a folder, cifar10:ROOT, cifar100:ROOT, stl10:ROOT or "
        "generated[:size=64,n=1000]",
    )
    parser.add_argument(
        "--split",
        default=None,
        help="dataset split to sample: train / val / all (default: all of a folder, "
        "train otherwise)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=None,
        help="images to run through the pipeline (default: 16 for check, 200 for stats)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seed of the image order and the augmentations (an integer >= 0)",
    )


def add_sampling_args(parser: argparse.ArgumentParser) -> None:
    """How check and stats draw their samples: worker processes and the per-sample watchdog."""
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes drawing the samples, each on one torch thread (default: one per "
        "available core; 1 = in this process). Workers start only when the samples would "
        "take longer than starting them (a few seconds)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="seconds one sample may take before the run stops with an error naming the "
        "pipeline and the image: code that hangs (default 120)",
    )


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid: give an integer >= 1")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is invalid: give a number of seconds > 0")
    return value


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """``workers`` / ``timeout`` / ``on_note`` for run_checks and sample_views."""
    from dinodiag.workers import DEFAULT_TIMEOUT, print_note

    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    return {"workers": args.workers, "timeout": timeout, "on_note": print_note}


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (argparse names the option in the message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: give an integer >= 0")
    return value


def check_output_file(option: str, path: str | None, example: str) -> None:
    """Refuse an output path that cannot be written, before any work is done.

    Raises :class:`DinodiagError` naming the option when ``path`` is a directory or its
    folder does not exist / is not writable (a check run of minutes must not end in a
    traceback at the last line).
    """
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise DinodiagError(
            f"{option} {path} is a directory: give a file name, e.g. {target / example}."
        )
    folder = target.parent  # Path("report.json").parent is Path(".")
    if not folder.is_dir():
        raise DinodiagError(
            f"{option} {path}: the folder {folder} does not exist; create it first."
        )
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise DinodiagError(f"{option} {path} cannot be written (permission denied).")
    existed = target.exists()
    try:  # permissions do not tell all (/proc, a read-only mount, root): try it, empty
        with open(target, "ab"):
            pass
    except OSError as error:
        raise DinodiagError(
            f"{option} {path} cannot be written ({error.strerror or error}): give a file in a "
            "folder you can write to."
        ) from None
    if not existed:
        target.unlink(missing_ok=True)  # the work writes it; nothing is left if the work fails


def resolve_pipeline(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``(pipeline, config or None, description)`` from --preset / --config / --pipeline."""
    from dinodiag.augment.pipeline import build_pipeline
    from dinodiag.augment.presets import load_config
    from dinodiag.probe.pipeline import load_pipeline_spec

    if args.pipeline:
        return load_pipeline_spec(args.pipeline, args.pipeline_kwargs), None, args.pipeline
    if args.pipeline_kwargs:
        raise DinodiagError("--pipeline-kwargs only applies with --pipeline SPEC.")
    source = args.config or args.preset or "dinov2"
    config = load_config(source)
    return build_pipeline(config), config, source


def count_option(name: str, value: int | None, default: int) -> int:
    """The value of a count option (``--samples``), ``default`` when not given; >= 1."""
    value = default if value is None else value
    if value < 1:
        raise DinodiagError(f"{name} = {value} is invalid: give an integer >= 1.")
    return value


def open_inspection_dataset(args: argparse.Namespace) -> Any:
    """The ``--data`` dataset, on ``--split`` or the split the inspection commands default to."""
    from dinodiag.data import inspection_split, open_dataset

    return open_dataset(args.data, split=args.split or inspection_split(args.data))
