"""Count the tests that pin a whole sentence (issue 22's habit).

A test pins a sentence when one of its assertions compares against a string
literal of 30+ characters: ``assert "..." in x``, ``assert x == "..."``
(any comparison inside an ``assert``), ``assert x.startswith("...")`` (or
``endswith``), ``pytest.raises(..., match="...")`` / ``pytest.warns(...,
match="...")``, or one fact given to ``tests/facts.py``'s ``assert_mentions``
(each fact there should be short: a name, a number, a key word). Such a test
breaks on every rewording; assert the facts (ids, numbers, named fields)
instead, unless the wording is the feature: then say so with a trailing
comment ``# wording is the feature`` on a line of the literal or of the
assertion (the ``assert``, or the ``raises`` / ``warns`` / ``assert_mentions``
call), and the pin is counted apart from the others.

Run from the repository root (this file is not collected by pytest)::

    .venv/bin/python tests/tools/sentence_pins.py            # total and per file
    .venv/bin/python tests/tools/sentence_pins.py --list     # every pinning test
    .venv/bin/python tests/tools/sentence_pins.py --min 40 tests/checks
"""

from __future__ import annotations

import argparse
import ast
import io
import tokenize
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

DEFAULT_MIN_CHARS = 30  # the threshold: about five words
PREFIX_CHECKS = ("startswith", "endswith")
FEATURE_MARK = "wording is the feature"  # the trailing comment that keeps a pin on purpose


class Pin(NamedTuple):
    text: str  # the pinned literal
    marked: bool  # a "# wording is the feature" comment sits on its line or its assertion's


def marked_lines(source: str) -> set[int]:
    """The line numbers that carry a ``# wording is the feature`` comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {
        token.start[0]
        for token in tokens
        if token.type == tokenize.COMMENT and FEATURE_MARK in token.string.lower()
    }


def _lines(node: ast.AST) -> set[int]:
    return set(range(node.lineno, (node.end_lineno or node.lineno) + 1))


def _long_strings(
    node: ast.AST, min_chars: int, marks: frozenset[int], assertion: ast.AST
) -> Iterator[Pin]:
    """Yield the string constants of at least min_chars under node, the part of
    an assertion that compares; each is marked when it or the assertion spans a
    marked line."""
    assertion_marked = bool(_lines(assertion) & marks)
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Constant)
            and isinstance(child.value, str)
            and len(child.value) >= min_chars
        ):
            yield Pin(child.value, assertion_marked or bool(_lines(child) & marks))


def _is_call_to(call: ast.Call, names: tuple[str, ...]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr in names
    return isinstance(func, ast.Name) and func.id in names


def pinned_strings(
    test: ast.AST, min_chars: int = DEFAULT_MIN_CHARS, marks: frozenset[int] = frozenset()
) -> list[Pin]:
    """The long literals that a test's assertions compare against.

    marks: the line numbers carrying the feature comment (``marked_lines``); a
    literal is marked when it, or the assertion holding it, spans one of them.
    """
    pins: list[Pin] = []
    for node in ast.walk(test):
        if isinstance(node, ast.Assert):
            for compare in ast.walk(node.test):
                if isinstance(compare, ast.Compare) or (
                    isinstance(compare, ast.Call) and _is_call_to(compare, PREFIX_CHECKS)
                ):
                    pins.extend(_long_strings(compare, min_chars, marks, node))
        elif isinstance(node, ast.Call) and _is_call_to(node, ("raises", "warns")):
            for keyword in node.keywords:
                if keyword.arg == "match":
                    pins.extend(_long_strings(keyword.value, min_chars, marks, node))
        elif isinstance(node, ast.Call) and _is_call_to(node, ("assert_mentions",)):
            pins.extend(_long_strings(node, min_chars, marks, node))
    return pins


def pinning_tests(path: Path, min_chars: int = DEFAULT_MIN_CHARS) -> list[tuple[str, list[Pin]]]:
    """(test name, pinned literals) for each test function in path that pins one."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    marks = frozenset(marked_lines(source))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            pins = pinned_strings(node, min_chars, marks)
            if pins:
                found.append((node.name, pins))
    return found


def is_marked(pins: list[Pin]) -> bool:
    """A test's pins are all on purpose: each one carries the feature comment."""
    return all(pin.marked for pin in pins)


def test_files(roots: list[Path]) -> list[Path]:
    files: list[Path] = []
    for root in roots:
        if root.is_file():
            files.append(root)
        else:
            files.extend(sorted(root.rglob("test_*.py")))
    return files


def count_tests(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return sum(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
        for node in ast.walk(tree)
    )


def summary(pinning: int, marked: int, total: int, min_chars: int) -> str:
    """The last line: how many tests pin, and how many of those on purpose."""
    return (
        f"{pinning} of {total} test functions pin a literal of {min_chars}+ characters, "
        f"of which {marked} marked as wording-is-the-feature ({pinning - marked} unmarked)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("tests")])
    parser.add_argument("--min", type=int, default=DEFAULT_MIN_CHARS, help="literal length")
    parser.add_argument("--list", action="store_true", help="print each pinning test")
    args = parser.parse_args(argv)

    per_file: Counter[Path] = Counter()
    marked_per_file: Counter[Path] = Counter()
    total_tests = 0
    for path in test_files(args.paths):
        total_tests += count_tests(path)
        for name, pins in pinning_tests(path, args.min):
            per_file[path] += 1
            marked_per_file[path] += is_marked(pins)
            if args.list:
                print(f"{path}::{name}")
                for pin in pins:
                    label = "[wording is the feature] " if pin.marked else ""
                    print(f"    {label}{pin.text[:100]!r}")
    if not args.list:
        for path, n in per_file.most_common():
            marked = f"  ({marked_per_file[path]} marked)" if marked_per_file[path] else ""
            print(f"{n:4d}  {path}{marked}")
    print(summary(sum(per_file.values()), sum(marked_per_file.values()), total_tests, args.min))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
