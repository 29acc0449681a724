"""The command line of ``train``: one flag per TrainConfig field, generated from the knob table
(:func:`dinodiag.recipe.knobs.knob_table`: the field's name, comment and range), and what a
command line gave (``--base-lr 0.1``, ``--set optim.min_lr=1e-5``) as config overrides."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from dinodiag.errors import ConfigError
from dinodiag.recipe.knobs import Knob, knob_table


def _number(text: str) -> float:
    """A finite float for a flag (``inf`` / ``nan`` are refused by argparse, naming the flag)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
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
        if text.strip().lower() in ("none", "null"):
            return "none"
        try:
            return number(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc} (none lifts the limit)") from None

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
    """One flag per TrainConfig field (:func:`~dinodiag.recipe.knobs.knob_table`), grouped by
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


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``{"section.field": value}`` for every flag given (and every ``--set``)."""
    return {field: value for field, (value, _) in given_overrides(args).items()}


def given_overrides(args: argparse.Namespace) -> dict[str, tuple[Any, str]]:
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


def naming_the_option(exc: ConfigError, given: dict[str, tuple[Any, str]]) -> ConfigError:
    """The error of a config field, prefixed with the flag or ``--set`` that gave the value."""
    match = _FIELD_IN_MESSAGE.match(str(exc))
    if match is None or match.group(1) not in given:
        return exc
    return ConfigError(f"{given[match.group(1)][1]}: {exc}")
