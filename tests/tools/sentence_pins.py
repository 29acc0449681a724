"""Count the tests that pin a whole sentence (issue 22's habit).

A test pins a sentence when one of its assertions compares against a string
literal of 30+ characters: ``assert "..." in x``, ``assert x == "..."``
(any comparison inside an ``assert``), ``assert x.startswith("...")`` (or
``endswith``), ``pytest.raises(..., match="...")`` / ``pytest.warns(...,
match="...")``, or one fact given to ``tests/facts.py``'s ``assert_mentions``
(each fact there should be short: a name, a number, a key word). Such a test
breaks on every rewording; assert the facts (ids, numbers, named fields)
instead, unless the wording is the feature.

Run from the repository root (this file is not collected by pytest)::

    .venv/bin/python tests/tools/sentence_pins.py            # total and per file
    .venv/bin/python tests/tools/sentence_pins.py --list     # every pinning test
    .venv/bin/python tests/tools/sentence_pins.py --min 40 tests/checks
"""

from __future__ import annotations

import argparse
import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

DEFAULT_MIN_CHARS = 30  # the threshold: about five words
PREFIX_CHECKS = ("startswith", "endswith")


def _long_strings(node: ast.AST, min_chars: int) -> Iterator[str]:
    """Yield the string constants of at least min_chars under node."""
    for child in ast.walk(node):
        if (
            isinstance(child, ast.Constant)
            and isinstance(child.value, str)
            and len(child.value) >= min_chars
        ):
            yield child.value


def _is_call_to(call: ast.Call, names: tuple[str, ...]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr in names
    return isinstance(func, ast.Name) and func.id in names


def pinned_strings(test: ast.AST, min_chars: int = DEFAULT_MIN_CHARS) -> list[str]:
    """The long literals that a test's assertions compare against."""
    pins: list[str] = []
    for node in ast.walk(test):
        if isinstance(node, ast.Assert):
            for compare in ast.walk(node.test):
                if isinstance(compare, ast.Compare) or (
                    isinstance(compare, ast.Call) and _is_call_to(compare, PREFIX_CHECKS)
                ):
                    pins.extend(_long_strings(compare, min_chars))
        elif isinstance(node, ast.Call) and _is_call_to(node, ("raises", "warns")):
            for keyword in node.keywords:
                if keyword.arg == "match":
                    pins.extend(_long_strings(keyword.value, min_chars))
        elif isinstance(node, ast.Call) and _is_call_to(node, ("assert_mentions",)):
            pins.extend(_long_strings(node, min_chars))
    return pins


def pinning_tests(path: Path, min_chars: int = DEFAULT_MIN_CHARS) -> list[tuple[str, list[str]]]:
    """(test name, pinned literals) for each test function in path that pins one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            pins = pinned_strings(node, min_chars)
            if pins:
                found.append((node.name, pins))
    return found


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[Path("tests")])
    parser.add_argument("--min", type=int, default=DEFAULT_MIN_CHARS, help="literal length")
    parser.add_argument("--list", action="store_true", help="print each pinning test")
    args = parser.parse_args(argv)

    per_file: Counter[Path] = Counter()
    total_tests = 0
    for path in test_files(args.paths):
        total_tests += count_tests(path)
        for name, pins in pinning_tests(path, args.min):
            per_file[path] += 1
            if args.list:
                print(f"{path}::{name}")
                for pin in pins:
                    print(f"    {pin[:100]!r}")
    if not args.list:
        for path, n in per_file.most_common():
            print(f"{n:4d}  {path}")
    print(
        f"{sum(per_file.values())} of {total_tests} test functions pin a literal "
        f"of {args.min}+ characters"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
