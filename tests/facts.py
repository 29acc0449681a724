"""Assert the facts a message carries, not its sentence (issue 22's habit).

A test that pins a whole sentence breaks on every rewording. Name each fact the
user needs instead (the file, the field, the value, the allowed range, the id,
the key word of what to do); each fact is checked on its own, so a message that
drops one still fails.
"""

from __future__ import annotations


def missing_facts(text: str, *facts: str) -> list[str]:
    """The facts (substrings) that text does not contain, in the order given."""
    return [fact for fact in facts if fact not in text]


def assert_mentions(text: str, *facts: str) -> None:
    """Fail, naming every missing fact, unless text contains each of facts."""
    assert facts, "name at least one fact to check"
    missing = missing_facts(text, *facts)
    assert not missing, f"missing {missing} in {text!r}"
