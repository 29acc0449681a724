"""The training form's number widgets read the one definition of a knob (its range and help:
:func:`dinodiag.recipe.knobs.knob_table`), so the form cannot allow what the config refuses
or explain a knob in other words than ``train --help``.

    st.number_input("Base lr", value=d["optim.base_lr"], key="lr", **number_args("optim.base_lr"))
"""

from __future__ import annotations

import functools
from typing import Any

from dinodiag.recipe.knobs import Knob, knob_table


@functools.cache
def _knobs() -> dict[str, Knob]:
    return {knob.field: knob for knob in knob_table()}


def number_args(field: str, *, zero_means_none: bool = False) -> dict[str, Any]:
    """``min_value`` / ``max_value`` / ``help`` of ``st.number_input`` for the knob ``field``
    (``"optim.base_lr"``): its closed bounds (an open bound is left to the config, whose error
    the form shows), and its help. ``zero_means_none``: the form's 0 stands for "no limit"
    (a field that allows none), so 0 is allowed too."""
    knob = _knobs()[field]
    bounds = knob.bounds
    number: type = float if knob.kind is float else int
    low = high = None
    if bounds is not None:
        low = None if bounds.low is None or bounds.low_open else number(bounds.low)
        high = None if bounds.high is None or bounds.high_open else number(bounds.high)
    if zero_means_none:
        if not knob.allows_none:
            raise ValueError(f"{field} allows no 'none': 0 cannot stand for no limit")
        low = number(0)
    help_text = knob.help + (" 0 = no limit." if zero_means_none else "")
    return {"min_value": low, "max_value": high, "help": help_text}
