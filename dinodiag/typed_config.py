"""Plain data (YAML, JSON, command-line text) to frozen config dataclasses, with errors for people.

Both config families use it: :class:`~dinodiag.augment.config.PipelineConfig` (files: values
must already have their type) and :class:`~dinodiag.train.config.TrainConfig` (also
``--set optim.base_lr=1e-3`` text, so ``from_text=True`` parses ``"1e-3"``, ``"true"``,
``"none"`` and ``"0.1,0.5"``). The field types come from the real type hints
(:func:`typing.get_type_hints`), so a new field needs no change here.

    cfg = build_config(PipelineConfig, {"global_crops_size": 96, "global1": {"blur_p": 0.5}})
    build_config(PipelineConfig, {"global_crop_size": 96})
    # ConfigError: unknown key 'global_crop_size'. Did you mean 'global_crops_size'?

Range checks stay with each dataclass (its ``__post_init__``): this module only decides
whether a value has the field's type.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
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


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
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
    types_ = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in types_:
            raise ConfigError(f"unknown key {shown(path)}.{did_you_mean(str(key), list(types_))}")
        hint = types_[key]
        if dataclasses.is_dataclass(hint):
            given = _convert_fields(hint, value, path, path, from_text)  # type: ignore[arg-type]
            base = _default(cls, key)  # missing keys keep the parent's default of this field
            kwargs[key] = hint(**given) if base is None else dataclasses.replace(base, **given)
        else:
            kwargs[key] = convert_value(path, value, hint, from_text=from_text)
    return kwargs


def check_types(config: Any, where: str = "") -> None:
    """Raise :class:`ConfigError` naming the first field of the dataclass ``config`` whose value
    does not have the field's type (nested dataclasses too); for configs built in Python, which
    do not pass through :func:`build_config`. A ``PipelineConfig(global_crops_size="224")``
    is refused with ``global_crops_size = '224' has the wrong type: expected an integer.``
    """
    for name, hint in _field_types(type(config)).items():
        value = getattr(config, name)
        path = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, hint):  # type: ignore[arg-type]
                raise _wrong_type(path, value, f"a {hint.__name__}")
            check_types(value, path)
        else:
            convert_value(path, value, hint)


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
