"""tests/tools/sentence_pins.py: which tests pin a sentence, and which do so on purpose."""

from __future__ import annotations

import re
from pathlib import Path

from tests.tools import sentence_pins

SENTENCE = "a sentence of well over thirty characters"

SOURCE = f'''
import pytest


def test_pins_it():
    assert "{SENTENCE}" in message()


def test_marks_the_literal():
    assert message() == (
        "{SENTENCE}"  # Wording is the feature: the user copies it
    )


def test_marks_the_assert():
    assert message().startswith(
        "{SENTENCE}"
    )  # wording is the feature


def test_marks_one_of_two():
    with pytest.raises(ValueError, match="{SENTENCE}"):  # wording is the feature
        fail()
    assert "{SENTENCE}" in message()


def test_says_it_in_a_string_only():
    assert "{SENTENCE} # wording is the feature" in message()


def test_short_facts():
    assert "short" in message()  # wording is the feature
'''


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "test_example.py"
    path.write_text(SOURCE, encoding="utf-8")
    return path


def test_a_trailing_comment_on_the_literal_or_the_assertion_marks_the_pin(tmp_path: Path):
    found = dict(sentence_pins.pinning_tests(_write(tmp_path)))

    # a short literal is no pin, marked or not
    assert sorted(found) == [
        "test_marks_one_of_two",
        "test_marks_the_assert",
        "test_marks_the_literal",
        "test_pins_it",
        "test_says_it_in_a_string_only",
    ]
    assert [pin.marked for pin in found["test_pins_it"]] == [False]
    assert [pin.marked for pin in found["test_marks_the_literal"]] == [True]
    assert [pin.marked for pin in found["test_marks_the_assert"]] == [True]
    # the mark on the raises line does not cover the assert below it
    assert sorted(pin.marked for pin in found["test_marks_one_of_two"]) == [False, True]
    # the words inside a string literal are not a comment
    assert [pin.marked for pin in found["test_says_it_in_a_string_only"]] == [False]
    assert [sentence_pins.is_marked(pins) for _, pins in sorted(found.items())] == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_the_report_counts_the_marked_tests_apart(tmp_path: Path, capsys):
    path = _write(tmp_path)

    assert sentence_pins.main([str(path)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["5", str(path), "(2", "marked)"]
    # 6 test functions, 5 pin a sentence, 2 of them only with marked pins
    assert re.findall(r"\d+", lines[-1]) == ["5", "6", "30", "2", "3"]
    assert "wording-is-the-feature" in lines[-1]


def test_the_list_labels_each_marked_pin(tmp_path: Path, capsys):
    sentence_pins.main(["--list", str(_write(tmp_path))])

    listed = capsys.readouterr().out.splitlines()
    assert sum("::test_" in line for line in listed) == 5
    labelled = [line for line in listed if "[wording is the feature]" in line]
    assert len(labelled) == 3
    assert all(SENTENCE in line for line in labelled)


PARAMETRIZED = f'''
import pytest

CASES = [("x", "{SENTENCE}"), ("y", "short")]


@pytest.mark.parametrize(("data", "message"), [(1, "{SENTENCE}"), (2, "short")])
def test_match_of_a_parameter(data, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build(data)


@pytest.mark.parametrize("message", ["{SENTENCE}", pytest.param("{SENTENCE}!", id="loud")])
def test_in_and_mentions(message):
    assert message in text()
    assert_mentions(text(), message)


@pytest.mark.parametrize(("data", "message"), CASES)
def test_equal_to_a_module_list(data, message):
    assert text(data) == message


@pytest.mark.parametrize("text", ["{SENTENCE}"])
def test_an_input_only_searched(text):
    assert "short" in text and text.startswith("a")
    assert parse(text) == 3


@pytest.mark.parametrize(("data", "facts"), [(1, ["short", "{SENTENCE}"]), (2, ["short"])])
def test_a_list_of_facts(data, facts):
    assert_mentions(text(data), *facts)


@pytest.mark.parametrize(
    "message",
    [
        "{SENTENCE}",  # wording is the feature
        "{SENTENCE} too",
    ],
)
def test_marks_one_case(message):
    assert message in text()
'''


def test_a_parametrized_literal_pins_the_test_that_expects_it(tmp_path: Path):
    path = tmp_path / "test_parametrized.py"
    path.write_text(PARAMETRIZED, encoding="utf-8")

    found = dict(sentence_pins.pinning_tests(path))

    # a long input the test only searches or parses pins nothing; short cases pin nothing
    assert sorted(found) == [
        "test_a_list_of_facts",
        "test_equal_to_a_module_list",
        "test_in_and_mentions",
        "test_marks_one_case",
        "test_match_of_a_parameter",
    ]
    assert [pin.text for pin in found["test_match_of_a_parameter"]] == [SENTENCE]
    # each case is a pin (pytest.param's value too), however many assertions use it
    assert [pin.text for pin in found["test_in_and_mentions"]] == [SENTENCE, SENTENCE + "!"]
    assert [pin.text for pin in found["test_equal_to_a_module_list"]] == [SENTENCE]
    # a list given as *facts: each long literal in it, not the short ones
    assert [pin.text for pin in found["test_a_list_of_facts"]] == [SENTENCE]
    assert [pin.marked for pin in found["test_marks_one_case"]] == [True, False]
    # the old rule sees none of them
    assert sentence_pins.pinning_tests(path, old_rule=True) == []


FSTRINGS = """
def test_fixed_parts_add_up(tmp_path):
    assert f"{tmp_path} is a file, {kind}: not a directory, give one" in message()


def test_fixed_parts_too_short(n):
    assert f"{n} images, {n} classes" in message()


def test_marked(n):
    assert f"{n} images, too few for {n} in a batch" in message()  # wording is the feature
"""


def test_an_fstring_counts_by_its_fixed_parts_together(tmp_path: Path):
    path = tmp_path / "test_fstrings.py"
    path.write_text(FSTRINGS, encoding="utf-8")

    found = dict(sentence_pins.pinning_tests(path))

    assert sorted(found) == ["test_fixed_parts_add_up", "test_marked"]
    [pin] = found["test_fixed_parts_add_up"]
    # 39 fixed characters in two parts (12 + 27), each under 30; the fields are shown, not counted
    assert pin.text == "{…} is a file, {…}: not a directory, give one"  # wording is the feature
    assert sentence_pins.literal_length(pin.text) == 39 and not pin.marked
    assert [pin.marked for pin in found["test_marked"]] == [True]
    # the old rule counts each part on its own: none reaches 30
    assert sentence_pins.pinning_tests(path, old_rule=True) == []
