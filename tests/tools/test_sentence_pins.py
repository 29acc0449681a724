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
