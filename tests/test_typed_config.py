"""Plain data -> config dataclass: types from the real hints, text parsing, messages, defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from dinodiag.errors import ConfigError
from dinodiag.typed_config import build_config, check_types, convert_value, did_you_mean
from tests.facts import assert_mentions


@dataclass(frozen=True)
class Inner:
    rate: float = 0.5
    flag: bool = False


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    count: int = 2
    limit: int | None = None
    pair: tuple[float, float] = (0.1, 0.9)
    inner: Inner = field(default_factory=lambda: Inner(rate=0.25))

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ConfigError(f"count = {self.count} is invalid: allowed >= 0.")


def config_error(call, *args, **kwargs) -> str:
    """The message of the ConfigError that call(*args, **kwargs) raises."""
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_strict_data_keeps_types_and_defaults():
    cfg = build_config(Outer, {"count": 3.0, "pair": [0, 1], "inner": {"flag": True}})
    assert cfg == Outer(count=3, pair=(0.0, 1.0), inner=Inner(rate=0.25, flag=True))
    assert type(cfg.count) is int and type(cfg.pair[0]) is float
    # a nested mapping changes only its keys: the parent's default (rate 0.25) stays
    assert cfg.inner.rate == 0.25
    assert build_config(Outer, {}) == Outer()


def test_text_is_parsed_only_when_asked():
    text = {"count": "4", "limit": "none", "pair": "(0.2, 0.3)", "inner": {"flag": "yes"}}
    cfg = build_config(Outer, text, from_text=True)
    assert (cfg.count, cfg.limit, cfg.pair, cfg.inner.flag) == (4, None, (0.2, 0.3), True)
    message = config_error(build_config, Outer, {"count": "4"})
    assert message.startswith("count = '4' ")
    assert_mentions(message, "wrong type", "an integer")


@pytest.mark.parametrize(
    ("data", "first", "facts"),
    [
        # the field and its value first; then the type expected, to its full stop
        ({"count": 2.5}, "count = 2.5 ", ["wrong type", "expected an integer."]),
        ({"count": True}, "count = True ", ["wrong type", "expected an integer"]),
        ({"count": math.inf}, "count = inf ", ["wrong type", "expected a finite integer"]),
        ({"limit": "many"}, "limit = 'many' ", ["wrong type", "expected an integer or null."]),
        ({"pair": 0.4}, "pair = 0.4 ", ["wrong type", "expected a list of 2 numbers."]),
        ({"pair": [0.4, "x"]}, "pair[1] = 'x' ", ["wrong type", "expected a number."]),
        ({"pair": [0.4, math.nan]}, "pair[1] = nan ", ["expected a finite number"]),
        ({"name": 3}, "name = 3 ", ["wrong type", "expected a string"]),
        ({"inner": {"flag": 1}}, "inner.flag = 1 ", ["wrong type", "expected true or false"]),
        ({"inner": 3}, "inner ", ["a mapping", "got 3."]),
        ({"inner": {"rat": 1.0}}, "unknown key 'inner.rat'", ["Did you mean 'rate'?"]),
        (
            {"zzz": 1},
            "unknown key 'zzz'",
            ["Known keys:", "name", "count", "limit", "pair", "inner"],
        ),
        ({"count": -1}, "count = -1 ", ["invalid", "allowed >= 0."]),  # the class's own check
    ],
)
def test_errors_name_the_field_the_value_and_the_type(data, first, facts):
    message = config_error(build_config, Outer, data)
    assert message.startswith(first), message
    assert_mentions(message, *facts)


def test_text_errors_say_how_to_write_the_value():
    message = config_error(build_config, Outer, {"pair": "0.1"}, from_text=True)
    assert message.startswith("pair = '0.1' ")
    assert_mentions(message, "2 values", "commas")
    message = config_error(convert_value, "flag", "maybe", bool, from_text=True)
    assert message.startswith("flag = 'maybe' ")
    assert_mentions(message, "true or false")
    message = config_error(build_config, Outer, [1], what="a training config")
    assert message.startswith("a training config ")
    assert_mentions(message, "mapping")


def test_unsupported_field_types_are_a_programming_error():
    with pytest.raises(TypeError, match="not supported"):
        convert_value("x", 1, list[int])


def test_did_you_mean():
    assert did_you_mean("blur_prob", ["blur_p", "flip_p"]) == " Did you mean 'blur_p'?"
    assert did_you_mean("zzz", ("a", "b")) == " Known keys: a, b."


def test_check_types_names_the_field_the_value_and_the_type():
    check_types(Outer(count=3, limit=None, inner=Inner(rate=1)))  # an int is a fine float
    message = config_error(check_types, Outer(limit="3"))  # type: ignore[arg-type]
    assert message.startswith("limit = '3' ")
    assert_mentions(message, "wrong type", "an integer")
    message = config_error(check_types, Outer(inner=Inner(flag="yes")))  # type: ignore[arg-type]
    assert message.startswith("inner.flag = 'yes' ")
    assert_mentions(message, "wrong type", "true or false")
    message = config_error(check_types, Outer(inner={"rate": 0.5}))  # type: ignore[arg-type]
    assert message.startswith("inner = {'rate': 0.5} ")
    assert_mentions(message, "wrong type", "Inner")


def test_a_pipeline_config_built_in_python_gets_the_message_a_file_would():
    import numpy as np

    from dinodiag.augment.config import PipelineConfig, ViewAugment

    # was TypeError: '<' not supported between instances of 'str' and 'int', without the field
    message = config_error(PipelineConfig, global_crops_size="224")
    assert message.startswith("global_crops_size = '224' ")
    assert_mentions(message, "wrong type", "an integer")
    message = config_error(PipelineConfig, global2=ViewAugment(blur_p="0.1"))
    assert message.startswith("global2.blur_p = '0.1' ")
    assert_mentions(message, "wrong type", "a number")
    # NumPy scalars (a value from an array or a data frame) are numbers
    assert PipelineConfig(global_crops_size=np.int64(96)).global_crops_size == 96
