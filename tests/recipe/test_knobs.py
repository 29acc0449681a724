"""Every TrainConfig field is one knob: one name (its flag is the field's name), one help (the
field's comment), one range (the Bounds in its type hint), read by the config's validation and
the command line alike."""

from __future__ import annotations

import dataclasses

import pytest

from dinodiag.cli import build_parser
from dinodiag.errors import ConfigError
from dinodiag.recipe.config import SECTIONS, TrainConfig
from dinodiag.recipe.flags import RENAMED
from dinodiag.recipe.knobs import knob_table
from dinodiag.train.run_config import config_from_args
from dinodiag.typed_config import Bounds
from tests.facts import assert_mentions


def test_every_field_is_a_knob_with_a_help_and_a_flag_of_its_own_name():
    knobs = {k.field: k for k in knob_table()}
    fields = {f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    assert set(knobs) == fields
    for knob in knobs.values():
        assert len(knob.help) > 10, f"{knob.field} has no help comment"
        assert knob.flag == "--" + knob.field.split(".")[1].replace("_", "-")
    assert len({k.flag for k in knobs.values()}) == len(knobs)  # no two fields share a flag
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for knob in knobs.values():
        assert knob.flag in help_text


def test_the_range_in_the_type_hint_is_what_the_config_enforces():
    knobs = {k.field: k for k in knob_table()}
    assert knobs["optim.base_lr"].bounds == Bounds(low=0, low_open=True)
    assert knobs["optim.base_lr"].allowed() == "a number > 0"
    assert knobs["run.max_steps"].allowed() == "an integer >= 1 or null"
    assert knobs["model.drop_path_rate"].allowed() == "a number in [0, 1)"
    assert knobs["run.precision"].allowed() == "one of auto | bf16 | fp32"
    # the validation's message gives the range the knob's type hint gives
    for field, bad in [("optim.base_lr", 0), ("model.drop_path_rate", 1.0)]:
        with pytest.raises(ConfigError) as info:
            TrainConfig().with_overrides({field: bad})
        assert str(info.value).startswith(f"{field} = {float(bad)} ")
        assert_mentions(str(info.value), "invalid", knobs[field].allowed())
    for knob in knob_table():  # every default lies inside its own range
        if knob.bounds is not None:
            assert knob.bounds.allows(knob.default), knob.field


def test_flags_reach_their_fields_and_errors_name_the_flag(capsys):
    args = build_parser().parse_args(
        [
            "train",
            "--base-lr",
            "1e-3",
            "--max-seconds",
            "none",
            "--compile",
            "--mask-ratio",
            "0.2,0.4",
        ]
    )
    config = config_from_args(args)
    assert config.optim.base_lr == 1e-3 and config.run.max_seconds is None
    assert config.run.compile is True and config.optim.mask_ratio == (0.2, 0.4)
    with pytest.raises(ConfigError) as info:
        config_from_args(build_parser().parse_args(["train", "--base-lr", "0"]))
    # the flag as typed first, then the field it sets
    assert str(info.value).startswith("--base-lr 0: ")
    assert_mentions(str(info.value), "optim.base_lr = 0")


@pytest.mark.parametrize("old", sorted(RENAMED))
def test_a_flag_of_an_earlier_version_names_the_one_to_use(old, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["train", old, "1"])
    assert exit_info.value.code == 2
    assert f"{old} is now {RENAMED[old]}" in capsys.readouterr().err
