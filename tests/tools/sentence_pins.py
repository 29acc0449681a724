"""Count the tests that pin a whole sentence (issue 22's habit).

A test pins a sentence when one of its assertions compares against a string
literal of 30+ characters: ``assert "..." in x``, ``assert x == "..."``
(any comparison inside an ``assert``), ``assert x.startswith("...")`` (or
``endswith``), ``pytest.raises(..., match="...")`` / ``pytest.warns(...,
match="...")``, or one fact given to ``tests/facts.py``'s ``assert_mentions``
(each fact there should be short: a name, a number, a key word). An f-string
counts by the total length of its fixed parts (``f"{n} images, too few for a
batch of {b}"`` pins 30 characters), and a literal given through
``@pytest.mark.parametrize`` pins its test when the parameter it fills is
what such an assertion expects (``match=message``, ``assert message in x``,
``assert x == message``, ``assert_mentions(x, message)``, each literal of a
list given as ``assert_mentions(x, *facts)``; not the text searched, as in
``assert "word" in message``). Such a test breaks on every rewording;
assert the facts (ids, numbers, named fields) instead, unless the wording is
the feature: then say so with a trailing comment ``# wording is the feature``
on a line of the literal or of the assertion (the ``assert``, or the
``raises`` / ``warns`` / ``assert_mentions`` call), and the pin is counted
apart from the others.

Run from the repository root (this file is not collected by pytest)::

    .venv/bin/python tests/tools/sentence_pins.py            # total and per file
    .venv/bin/python tests/tools/sentence_pins.py --list     # every pinning test
    .venv/bin/python tests/tools/sentence_pins.py --min 40 tests/checks
    .venv/bin/python tests/tools/sentence_pins.py --old-rule # literals in the body only
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
PLACEHOLDER = "{…}"  # how a listed f-string shows its replacement fields


class Pin(NamedTuple):
    text: str  # the pinned literal (an f-string's fields shown as PLACEHOLDER)
    marked: bool  # a "# wording is the feature" comment sits on its line or its assertion's


class Checked(NamedTuple):
    """The part of an assertion whose literals are pins, and the assertion."""

    node: ast.AST  # a comparison, a startswith / endswith call, a match= value, a call's facts
    assertion: ast.AST  # the assert statement or the raises / warns / assert_mentions call


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


def literal_text(node: ast.AST, fstrings: bool = True) -> str | None:
    """The fixed text of a string literal, or None for anything else.

    An f-string gives its literal parts with PLACEHOLDER for each field (its
    length counts the fixed parts only); with fstrings=False it gives None.
    """
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if fstrings and isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else PLACEHOLDER for part in node.values
        )
    return None


def literal_length(text: str) -> int:
    return len(text.replace(PLACEHOLDER, ""))


def _literals(node: ast.AST, fstrings: bool) -> Iterator[tuple[ast.AST, str]]:
    """Each string literal under node with its text; an f-string is one literal
    (its fixed parts are not counted again on their own)."""
    inside: set[int] = set()
    for child in ast.walk(node):
        if id(child) in inside:
            continue
        if fstrings and isinstance(child, ast.JoinedStr):
            inside.update(id(part) for part in ast.walk(child))
        text = literal_text(child, fstrings)
        if text is not None:
            yield child, text


def _long_strings(
    node: ast.AST, min_chars: int, marks: frozenset[int], assertion: ast.AST, fstrings: bool
) -> Iterator[Pin]:
    """Yield the string literals of at least min_chars under node, the part of
    an assertion that compares; each is marked when it or the assertion spans a
    marked line."""
    assertion_marked = bool(_lines(assertion) & marks)
    for child, text in _literals(node, fstrings):
        if literal_length(text) >= min_chars:
            yield Pin(text, assertion_marked or bool(_lines(child) & marks))


def _is_call_to(call: ast.Call, names: tuple[str, ...]) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr in names
    return isinstance(func, ast.Name) and func.id in names


def checked_parts(test: ast.AST) -> Iterator[Checked]:
    """The parts of a test's assertions that a literal would be pinned in."""
    for node in ast.walk(test):
        if isinstance(node, ast.Assert):
            for compare in ast.walk(node.test):
                if isinstance(compare, ast.Compare) or (
                    isinstance(compare, ast.Call) and _is_call_to(compare, PREFIX_CHECKS)
                ):
                    yield Checked(compare, node)
        elif isinstance(node, ast.Call) and _is_call_to(node, ("raises", "warns")):
            for keyword in node.keywords:
                if keyword.arg == "match":
                    yield Checked(keyword.value, node)
        elif isinstance(node, ast.Call) and _is_call_to(node, ("assert_mentions",)):
            yield Checked(node, node)


def _expected(checked: ast.AST) -> list[ast.AST]:
    """What a checked part expects the text to hold: both sides of ``==`` (and
    the other comparisons), the left of ``in``, a prefix check's argument, a
    match= value, the facts of assert_mentions; not the text searched."""
    if isinstance(checked, ast.Compare):
        sides = [checked.left, *checked.comparators]
        expected: list[ast.AST] = []
        for left, op, right in zip(sides, checked.ops, sides[1:], strict=False):
            expected += [left] if isinstance(op, ast.In | ast.NotIn) else [left, right]
        return expected
    if isinstance(checked, ast.Call) and _is_call_to(checked, ("assert_mentions",)):
        return list(checked.args[1:])
    if isinstance(checked, ast.Call) and _is_call_to(checked, PREFIX_CHECKS):
        return list(checked.args)
    return [checked]


def _names_of(operand: ast.AST) -> set[str]:
    """The names an operand gives as text: ``message``, ``f"{message}"``,
    ``re.escape(message)``, ``str(message)``, ``message.replace(...)``; not
    ``build(message)``, which gives another text made from it."""
    if isinstance(operand, ast.Name):
        return {operand.id}
    if isinstance(operand, ast.Starred):  # assert_mentions(text, *facts)
        return _names_of(operand.value)
    if isinstance(operand, ast.JoinedStr):
        return {
            name
            for part in operand.values
            if isinstance(part, ast.FormattedValue)
            for name in _names_of(part.value)
        }
    if isinstance(operand, ast.Call) and _is_call_to(operand, ("escape", "str")):
        return {name for arg in operand.args for name in _names_of(arg)}
    if isinstance(operand, ast.Call) and isinstance(operand.func, ast.Attribute):
        return _names_of(operand.func.value)  # a method of the text: .replace, .lower
    return set()


def _is_parametrize(decorator: ast.AST) -> bool:
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "parametrize"
    )


def _argnames(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [name.strip() for name in node.value.split(",") if name.strip()]
    if isinstance(node, ast.Tuple | ast.List):
        return [elt.value for elt in node.elts if isinstance(elt, ast.Constant)]
    return []


def _values_per_name(
    argvalues: ast.AST, names: list[str], constants: dict[str, ast.AST]
) -> Iterator[tuple[str, ast.AST]]:
    """(parameter, the expression that fills it) for each case of argvalues; a
    module-level name (``CASES = [...]``) is looked up in constants."""
    if isinstance(argvalues, ast.Name) and argvalues.id in constants:
        argvalues = constants[argvalues.id]
    if not isinstance(argvalues, ast.List | ast.Tuple):
        return
    for case in argvalues.elts:
        if isinstance(case, ast.Call) and _is_call_to(case, ("param",)):  # pytest.param(...)
            values = list(case.args)
        elif len(names) == 1:
            values = [case]
        elif isinstance(case, ast.Tuple | ast.List):
            values = list(case.elts)
        else:
            continue
        yield from zip(names, values, strict=False)


def parametrized_pins(
    test: ast.FunctionDef | ast.AsyncFunctionDef,
    min_chars: int = DEFAULT_MIN_CHARS,
    marks: frozenset[int] = frozenset(),
    constants: dict[str, ast.AST] | None = None,
) -> list[Pin]:
    """The long literals that fill a parameter the test's assertions compare with.

    A literal is marked when its line, or the line of an assertion that uses
    its parameter, carries the feature comment.
    """
    uses: dict[str, list[ast.AST]] = {}  # parameter -> the assertions comparing with it
    for checked in checked_parts(test):
        for operand in _expected(checked.node):
            for name in _names_of(operand):
                uses.setdefault(name, []).append(checked.assertion)
    pins: list[Pin] = []
    for decorator in test.decorator_list:
        if not (_is_parametrize(decorator) and len(decorator.args) >= 2):
            continue
        names = _argnames(decorator.args[0])
        for name, value in _values_per_name(decorator.args[1], names, constants or {}):
            if name not in uses:
                continue
            # a list or tuple of facts, given as *facts, is each of its literals
            literals = value.elts if isinstance(value, ast.List | ast.Tuple) else [value]
            for literal in literals:
                text = literal_text(literal)
                if text is None or literal_length(text) < min_chars:
                    continue
                marked = bool(_lines(literal) & marks) or any(
                    _lines(assertion) & marks for assertion in uses[name]
                )
                pins.append(Pin(text, marked))
    return pins


def pinned_strings(
    test: ast.AST,
    min_chars: int = DEFAULT_MIN_CHARS,
    marks: frozenset[int] = frozenset(),
    fstrings: bool = True,
) -> list[Pin]:
    """The long literals that a test's assertions compare against.

    marks: the line numbers carrying the feature comment (``marked_lines``); a
    literal is marked when it, or the assertion holding it, spans one of them.
    fstrings: count an f-string by its fixed parts together (False: each part
    on its own, the old rule).
    """
    return [
        pin
        for checked in checked_parts(test)
        for pin in _long_strings(checked.node, min_chars, marks, checked.assertion, fstrings)
    ]


def module_constants(tree: ast.Module) -> dict[str, ast.AST]:
    """The module-level ``NAME = value`` assignments, for parametrize(..., NAME)."""
    constants: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            constants[node.target.id] = node.value
    return constants


def pinning_tests(
    path: Path, min_chars: int = DEFAULT_MIN_CHARS, old_rule: bool = False
) -> list[tuple[str, list[Pin]]]:
    """(test name, pinned literals) for each test function in path that pins one.

    old_rule: literals in the test's body only, an f-string's parts each on
    their own (the rule before parametrize and f-strings were counted).
    """
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    marks = frozenset(marked_lines(source))
    constants = module_constants(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            pins = pinned_strings(node, min_chars, marks, fstrings=not old_rule)
            if not old_rule:
                pins += parametrized_pins(node, min_chars, marks, constants)
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
    parser.add_argument(
        "--old-rule",
        action="store_true",
        help="count literals in the test's body only, each f-string part on its own",
    )
    args = parser.parse_args(argv)

    per_file: Counter[Path] = Counter()
    marked_per_file: Counter[Path] = Counter()
    total_tests = 0
    for path in test_files(args.paths):
        total_tests += count_tests(path)
        for name, pins in pinning_tests(path, args.min, args.old_rule):
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
