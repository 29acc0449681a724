"""``python -m dinodiag check``: every pipeline check, a table, and on request the report as
JSON / Markdown and the config with every failing value set to the reference's."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dinodiag.cli.args import (
    EXIT_FAILED,
    EXIT_OK,
    add_pipeline_args,
    add_sampling_args,
    check_output_file,
    count_option,
    open_inspection_dataset,
    resolve_pipeline,
    sampling_options,
)
from dinodiag.errors import DinodiagError
from dinodiag.printable import printable


def add_check_parser(sub: Any) -> None:
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


def cmd_check(args: argparse.Namespace) -> int:
    from dinodiag.augment.presets import get_preset, load_config
    from dinodiag.checks.runner import run_checks

    samples = count_option("--samples", args.samples, 16)
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
