"""The knob table: every field of a :class:`~dinodiag.recipe.config.TrainConfig` section as
one knob, with its one name (the flag ``--base-lr`` for ``optim.base_lr``), its one help (the
field's comment) and its one range (the ``Bounds`` in its type hint). The config's validation
reads the same bounds; the command line (:mod:`dinodiag.recipe.flags`) and the training form
(:mod:`dinodiag.dashboard.knob_widgets`) read this table."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from dinodiag.recipe.config import SECTIONS, TrainConfig
from dinodiag.typed_config import (
    Bounds,
    field_bounds,
    field_help,
    field_types,
)


@dataclass(frozen=True)
class Knob:
    """One field of a :class:`TrainConfig` section as a command line or a form offers it: the
    one name (``--base-lr`` for ``optim.base_lr``), the one help (the field's comment), the one
    range (the :class:`~dinodiag.typed_config.Bounds` in its type hint)."""

    field: str  # "optim.base_lr"
    hint: Any  # the field's type without its bounds: float, int | None, bool, tuple[float, float]
    default: Any  # TrainConfig()'s value (a preset may set another)
    help: str
    bounds: Bounds | None

    @property
    def flag(self) -> str:
        return "--" + self.field.partition(".")[2].replace("_", "-")

    @property
    def kind(self) -> type:
        """bool, int, float, str or tuple: what a value is, None aside."""
        args = [a for a in typing.get_args(self.hint) if a is not type(None)]
        base = args[0] if typing.get_origin(self.hint) in (typing.Union, types.UnionType) else None
        hint = base or self.hint
        return tuple if typing.get_origin(hint) is tuple else hint

    @property
    def allows_none(self) -> bool:
        return type(None) in typing.get_args(self.hint)

    def allowed(self) -> str:
        """``a number > 0``, ``one of center | sinkhorn``, ``true or false``..."""
        if self.bounds is not None:
            return self.bounds.describe(integer=self.kind is int)
        if self.kind is bool:
            return "true or false"
        if self.kind is tuple:
            return "two numbers, min,max"
        return "text" + (" or null" if self.allows_none else "")


@functools.cache
def knob_table() -> tuple[Knob, ...]:
    """Every knob of every section, in the order of the dataclasses."""
    defaults = TrainConfig()
    knobs = []
    for section, cls in SECTIONS.items():
        hints, helps, bounds = field_types(cls), field_help(cls), field_bounds(cls)
        for f in dataclasses.fields(cls):
            knobs.append(
                Knob(
                    field=f"{section}.{f.name}",
                    hint=hints[f.name],
                    default=getattr(getattr(defaults, section), f.name),
                    help=helps.get(f.name, ""),
                    bounds=bounds.get(f.name),
                )
            )
    return tuple(knobs)
