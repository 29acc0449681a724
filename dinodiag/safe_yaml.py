"""YAML / JSON config text to plain data, with bounds a config never needs to exceed.

``yaml.safe_load`` builds no object but plain data, yet one request can still take the
process down: 300 bytes of aliases ("billion laughs") describe billions of values, which
the first walk over the data (a validation, an error message quoting the value) expands;
text nested 20,000 levels deep makes PyYAML's recursive composer raise ``RecursionError``.
:func:`load_config_text` refuses those before PyYAML builds anything, and also refuses
duplicate keys (JSON and YAML both allow a parser to keep the last one silently, so a
config saying ``local_crops_number`` twice would run with whichever came last).

    load_config_text("local_crops_number: 8\\n", source="my.yaml")   # {"local_crops_number": 8}
    load_config_text("a: 1\\na: 2\\n", source="my.yaml")
    # ConfigError: my.yaml: key 'a' appears twice (line 1, column 1 and line 2, column 1) ...

The limits (module constants) are far above any real config: DINOv2's largest training
config has about 200 values and is nested 4 levels deep.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from dinodiag.errors import ConfigError, shown

MAX_CONFIG_CHARS = 1_000_000  # a config is kilobytes; 1 MB of text is something else
MAX_CONFIG_DEPTH = 50  # nesting levels; PyYAML's composer recurses once per level
MAX_CONFIG_VALUES = 10_000  # values after alias expansion (each *alias counts its anchor's size)


def load_config_text(text: str, source: str = "<text>") -> Any:
    """Parse YAML or JSON text (JSON is YAML) into plain data, within the module's limits.

    Raises :class:`ConfigError` naming ``source`` (and the line where it helps) for text
    that is too long, nested too deep, expands past :data:`MAX_CONFIG_VALUES` through its
    aliases, has a recursive alias or a duplicate key, or is not valid YAML / JSON.
    """
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError(
            f"{source}: {len(text):,} characters is more than the {MAX_CONFIG_CHARS:,} a config "
            "may have; a pipeline or training config is a few kilobytes: is this the right file?"
        )
    try:
        _check_shape(text, source)
        loader = _UniqueKeyLoader(text, source)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: not valid YAML/JSON{where}: {shown(problem)}.") from None


def read_config_file(path: Path) -> str:
    """The text of the config file ``path``, at most one character past
    :data:`MAX_CONFIG_CHARS` (enough for :func:`load_config_text` to refuse a longer one).

    Raises :class:`ConfigError` saying what ``path`` is when it is no regular file (missing, a
    folder, a FIFO, a device such as ``/dev/zero``, a socket) or cannot be read. Such a file
    is never read, a FIFO or device never opened: nothing blocks.
    """
    name = shown(str(path))
    try:
        _refuse_special(name, os.stat(path).st_mode)
        # O_NONBLOCK: should a FIFO replace the file meanwhile, opening it must not wait for
        # a writer (fstat below refuses it then)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
            _refuse_special(name, os.fstat(fd).st_mode)
            return handle.read(MAX_CONFIG_CHARS + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {name} does not exist; give a preset name or a path."
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {name} cannot be read: {exc.strerror or exc}.") from None


def _refuse_special(name: str, mode: int) -> None:
    """:class:`ConfigError` for a file of ``mode`` that is not a regular file, saying what."""
    if stat.S_ISREG(mode):
        return
    what = "" if stat.S_ISDIR(mode) else ", not a regular file"
    where = " in it" if stat.S_ISDIR(mode) else ""
    raise ConfigError(
        f"config file {name} is {_file_kind(mode)}{what}: give a YAML / JSON file{where} (or a "
        "preset name)."
    )


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((words for test, words in kinds if test(mode)), "a special file")


def _check_shape(text: str, source: str) -> None:
    """Depth, expanded size and recursive aliases, from the parser's events (no recursion).

    Each open collection keeps a running count of the values below it; when it closes, the
    count is added to its parent and, if it has an ``&anchor``, remembered under that name,
    so that a ``*alias`` adds the anchor's whole size, as the data it stands for would.
    """
    open_counts: list[int] = [0]  # one running count per open collection (plus the document)
    open_anchors: list[str | None] = []  # the anchor of each open collection
    sizes: dict[str, int] = {}  # anchor name -> values it expands to
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(open_anchors) >= MAX_CONFIG_DEPTH:
                raise ConfigError(
                    f"{source}: nested more than {MAX_CONFIG_DEPTH} levels deep "
                    f"(line {event.start_mark.line + 1}); a config needs a few levels: "
                    "check the brackets or indentation"
                )
            open_counts.append(1)
            open_anchors.append(event.anchor)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            size, anchor = open_counts.pop(), open_anchors.pop()
            if anchor is not None:
                sizes[anchor] = size
            _add(open_counts, size, source)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                sizes[event.anchor] = 1
            _add(open_counts, 1, source)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise ConfigError(
                    f"{source}: the alias *{event.anchor} at line {event.start_mark.line + 1} "
                    f"refers to its own anchor &{event.anchor}, a value containing itself; "
                    "write the value out"
                )
            # An undefined alias counts 1 here; PyYAML then names it ("found undefined alias").
            _add(open_counts, sizes.get(event.anchor, 1), source)


def _add(open_counts: list[int], size: int, source: str) -> None:
    open_counts[-1] += size
    total = sum(open_counts)
    if total > MAX_CONFIG_VALUES:
        raise ConfigError(
            f"{source}: expands to more than {MAX_CONFIG_VALUES:,} values (each *alias repeats "
            "its &anchor's values); a config has a few hundred at most: write the values out "
            "instead of nesting aliases"
        )


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (merge keys aside)."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source  # named in the duplicate-key message

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, str] = {}  # key -> where it was first given
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' then a key of its own overrides the merged one, on purpose
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeConstructor names it below
            mark = key_node.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            if first is not None:
                raise ConfigError(
                    f"{self.source}: key {shown(key)} appears twice ({first} and {where}); "
                    "a parser would silently keep the last one: delete one of them"
                )
            seen[key] = where
        return super().construct_mapping(node, deep=deep)
