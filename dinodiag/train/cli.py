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
import os
import sys
from pathlib import Path
from typing import Any

from dinodiag.errors import ConfigError
from dinodiag.printable import stdout_reserved
from dinodiag.recipe.flags import add_knob_flags
from dinodiag.recipe.presets import TRAIN_PRESETS
from dinodiag.train.run_config import config_and_recipe, resolved_config

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


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


def cmd_train(args: argparse.Namespace) -> int:
    from dinodiag.rundir import dumps, new_run_id
    from dinodiag.train.engine import run_training
    from dinodiag.train.warmup import estimate_here, process_start_time

    started = process_start_time()
    if args.print_config or (args.estimate and args.json):
        # The answer is JSON for a script: your own pipeline (called while the config is
        # resolved) may print, so standard output is kept for the JSON alone.
        with stdout_reserved():
            plan, recipe = config_and_recipe(args)
            answer = (
                dumps(resolved_config(plan, recipe), indent=2)
                if args.print_config
                else dumps(estimate_here(plan.config, started).to_dict())
            )
        print(answer, flush=True)
        return EXIT_OK
    plan, recipe = config_and_recipe(args)  # planned and checked (dinodiag.recipe.plan)
    config = plan.config
    if args.estimate:
        print(estimate_here(config, started).sentence(), flush=True)
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
    print(result.summary(), flush=True)
    return EXIT_FAILED if result.state == "failed" else EXIT_OK
