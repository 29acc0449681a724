"""What each view was sampled with, as text: its name, its caption, the parameters table,
and the operations that made it, in order (your own pipeline's recorded ones, a built
pipeline's recipe).

view_name(record)                      # "G1", "L3"
view_caption(record)                   # "G1 · scale 0.53 · ratio 1.12 · flip · blur σ1.2"
records_frame([("dinov2", sample.records), ("seed-broken", other.records)])
operations_frame([("mine.py:build", sample.records)])   # one row per operation of each view
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from dinodiag.augment.records import OpRecord, ViewRecord, recipe_operations


def view_name(record: ViewRecord) -> str:
    """``G1``, ``G2`` for global views and ``L1`` ... for local views (1-based)."""
    return f"{'G' if record.group == 'global' else 'L'}{record.index + 1}"


def view_caption(record: ViewRecord | None, multiline: bool = False) -> str:
    """The sampled parameters of one view, e.g. ``G1 · scale 0.53 · ratio 1.12 · flip · blur σ1.2``.

    Only what is known is shown (a step dinodiag could not read leaves its parameters out).
    """
    if record is None:
        return "no record"
    head = [view_name(record)]
    if record.scale is not None:
        head.append(f"scale {record.scale:.2f}")
    if record.ratio is not None:
        head.append(f"ratio {record.ratio:.2f}")
    ops: list[str] = []
    if record.fallback:
        ops.append("FALLBACK")
    if record.flip:
        ops.append("flip")
    if record.jitter:
        ops.append("jitter")
    if record.grayscale:
        ops.append("gray")
    if record.blur and record.blur_sigma is not None:
        ops.append(f"blur σ{record.blur_sigma:.1f}")
    if record.solarize:
        ops.append("solarize")
    if record.unknown_steps:
        ops.append(f"{record.unknown_steps} untold step(s)")
    if not ops and record.jitter is not None:
        ops.append("no photometric op")
    sep = "\n" if multiline else " · "
    line2 = " · ".join(ops)
    return " · ".join(head) + (sep + line2 if line2 else "")


def records_frame(samples: Sequence[tuple[str, Sequence[ViewRecord]]]) -> pd.DataFrame:
    """:func:`records_table` of each ``(pipeline title, records)`` in one frame; with more
    than one pipeline, a first column ``pipeline`` says which row is whose."""
    tables = []
    for title, records in samples:
        frame = pd.DataFrame(records_table(records))
        if len(samples) > 1:
            frame.insert(0, "pipeline", title)
        tables.append(frame)
    return pd.concat(tables, ignore_index=True)


def flag_text(value: bool | None) -> str:
    """A table cell for an operation that may have applied: ✓ (it did), blank (it did not),
    – (not recorded: a step dinodiag could not read)."""
    return "–" if value is None else ("✓" if value else "")


def jitter_text(record: ViewRecord) -> str:
    """The drawn colour-jitter factors in one cell: ``b 1.12 · c 0.87 · s 1.05 · h +0.03``."""
    if not record.jitter:
        return flag_text(record.jitter)
    parts = [
        f"{short} {value:.2f}"
        for short, value in (
            ("b", record.brightness),
            ("c", record.contrast),
            ("s", record.saturation),
        )
        if value is not None
    ]
    if record.hue is not None:
        parts.append(f"h {record.hue:+.2f}")
    return " · ".join(parts) or "✓"


def records_table(records: Sequence[ViewRecord]) -> list[dict[str, object]]:
    """One row per view with its sampled parameters (for a table / CSV): numbers as numbers
    (NaN when not recorded), operations as :func:`flag_text`, the jitter factors in one cell
    so that the table fits a page without scrolling sideways."""
    rows = []
    for rec in records:
        box = rec.box or (math.nan,) * 4
        rows.append(
            {
                "view": view_name(rec),
                "scale": math.nan if rec.scale is None else rec.scale,
                "ratio": math.nan if rec.ratio is None else rec.ratio,
                "box (l, t, w, h)": ", ".join(f"{v:.0f}" for v in box),
                "out size": "x".join(str(v) for v in rec.out_size) if rec.out_size else "–",
                "flip": flag_text(rec.flip),
                "jitter": jitter_text(rec),
                "grayscale": flag_text(rec.grayscale),
                "blur σ": f"{rec.blur_sigma:.2f}"
                if rec.blur and rec.blur_sigma
                else flag_text(rec.blur),
                "solarize": flag_text(rec.solarize),
                "fallback": flag_text(rec.fallback),
            }
        )
    return rows


# How a parameter of an operation is written in the operations table (others: key value).
_SKIPPED_PARAMS = ("source_size", "configured_ratio", "wraps_kinds")


def _value_text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return str(value)


def parameters_text(op: OpRecord) -> str:
    """An operation's parameters on one line: ``sigma 1.23 · sigma_range (0.1, 2)``."""
    parts = [
        f"{key} {_value_text(value)}"
        for key, value in op.params.items()
        if key not in _SKIPPED_PARAMS and value is not None
    ]
    return " · ".join(parts)


def applied_text(op: OpRecord) -> str:
    """``yes`` / ``no`` / ``cannot tell``."""
    return "cannot tell" if op.applied is None else ("yes" if op.applied else "no")


def operations_table(records: Sequence[ViewRecord]) -> list[dict[str, object]]:
    """One row per operation of each view, in the order they ran."""
    rows = []
    for rec in records:
        for step, op in enumerate(recipe_operations(rec), start=1):
            rows.append(
                {
                    "view": view_name(rec),
                    "step": step,
                    "operation": op.name,
                    "kind": op.kind,
                    "applied": applied_text(op),
                    "parameters": parameters_text(op),
                    "read from": op.source,
                    "note": op.note,
                }
            )
    return rows


def operations_frame(samples: Sequence[tuple[str, Sequence[ViewRecord]]]) -> pd.DataFrame:
    """:func:`operations_table` of each ``(pipeline title, records)``, as :func:`records_frame`."""
    tables = []
    for title, records in samples:
        frame = pd.DataFrame(
            operations_table(records),
            columns=["view", "step", "operation", "kind", "applied", "parameters", "read from"]
            + ["note"],
        )
        if len(samples) > 1:
            frame.insert(0, "pipeline", title)
        tables.append(frame)
    return pd.concat(tables, ignore_index=True)
