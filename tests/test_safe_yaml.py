"""dinodiag.safe_yaml: config text within bounds (alias bombs, deep nesting, duplicate keys)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from dinodiag.errors import ConfigError
from dinodiag.safe_yaml import MAX_CONFIG_CHARS, MAX_CONFIG_DEPTH, load_config_text
from tests.facts import assert_mentions


def laughs(levels: int) -> str:
    """The "billion laughs" document: each level repeats the one before nine times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
    return "\n".join(lines) + f"\nglobal_crops_scale: *l{levels - 1}\n"


def test_plain_config_text_and_json_load() -> None:
    text = "name: mine\nglobal_crops_scale: [0.4, 1.0]\nglobal1: {blur_p: 0.5}\n"
    assert load_config_text(text) == {
        "name": "mine",
        "global_crops_scale": [0.4, 1.0],
        "global1": {"blur_p": 0.5},
    }
    assert load_config_text('{"local_crops_number": 6}') == {"local_crops_number": 6}


def test_a_few_aliases_are_fine() -> None:
    text = "base: &v {blur_p: 0.5}\nglobal1: *v\nlocal: *v\n"
    data = load_config_text(text)
    assert data["global1"] == data["local"] == {"blur_p": 0.5}


@pytest.mark.parametrize("levels", [4, 9])
def test_billion_laughs_is_refused_quickly_in_little_memory(levels: int) -> None:
    text = laughs(levels)  # 9 levels: 480 bytes, 387 million strings if expanded
    assert len(text) < 800
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="laughs.yaml")
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    message = str(info.value)
    assert message.startswith("laughs.yaml: ")
    assert_mentions(message, "10,000 values", "alias")
    assert len(message) < 300
    assert elapsed < 1.0 and peak < 5 * 2**20, (elapsed, peak)


def test_a_value_containing_itself_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("global_crops_scale: &a [0.4, *a]\n", source="cfg.yaml")
    assert_mentions(str(info.value), "cfg.yaml: ", "alias *a", "line 1", "anchor &a")


@pytest.mark.parametrize("brackets", ["[", "{a: "])
def test_deep_nesting_is_a_message_not_a_recursion_error(brackets: str) -> None:
    closing = "]" if brackets == "[" else "}"
    text = "global_crops_scale: " + brackets * 20_000 + "1" + closing * 20_000 + "\n"
    with pytest.raises(ConfigError, match=f"deep.yaml: nested more than {MAX_CONFIG_DEPTH}"):
        load_config_text(text, source="deep.yaml")
    ok = "a: " + "[" * 10 + "1" + "]" * 10  # a few levels are fine
    assert load_config_text(ok)["a"] == [[[[[[[[[[1]]]]]]]]]]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"local_crops_number": 8, "local_crops_number": 0}', "line 1, column 2 and line 1"),
        ("local_crops_number: 8\nname: x\nlocal_crops_number: 0\n", "line 1, column 1 and line 3"),
        ("global1:\n  blur_p: 0.1\n  blur_p: 0.9\n", "line 2, column 3 and line 3"),
    ],
)
def test_duplicate_keys_are_refused_with_both_places(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="cfg.json")
    message = str(info.value)
    assert message.startswith("cfg.json: key ") and "appears twice" in message
    assert where in message


def test_merge_keys_may_be_overridden() -> None:
    text = "base: &b {blur_p: 0.1, flip_p: 0.5}\nglobal1:\n  <<: *b\n  blur_p: 1.0\n"
    assert load_config_text(text)["global1"] == {"blur_p": 1.0, "flip_p": 0.5}


def test_text_past_the_size_limit_is_refused_before_parsing() -> None:
    text = "name: " + "x" * MAX_CONFIG_CHARS
    with pytest.raises(ConfigError) as info:
        load_config_text(text, source="big.yaml")
    assert_mentions(str(info.value), "big.yaml: ", "1,000,006 characters", f"{MAX_CONFIG_CHARS:,}")


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("a: [1, 2\nb: 3\n", source="c.yaml")
    assert_mentions(str(info.value), "c.yaml: ", "YAML", "line 2")
