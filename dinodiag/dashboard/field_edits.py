"""The sidebar's "Edit any field": every pipeline config field as a widget description, the
values the widgets hold read back (a mean / std triple is typed as ``0.485, 0.456, 0.406``)
and applied to the config, which validates them.

    fields = editable_fields(cfg)                           # one EditableField per field
    values = {"local_crops_number": 4, "mean": "0.5, 0.5, 0.5"}
    edited = apply_edits(cfg, changed_values(cfg, parse_field_values(cfg, values)))
"""

from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dinodiag.augment.config import (
    FIELD_MAXIMA,
    INTERPOLATIONS,
    MAX_SAMPLE_PIXELS,
    PipelineConfig,
    ViewAugment,
    config_from_dict,
    flatten,
    to_dict,
)
from dinodiag.errors import ConfigError


def apply_edits(cfg: PipelineConfig, edits: dict[str, Any]) -> PipelineConfig:
    """``cfg`` with flat-key edits (``{"global1.blur_p": 0.5, "global_crops_scale": (0.4, 1)}``).

    Values are validated by the config itself: the error names the field, the
    value and the allowed range.
    """
    if not edits:
        return cfg
    data = to_dict(cfg)
    for key, value in edits.items():
        value = list(value) if isinstance(value, tuple) else value
        if "." in key:
            section, name = key.split(".", 1)
            data[section][name] = value
        else:
            data[key] = value
    return config_from_dict(data)


SECTIONS = {
    "": "Crops",
    "global1": "Global view 1 (photometric)",
    "global2": "Global view 2 (photometric)",
    "local": "Local views (photometric)",
}


@dataclass(frozen=True)
class EditableField:
    """One config field as the sidebar shows it."""

    key: str  # flat key: "global_crops_scale", "global1.blur_p"
    section: str  # "" (crops and normalisation) or "global1" / "global2" / "local"
    label: str  # short label: the field name without its section
    kind: str  # "int" | "float" | "pair" | "triple" | "choice" | "text"
    value: Any  # the current value (tuples for pair / triple)
    help: str  # the comment next to the field in config.py: what it does, what to try
    options: tuple[str, ...] = ()  # for "choice"
    max_value: int | None = None  # the config's upper bound (what one sample may cost), if any


def _comments(cls: type) -> dict[str, str]:
    """Field -> the comment(s) on its lines in the class source (the tuning advice)."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    found: dict[str, str] = {}
    class_node = ast.parse(source).body[0]
    assert isinstance(class_node, ast.ClassDef)
    for node in class_node.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
            text = " ".join(comments[line] for line in lines if line in comments)
            if text:
                found[node.target.id] = text
    return found


def editable_fields(cfg: PipelineConfig) -> list[EditableField]:
    """Every field of ``cfg`` (crops, per-view photometric recipe, normalisation), in order."""
    top_help, view_help = _comments(PipelineConfig), _comments(ViewAugment)
    fields: list[EditableField] = []
    for key, value in flatten(cfg).items():
        section, _, name = key.rpartition(".")
        help_text = (view_help if section else top_help).get(name, "")
        if key == "interpolation":
            kind, options = "choice", INTERPOLATIONS
        elif isinstance(value, tuple):
            kind, options = ("pair" if len(value) == 2 else "triple"), ()
        elif isinstance(value, bool):
            kind, options = "text", ()
        elif isinstance(value, int):
            kind, options = "int", ()
        elif isinstance(value, float):
            kind, options = "float", ()
        else:
            kind, options = "text", ()
        maximum = FIELD_MAXIMA.get(key)
        if maximum is not None:
            help_text += (
                f" At most {maximum}; all views of one sample together at most "
                f"{MAX_SAMPLE_PIXELS:,} pixels (a float32 view takes 12 bytes per pixel)."
            )
        fields.append(
            EditableField(key, section, name, kind, value, help_text.strip(), options, maximum)
        )
    return fields


def changed_values(cfg: PipelineConfig, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` (flat key -> widget value) that differ from ``cfg``."""
    current = flatten(cfg)
    out: dict[str, Any] = {}
    for key, value in values.items():
        old = current.get(key)
        new = tuple(value) if isinstance(value, list) else value
        if isinstance(old, float) or (isinstance(old, tuple) and old and isinstance(old[0], float)):
            same = _close(old, new)
        else:
            same = old == new
        if not same:
            out[key] = new
    return out


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    try:
        return abs(float(a) - float(b)) <= 1e-9
    except (TypeError, ValueError):
        return a == b


def triple_text(value: tuple[float, ...]) -> str:
    """How a triple field (mean, std) is shown in its text box: ``0.485, 0.456, 0.406``."""
    return ", ".join(f"{v:g}" for v in value)


def parse_field_values(cfg: PipelineConfig, values: Mapping[str, Any]) -> dict[str, Any]:
    """The widgets' values with each triple's text read as numbers. Raises
    :class:`ConfigError` naming the field, the text and what to type."""
    kinds = {f.key: f.kind for f in editable_fields(cfg)}
    out = dict(values)
    for key, value in values.items():
        if kinds.get(key) != "triple" or not isinstance(value, str):
            continue
        parts = [p for p in value.replace(";", ",").split(",") if p.strip()]
        try:
            numbers = tuple(float(p) for p in parts)
        except ValueError:
            numbers = ()
        if len(numbers) != 3:
            raise ConfigError(
                f"{key} = {value!r} is invalid: allowed three numbers separated by commas, one "
                "per RGB channel (e.g. 0.485, 0.456, 0.406)."
            )
        out[key] = numbers
    return out
