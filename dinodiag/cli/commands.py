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
import sys

from dinodiag.cli.app import add_app_parser
from dinodiag.cli.args import EXIT_INPUT
from dinodiag.cli.check import add_check_parser
from dinodiag.cli.open_run import add_open_run_parser
from dinodiag.cli.presets import add_presets_parser
from dinodiag.cli.stats import add_stats_parser
from dinodiag.errors import DinodiagError
from dinodiag.printable import printable


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dinodiag",
        description="Diagnostics for DINOv2 data pipelines and training runs.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n", 2)[2].replace("::", ":"),  # the examples, no RST markup
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_check_parser(sub)
    add_stats_parser(sub)
    add_presets_parser(sub)
    add_open_run_parser(sub)
    add_app_parser(sub)

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
