"""``python -m dinodiag open-run DIR``: read a DINOv2 output directory (or a dinodiag run):
curves, diagnosis, crop check and what its checkpoints learned; ``--follow`` keeps reading the
log as it grows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dinodiag.cli.args import EXIT_FAILED, EXIT_OK, check_output_file, count_option
from dinodiag.errors import DinodiagError


def add_open_run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "open-run",
        help="read a DINOv2 output directory (or a dinodiag run): curves, diagnosis, crop "
        "check and what its checkpoints learned",
    )
    run.add_argument(
        "run_dir",
        metavar="DIR",
        help="the train.output_dir of a DINOv2 run (training_metrics.json, logs/log.txt, "
        "config.yaml, eval/training_<iter>/teacher_checkpoint.pth), a DINO v1 output_dir "
        "(log.txt) or a dinodiag run directory",
    )
    run.add_argument(
        "--data",
        default=None,
        help="the run's images: the crops are checked on them and the checkpoints evaluated "
        "there (k-NN: train split = memory bank, val split = test). Without it the crops are "
        "judged from the config values alone and the checkpoints on 1,300 generated images",
    )
    run.add_argument(
        "--checkpoint",
        default="latest",
        help="latest (default), all (k-NN per checkpoint), none (the log only: seconds), an "
        "iteration number or a file",
    )
    run.add_argument(
        "--expect",
        default=None,
        help="reference the crops are checked against (default: DINOv2 as its released code "
        "runs, dinov2-released, scaled to the run's resolution)",
    )
    run.add_argument(
        "--launch",
        type=int,
        default=None,
        help="which launch of an appended log to diagnose (1 = the first; default the last)",
    )
    run.add_argument(
        "--num-prototypes",
        type=int,
        default=None,
        help="K of the DINO head, when no config.yaml, log echo or checkpoint says it",
    )
    run.add_argument(
        "--follow",
        action="store_true",
        help="keep reading the log as it grows and print each new or changed finding",
    )
    run.add_argument(
        "--interval", type=float, default=30.0, help="seconds between checks with --follow (30)"
    )
    run.add_argument("--polls", type=int, default=None, help=argparse.SUPPRESS)  # tests
    run.add_argument("--samples", type=int, default=None, help="images for the crop check (16)")
    run.add_argument("--seed", type=int, default=0, help="seed of the crop check and subsets")
    run.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    run.set_defaults(func=cmd_open_run)


def cmd_open_run(args: argparse.Namespace) -> int:
    from dinodiag.augment.presets import load_config
    from dinodiag.runs.run_report import build_report

    samples = count_option("--samples", args.samples, 16)
    check_output_file("--json", args.json, "report.json")
    if args.expect is not None:  # check's rule, now: a run without crops would never read it
        load_config(args.expect)
    launch = None
    if args.launch is not None:
        launch = count_option("--launch", args.launch, 1) - 1
    k = (
        None
        if args.num_prototypes is None
        else count_option("--num-prototypes", args.num_prototypes, 2)
    )
    if args.follow:
        return _follow_run(args, k)
    report = build_report(
        args.run_dir,
        data=args.data,
        checkpoints=args.checkpoint,
        expect=args.expect,
        samples=samples,
        seed=args.seed,
        progress=lambda line: print(line, file=sys.stderr),
        launch=launch,
        num_prototypes=k,
    )
    print(report.to_text())
    if args.json:
        Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
        print(f"report written to {args.json}")
    return EXIT_FAILED if report.verdict == "fail" else EXIT_OK


def _follow_run(args: argparse.Namespace, k: int | None) -> int:
    """``open-run --follow``: the findings of the log, then each change as the log grows,
    until Ctrl-C (or ``--polls`` checks)."""
    from dinodiag.runs.dinov2_run import open_run
    from dinodiag.runs.follow import follow

    open_run(args.run_dir, num_prototypes=k)  # a wrong directory fails now, with its reason
    interval = float(args.interval)
    if not interval > 0:
        raise DinodiagError(f"--interval must be > 0 seconds, got {args.interval}.")
    print(f"following {args.run_dir} every {interval:g} s (Ctrl-C to stop)", flush=True)
    worst = "pass"
    try:
        for change in follow(
            args.run_dir,
            interval=interval,
            polls=args.polls,
            num_prototypes=k,
            on_error=lambda text: print(f"cannot read the log now: {text}", file=sys.stderr),
        ):
            print(change.line(), flush=True)
            if change.finding.level == "fail":
                worst = "fail"
    except KeyboardInterrupt:
        print("stopped following.")
    return EXIT_FAILED if worst == "fail" else EXIT_OK
