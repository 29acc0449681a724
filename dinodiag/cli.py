"""Command line: ``python -m dinodiag {check,stats,presets,train,open-run,app}``.

Examples::

    python -m dinodiag presets
    python -m dinodiag check --preset seed-broken                 # vs DINOv2, on sample_images/
    python -m dinodiag check --config my_dinov2_train.yaml --expect dinov2 --json report.json
    python -m dinodiag check --preset seed-broken --write-fixed fixed.yaml   # the corrected config
    python -m dinodiag check --config my_dinov2_train.yaml --write-fixed crops.yaml \\
        --fixed-format dinov2                                     # a crops: section to paste
    python -m dinodiag check --pipeline examples/seed_pipeline.py:build_two_view_augment \\
        --pipeline-kwargs '{"img_size": 96}' --data /path/to/images
    python -m dinodiag stats --preset seed-fixed --samples 500 --csv samples.csv
    python -m dinodiag train --preset cpu-demo --run-dir runs/demo
    python -m dinodiag open-run /checkpoints/my_dinov2_run --checkpoint all --data /path/to/images
    python -m dinodiag app                                        # the dashboard, on 127.0.0.1

Exit codes: 0 nothing failed, 1 a check failed, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from dinodiag.errors import DinodiagError
from dinodiag.printable import printable

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


def _positive(name: str, value: int | None, default: int) -> int:
    value = default if value is None else value
    if value < 1:
        raise DinodiagError(f"{name} = {value} is invalid: give an integer >= 1.")
    return value


def open_inspection_dataset(args: argparse.Namespace) -> Any:
    from dinodiag.data import inspection_split, open_dataset

    return open_dataset(args.data, split=args.split or inspection_split(args.data))


def cmd_check(args: argparse.Namespace) -> int:
    from dinodiag.augment.presets import get_preset, load_config
    from dinodiag.checks.runner import run_checks

    samples = _positive("--samples", args.samples, 16)
    check_output_file("--json", args.json, "report.json")
    check_output_file("--markdown", args.markdown, "report.md")
    fixed_format = check_write_fixed(args)
    pipeline, config, name = resolve_pipeline(args)
    expect = load_config(args.expect)
    expect_name = get_preset(args.expect).name if Path(args.expect).suffix == "" else expect.name
    dataset = open_inspection_dataset(args)
    report = run_checks(
        pipeline,
        dataset,
        expect=expect,
        expect_name=expect_name,
        config=config,
        samples=samples,
        seed=args.seed,
        pipeline_name=name,
        data_name=dataset.name,
        **sampling_options(args),
    )
    # printable: a name typed with undecodable bytes (--data, --config) is escaped, not fatal
    print(printable(report.to_table()))  # ends with every unusable file of the dataset, if any
    if args.json:
        Path(args.json).write_text(printable(report.to_json()) + "\n", encoding="utf-8")
        print(f"report written to {args.json}")
    if args.markdown:
        Path(args.markdown).write_text(printable(report.to_markdown()), encoding="utf-8")
        print(f"report written to {args.markdown}")
    if args.write_fixed:
        write_fixed_config(report, config, expect, expect_name, args.write_fixed, fixed_format)
    return EXIT_FAILED if report.verdict == "fail" else EXIT_OK


def check_write_fixed(args: argparse.Namespace) -> str | None:
    """The format ``--write-fixed`` will write, refused before any work when it cannot be."""
    from dinodiag.checks.fixes import resolve_format

    if args.fixed_format and not args.write_fixed:
        raise DinodiagError("--fixed-format only applies with --write-fixed FILE.")
    if not args.write_fixed:
        return None
    if args.pipeline:
        raise DinodiagError(
            "--write-fixed corrects a config (--preset or --config); a pipeline from your own "
            "code (--pipeline) has none to correct: the report says what to change in it."
        )
    check_output_file("--write-fixed", args.write_fixed, "fixed.yaml")
    return resolve_format(args.write_fixed, args.fixed_format)


def write_fixed_config(
    report: Any, config: Any, expect: Any, expect_name: str, path: str, fixed_format: str | None
) -> None:
    """``--write-fixed``: the config with every failing / warning value set to the reference's."""
    from dinodiag.checks.fixes import plan_fixes, summary_lines, write_fixed

    plan = plan_fixes(report, config, expect, expect_name)
    write_fixed(plan, path, fixed_format)
    what = "DINOv2 crops: section" if fixed_format == "dinov2" else "dinodiag config"
    print(f"\ncorrected {what} written to {path}")
    for line in summary_lines(plan):
        print(f"  {line}")


def cmd_stats(args: argparse.Namespace) -> int:
    import pandas as pd

    from dinodiag.augment.presets import load_config
    from dinodiag.stats import rates, sample_views, strengths, summarize

    samples = _positive("--samples", args.samples, 200)
    check_output_file("--csv", args.csv, "samples.csv")
    pipeline, config, name = resolve_pipeline(args)
    expect = load_config(args.expect)
    dataset = open_inspection_dataset(args)
    frame = sample_views(pipeline, dataset, samples, seed=args.seed, **sampling_options(args))
    with pd.option_context(
        "display.width", 140, "display.max_columns", 20, "display.float_format", "{:.3f}".format
    ):
        print(f"pipeline: {name}\ndata:     {dataset.name} ({samples} samples, seed {args.seed})")
        print(f"expected: {args.expect}\n")
        print(
            "Crop measures (area scale, aspect ratio, upsampling, global-pair IoU, local coverage):"
        )
        print(summarize(frame, config).to_string(index=False))
        table = rates(frame, config, expect)
        if not table.empty:
            print(
                "\nApplication rates per view, measured vs configured and expected (low-high: "
                "the binomial interval of the expected rate at n; verdict far = a fault):"
            )
            print(table.to_string(index=False))
        drawn = strengths(frame, expect)
        if not drawn.empty:
            print("\nDrawn strengths where the operation applied, vs the expected range:")
            print(drawn.to_string(index=False))
        unknown = int(pd.to_numeric(frame.get("unknown_steps"), errors="coerce").fillna(0).sum())
        if unknown:
            print(f"\n{unknown} step(s) changed images in ways dinodiag could not tell.")
    if args.csv:
        frame.to_csv(args.csv, index=False)
        print(f"\n{len(frame)} rows written to {args.csv}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    from dinodiag.augment.presets import PRESETS

    width = max(len(name) for name in PRESETS) + 1
    for preset in PRESETS.values():
        c = preset.config
        print(f"{preset.name:{width}} {preset.description}")
        print(
            f"{'':{width}} {c.global_crops_number} x {c.global_crops_size}px "
            f"{c.global_crops_scale} + {c.local_crops_number} x {c.local_crops_size}px "
            f"{c.local_crops_scale}, patch {c.patch_size}"
        )
        if (c.global1.blur_p, c.global2.blur_p, c.local.blur_p) != (1.0, 0.1, 0.5):
            print(
                f"{'':{width}} blur p {c.global1.blur_p:g} / {c.global2.blur_p:g} / "
                f"{c.local.blur_p:g} on global 1 / global 2 / locals"
            )
        for variant in preset.size_variants:
            print(
                f"{'':{width}} {variant.name} variant: {variant.global_crops_size} / "
                f"{variant.local_crops_size} px, patch {variant.patch_size}"
            )
        print(f"{'':{width}} source: {preset.source}\n")
    return EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    """Start the dashboard (``streamlit run serve.py``: app.py behind the Host rule) bound to
    ``--address`` (loopback); SIGTERM / SIGHUP stop it too (``dashboard.launch``)."""
    from dinodiag.dashboard import host_rule, launch, security

    for needed in (security.APP_FILE, security.SERVE_FILE):
        if not needed.is_file():
            raise DinodiagError(
                f"the dashboard's {needed.name} is not at {needed}: it ships with a checkout of "
                "the repository, not with the installed package; run `make run` in a checkout."
            )
    env = dict(os.environ)
    hosts = host_rule.listed_hosts(env.get(host_rule.ALLOWED_HOSTS_ENV)) + args.allow_host
    env[host_rule.ALLOWED_HOSTS_ENV] = ",".join(hosts)
    if args.allow_browser_code:
        env[security.ALLOW_CODE_ENV] = "1"
        print(
            "warning: code from the browser is allowed: anyone who can open the dashboard can "
            "run commands as you.",
            file=sys.stderr,
        )
    if security.listens_beyond_loopback(args.address):
        print(
            f"warning: listening on {args.address}: other machines can open the dashboard.",
            file=sys.stderr,
        )
    command = security.app_command(port=args.port, address=args.address, hosts=hosts)
    return launch.run_forwarding_signals(command, env)


def cmd_open_run(args: argparse.Namespace) -> int:
    from dinodiag.augment.presets import load_config
    from dinodiag.runs.run_report import build_report

    samples = _positive("--samples", args.samples, 16)
    check_output_file("--json", args.json, "report.json")
    if args.expect is not None:  # check's rule, now: a run without crops would never read it
        load_config(args.expect)
    launch = None
    if args.launch is not None:
        launch = _positive("--launch", args.launch, 1) - 1
    k = (
        None
        if args.num_prototypes is None
        else _positive("--num-prototypes", args.num_prototypes, 2)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dinodiag",
        description="Diagnostics for DINOv2 data pipelines and training runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2].replace("::", ":"),  # the examples, no RST markup
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="run every pipeline check and print a table")
    add_pipeline_args(check)
    add_sampling_args(check)
    check.add_argument(
        "--expect", default="dinov2", help="reference preset or config file (default dinov2)"
    )
    check.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    check.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown")
    check.add_argument(
        "--write-fixed",
        metavar="FILE",
        help="also write the config with every failing / warning value set to the reference's "
        "(.yaml / .yml / .json: a dinodiag config; see --fixed-format)",
    )
    check.add_argument(
        "--fixed-format",
        choices=("dinodiag", "dinov2"),
        default=None,
        help="what --write-fixed writes: a dinodiag config (default) or the crops: section and "
        "student.patch_size to paste into a DINOv2 training config (YAML)",
    )
    check.set_defaults(func=cmd_check)

    stats = sub.add_parser("stats", help="sample the pipeline and summarise what it drew")
    add_pipeline_args(stats)
    add_sampling_args(stats)
    stats.add_argument(
        "--expect",
        default="dinov2",
        help="reference the rates and strengths are compared with (default dinov2)",
    )
    stats.add_argument("--csv", metavar="FILE", help="write one row per sampled view as CSV")
    stats.set_defaults(func=cmd_stats)

    presets = sub.add_parser("presets", help="list the pipeline presets")
    presets.set_defaults(func=cmd_presets)
    add_open_run_parser(sub)

    app = sub.add_parser("app", help="start the dashboard on this machine (127.0.0.1)")
    app.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    app.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on; the default 127.0.0.1 lets only this machine in (use an "
        "SSH tunnel from elsewhere); 0.0.0.0 opens it to the network",
    )
    app.add_argument(
        "--allow-browser-code",
        action="store_true",
        help="let the sidebar run your own pipeline code and read CIFAR / STL-10 roots: anyone "
        "who can open the page can then run commands as you (same as "
        "DINODIAG_ALLOW_BROWSER_CODE=1)",
    )
    app.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the dashboard also answers to (repeat for more; also "
        "DINODIAG_ALLOWED_HOSTS=a,b): requests whose Host is not a loopback name, --address or "
        "one of these get 403, which keeps DNS-rebinding web pages out",
    )
    app.set_defaults(func=cmd_app)

    try:
        from dinodiag.train.cli import add_train_parser
    except ImportError:  # the training engine is optional at import time
        add_train_parser = None
    if add_train_parser is not None:
        add_train_parser(sub)
    return parser


def escape_undecodable_output() -> None:
    """Print what cannot be encoded as escapes instead of failing at the last line.

    A file name with undecodable bytes (a Latin-1 name in a UTF-8 locale) reaches ``print``
    as lone surrogates; a strict stdout (``PYTHONIOENCODING=utf-8:strict``, some terminals)
    would raise after the work is done. dinodiag escapes the names it knows (``printable``);
    this catches the ones it does not (an argument typed with such bytes, a library's text).
    """
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # absent on a replaced stream
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """The usage error for a mistyped command (``chek``), with the nearest command; None when
    the first word is a command or an option (argparse handles those)."""
    import difflib

    if not argv or argv[0].startswith("-"):
        return None
    commands = next(
        (list(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
        [],
    )
    if argv[0] in commands:
        return None
    close = difflib.get_close_matches(argv[0], commands, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown command {printable(argv[0])!r}: {hint}the commands are {', '.join(commands)}"


def main(argv: list[str] | None = None) -> int:
    escape_undecodable_output()
    parser = build_parser()
    given = sys.argv[1:] if argv is None else argv
    wrong = _unknown_command(parser, given)
    if wrong is not None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {wrong}", file=sys.stderr)
        return EXIT_INPUT
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DinodiagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
