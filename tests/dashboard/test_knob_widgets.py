"""The training form's widgets take their bounds and help from the knob table (one range and
one help per knob, shared with the config and train --help)."""

from __future__ import annotations

import pytest

from dinodiag.dashboard.knob_widgets import number_args
from dinodiag.recipe.knobs import knob_table

KNOBS = {k.field: k for k in knob_table()}


def test_closed_bounds_become_the_widgets_and_open_ones_are_left_to_the_config():
    assert number_args("data.batch_size")["min_value"] == 1
    assert number_args("data.batch_size")["max_value"] is None
    assert number_args("model.drop_path_rate") == {
        "min_value": 0.0,
        "max_value": None,  # [0, 1): the open top is the config's to refuse
        "help": KNOBS["model.drop_path_rate"].help,
    }
    assert number_args("optim.base_lr")["min_value"] is None  # > 0: open


def test_zero_means_no_limit_only_where_the_config_allows_none():
    steps = number_args("run.max_steps", zero_means_none=True)
    assert steps["min_value"] == 0 and steps["help"].endswith("0 = no limit.")
    assert isinstance(number_args("run.max_seconds", zero_means_none=True)["min_value"], float)
    with pytest.raises(ValueError, match="data.batch_size"):
        number_args("data.batch_size", zero_means_none=True)
