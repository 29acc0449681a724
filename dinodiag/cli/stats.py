"""``python -m dinodiag stats``: sample the pipeline and summarise what it drew (crop measures,
application rates, drawn strengths), optionally every sampled view as CSV."""

from __future__ import annotations

import argparse
from typing import Any

from dinodiag.cli.args import (
    EXIT_OK,
    add_pipeline_args,
    add_sampling_args,
    check_output_file,
    count_option,
    open_inspection_dataset,
    resolve_pipeline,
    sampling_options,
)


def add_stats_parser(sub: Any) -> None:
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


def cmd_stats(args: argparse.Namespace) -> int:
    import pandas as pd

    from dinodiag.augment.presets import load_config
    from dinodiag.stats import rates, sample_views, strengths, summarize

    samples = count_option("--samples", args.samples, 200)
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
