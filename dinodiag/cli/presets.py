"""``python -m dinodiag presets``: the pipeline presets, with their crops and sources."""

from __future__ import annotations

import argparse
from typing import Any

from dinodiag.cli.args import EXIT_OK


def add_presets_parser(sub: Any) -> None:
    presets = sub.add_parser("presets", help="list the pipeline presets")
    presets.set_defaults(func=cmd_presets)


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
