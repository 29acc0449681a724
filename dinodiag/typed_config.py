"""Plain data (YAML, JSON, command-line text) to frozen config dataclasses, with errors for people.

Both config families use it: :class:`~dinodiag.augment.config.PipelineConfig` (files: values
must already have their type) and :class:`~dinodiag.recipe.config.TrainConfig` (also
``--set optim.base_lr=1e-3`` text, so ``from_text=True`` parses ``"1e-3"``, ``"true"``,
``"none"`` and ``"0.1,0.5"``). The field types come from the real type hints
(:func:`typing.get_type_hints`), so a new field needs no change here.

    cfg = build_config(PipelineConfig, {"global_crops_size": 96, "global1": {"blur_p": 0.5}})
    build_config(PipelineConfig, {"global_crop_size": 96})
    # ConfigError: unknown key 'global_crop_size'. Did you mean 'global_crops_size'?

A field may carry its allowed range in its type hint, ``Annotated[float, Bounds(low=0)]``:
:func:`field_bounds` lists them for the dataclass that enforces them in its ``__post_init__``
(``dinodiag.recipe.config``), and a command line or a form reads the same :class:`Bounds`
(and the field's comment, :func:`field_help`) so a knob has one name, one help, one range.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import io
import math
import numbers
import re
import tokenize
import types
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from dinodiag.errors import ConfigError, shown

T = TypeVar("T")

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")
_NULL = ("none", "null")


def did_you_mean(key: str, known: Sequence[str]) -> str:
    """A sentence to append to an "unknown ..." message: the closest known name, else the list.

    ``did_you_mean("blur_prob", ["blur_p", "flip_p"])`` -> ``" Did you mean 'blur_p'?"``.
    """
    # A key of 100+ characters is no typo of a known name (and difflib is quadratic in length).
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6) if len(key) < 100 else []
    return f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(known)}."


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The values a field allows: a range (``low`` / ``high``, each closed unless ``*_open``),
    or ``choices``; ``none`` allows None as well. Put it in the type hint:
    ``base_lr: Annotated[float, Bounds(low=0, low_open=True)] = 0.004``."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    none: bool = False  # None is allowed too ("null" / "none" in text)
    note: str = ""  # appended to the description, e.g. "(DINOv2: 0.1)"

    def allows(self, value: Any) -> bool:
        if value is None:
            return self.none
        if self.choices:
            return value in self.choices
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, integer: bool = False) -> str:
        """``an integer >= 1 or null``, ``a number in [0, 1)``, ``one of auto | bf16 | fp32``."""
        if self.choices:
            text = "one of " + " | ".join(self.choices)
        else:
            kind = "an integer" if integer else "a number"
            if self.low is not None and self.high is not None:
                left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
                text = f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
            elif self.low is not None:
                text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
            elif self.high is not None:
                text = f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
            else:
                text = kind
        text += " or null" if self.none else ""
        return f"{text} {self.note}" if self.note else text


@functools.cache
def field_bounds(cls: type) -> dict[str, Bounds]:
    """``{field name: Bounds}`` of the fields of a dataclass whose type hint carries one."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        for extra in getattr(hints[f.name], "__metadata__", ()):
            if isinstance(extra, Bounds):
                out[f.name] = extra
    return out


_COMMENT_FIELD = re.compile(r"^\s+(\w+)\s*:")


@functools.cache
def field_help(cls: type) -> dict[str, str]:
    """``{field name: its comment}`` from the source of a dataclass: the comment on the field's
    line and its continuation (comment-only lines right below it); for a field without one, the
    comment block just above it. The one help text of a knob: the command line and the form
    read it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    lines: dict[int, str] = {}  # line number -> comment text
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            lines[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_lines.add(tok.start[0])
    names = {f.name for f in dataclasses.fields(cls)}
    fields: dict[int, str] = {}  # line number -> field name
    for number, text in enumerate(source.splitlines(), start=1):
        match = _COMMENT_FIELD.match(text)
        if match and match.group(1) in names and match.group(1) not in fields.values():
            fields[number] = match.group(1)
    parts: dict[str, list[str]] = {name: [] for name in fields.values()}
    used: set[int] = set()
    for number, name in fields.items():  # a field without an inline comment: the block above
        n = number - 1
        while number not in lines and n in lines and n not in code_lines:
            parts[name].insert(0, lines[n])
            used.add(n)
            n -= 1
    for number, name in fields.items():  # an inline comment continued on comment-only lines
        if number in lines:
            parts[name].append(lines[number])
            n = number + 1
            while n in lines and n not in code_lines and n not in used:
                parts[name].append(lines[n])
                n += 1
    return {name: " ".join(text) for name, text in parts.items() if text}


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """``{field name: resolved type hint}`` of a dataclass (string annotations evaluated)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def build_config(
    cls: type[T], data: Any, *, where: str = "", what: str = "config", from_text: bool = False
) -> T:
    """A validated ``cls`` from a mapping; missing keys keep the field defaults.

    Args:
        cls: a dataclass whose fields are bool, int, float, str, ``X | None``, fixed-length
            tuples of those, or nested dataclasses (given as nested mappings).
        data: the mapping (a YAML / JSON object).
        where: the dotted path of ``data`` in a larger config, for messages ("" at the top).
        what: how the top-level mapping is named in messages ("config", "training config").
        from_text: also accept values as text (command-line overrides): numbers, booleans,
            ``none`` / ``null`` and comma-separated tuples.

    Raises :class:`ConfigError` naming the key, the value and the expected type (an unknown key
    gets a "did you mean"); value ranges are checked by ``cls`` itself.
    """
    return cls(**_convert_fields(cls, data, where or what, where, from_text))


def _convert_fields(cls: type, data: Any, name: str, where: str, from_text: bool) -> dict[str, Any]:
    """The keyword arguments of ``cls`` that ``data`` gives, each converted to its field type."""
    if not isinstance(data, dict):
        raise ConfigError(f"{name} must be a mapping of keys to values, got {shown(data)}.")
    types_ = field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in types_:
            raise ConfigError(f"unknown key {shown(path)}.{did_you_mean(str(key), list(types_))}")
        hint = types_[key]
        if dataclasses.is_dataclass(hint):
            given = _convert_fields(hint, value, path, path, from_text)  # type: ignore[arg-type]
            kwargs[key] = _nested(cls, key, hint, given)
        else:
            kwargs[key] = convert_value(path, value, hint, from_text=from_text)
    return kwargs


def check_types(config: Any, where: str = "") -> None:
    """Raise :class:`ConfigError` naming the first field of the dataclass ``config`` whose value
    does not have the field's type (nested dataclasses too); for configs built in Python, which
    do not pass through :func:`build_config`. A ``PipelineConfig(global_crops_size="224")``
    is refused with ``global_crops_size = '224' has the wrong type: expected an integer.``
    """
    for name, hint in field_types(type(config)).items():
        value = getattr(config, name)
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):  # type: ignore[arg-type]
                raise _wrong_type(path, value, f"a {hint.__name__}")
            check_types(value, path)
        else:
            convert_value(path, value, hint)


def _nested(cls: type, name: str, hint: Any, given: dict[str, Any]) -> Any:
    """Field ``name`` of ``cls`` (a dataclass ``hint``) with the ``given`` keys; missing keys
    keep the parent's default of this field (built once: a default that is the class itself
    is not built only to be replaced)."""
    factory = cls.__dataclass_fields__[name].default_factory  # type: ignore[attr-defined]
    if factory is hint:
        return hint(**given)
    base = _default(cls, name)
    return hint(**given) if base is None else dataclasses.replace(base, **given)


def _default(cls: type, name: str) -> Any:
    """The default value of field ``name`` of ``cls`` (None when it has none)."""
    field = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def convert_value(where: str, value: Any, hint: Any, *, from_text: bool = False) -> Any:
    """``value`` as the type ``hint`` (bool, int, float, str, ``X | None``, ``tuple[X, ...]``).

    ``where`` names the field in the message of the :class:`ConfigError` raised when the value
    does not fit; ``from_text`` also parses text (see :func:`build_config`).
    """
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None or (from_text and isinstance(value, str) and _word(value) in _NULL):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"{where}: only 'X | None' unions are supported, not {hint!r}.")
        try:
            return convert_value(where, value, inner[0], from_text=from_text)
        except ConfigError as exc:
            if not str(exc).startswith(f"{where} = "):  # about an item, not the whole field
                raise
            raise ConfigError(f"{str(exc).removesuffix('.')} or null.") from None
    if typing.get_origin(hint) is tuple:
        return _convert_tuple(where, value, args, from_text)
    if hint is bool:
        if from_text and isinstance(value, str) and _word(value) in _TRUE + _FALSE:
            return _word(value) in _TRUE
        if not isinstance(value, bool):
            raise _wrong_type(where, value, "true or false")
        return value
    if hint in (int, float):
        return _convert_number(where, value, hint, from_text)
    if hint is str:
        if not isinstance(value, str):
            raise _wrong_type(where, value, "a string")
        return value
    raise TypeError(f"{where}: field type {hint!r} is not supported by build_config.")


def _word(text: str) -> str:
    return text.strip().lower()


def _wrong_type(where: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{where} = {shown(value)} has the wrong type: expected {expected}.")


def _convert_number(where: str, value: Any, hint: type, from_text: bool) -> int | float:
    expected = "an integer" if hint is int else "a number"
    number = value
    if from_text and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _wrong_type(where, value, expected) from None
    # numbers.Real: NumPy scalars too (a config built from an array or a data frame cell)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        raise _wrong_type(where, value, expected)
    if not math.isfinite(number):
        raise _wrong_type(where, value, f"a finite {'integer' if hint is int else 'number'}")
    if hint is int:
        if number != int(number):
            raise _wrong_type(where, value, expected)
        return int(number)
    return float(number)


def _convert_tuple(where: str, value: Any, args: tuple[Any, ...], from_text: bool) -> tuple:
    items = value
    if from_text and isinstance(value, str):  # "0.1,0.5" or "(0.1, 0.5)"
        items = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
    if not isinstance(items, (list, tuple)) or len(items) != len(args):
        numbers = all(a in (int, float) for a in args)
        expected = f"a list of {len(args)} {'numbers' if numbers else 'values'}"
        if from_text:
            expected += f" (as text: {len(args)} values separated by commas)"
        raise _wrong_type(where, value, expected)
    return tuple(
        convert_value(f"{where}[{i}]", item, arg, from_text=from_text)
        for i, (item, arg) in enumerate(zip(items, args, strict=True))
    )
