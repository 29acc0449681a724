"""The sidebar's "edit any field" widgets: one Streamlit input per pipeline config field."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import streamlit as st

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard import field_edits


def field_widgets(
    cfg: PipelineConfig, prefix: str, initial: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One widget per config field, grouped in expanders; returns flat key -> widget value
    (a triple, mean / std, as its text: ``field_edits.parse_field_values`` reads it).

    ``initial``: edits the new widgets start with (a link's). Upper bounds come from the
    config (what one sample may cost, in the help text); no lower bounds on purpose: the
    config validates, and an impossible value shows the config's own message (field, value,
    allowed range).
    """
    values: dict[str, Any] = {}
    fields = field_edits.editable_fields(cfg)
    initial = initial or {}
    for section, title in field_edits.SECTIONS.items():
        with st.expander(title, expanded=False):
            for f in (f for f in fields if f.section == section):
                key = f"{prefix}:{f.key}"
                if f.key in initial:
                    f = dataclasses.replace(f, value=initial[f.key])
                if f.kind == "int":
                    values[f.key] = st.number_input(
                        f.label, value=f.value, step=1, max_value=f.max_value, help=f.help, key=key
                    )
                elif f.kind == "float":
                    values[f.key] = st.number_input(
                        f.label, value=f.value, step=0.05, format="%.3f", help=f.help, key=key
                    )
                elif f.kind == "triple":  # three boxes in the sidebar show "0.22 0.22 0.22"
                    text = f.value if isinstance(f.value, str) else field_edits.triple_text(f.value)
                    values[f.key] = st.text_input(
                        f.label, value=text, help=f"{f.help} Three numbers: R, G, B.", key=key
                    )
                elif f.kind == "pair":
                    st.caption(f.label, help=f.help)
                    cols = st.columns(len(f.value))
                    values[f.key] = tuple(
                        col.number_input(
                            f"{f.label}[{i}]",
                            value=float(v),
                            step=0.05,
                            format="%.3f",
                            key=f"{key}:{i}",
                            label_visibility="collapsed",
                        )
                        for i, (col, v) in enumerate(zip(cols, f.value, strict=True))
                    )
                elif f.kind == "choice":
                    values[f.key] = st.selectbox(
                        f.label, f.options, index=f.options.index(f.value), help=f.help, key=key
                    )
                else:
                    values[f.key] = st.text_input(f.label, value=str(f.value), help=f.help, key=key)
    return values
