"""The photometric rates chart of the statistics page (Altair / Vega-Lite): how often each
operation applied to global view 1, global view 2 and the local views, per pipeline, against
the reference's probability and its binomial interval; hover values on every mark. A panel
with nothing to draw says why (a pipeline with no local views, say) instead of staying blank.

    tables = {"seed-broken": stats.rates(frame, cfg, reference_cfg)}
    charts = rates_charts(tables, {"seed-broken": cfg})  # one chart per view kind
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard.stats_charts import SERIES_COLOURS
from dinodiag.dashboard.stats_histograms import empty_chart, readable, wrapped

RATE_PANELS = (("global1", "Global view 1"), ("global2", "Global view 2"), ("local", "Local views"))
RATE_OPERATIONS = ("flip", "jitter", "grayscale", "blur", "solarize")
FAR_COLOUR = "#e8112d"  # the outline of a rate far outside its interval
VIEWS = {"global1": "global view 1", "global2": "global view 2", "local": "local views"}


def missing_reason(
    kind: str, label: str, table: pd.DataFrame, config: PipelineConfig | None
) -> str | None:
    """Why ``label``'s rates ``table`` has no operation of view ``kind`` to draw, or None
    when it has one: no local views configured (``local_crops_number`` 0), none sampled, or
    no operation dinodiag could measure on them."""
    rows = table[table["kind"] == kind]
    if rows["operation"].isin(RATE_OPERATIONS).any():
        return None
    if kind == "local" and config is not None and config.local_crops_number == 0:
        return f"{label} makes no local views (local_crops_number is 0)"
    if rows.empty:
        return f"{label} returned no {VIEWS[kind]} in the samples"
    return f"{label}: none of {', '.join(RATE_OPERATIONS)} could be measured on its {VIEWS[kind]}"


def rates_chart(
    kind: str,
    title: str,
    tables: Mapping[str, pd.DataFrame],
    configs: Mapping[str, PipelineConfig | None] | None = None,
) -> Any:
    """One panel: a bar per operation and pipeline (``tables``: pipeline -> ``stats.rates``),
    outlined red when far from the reference's rate; the reference's rate as a black tick in
    its grey binomial interval. ``configs`` (pipeline -> config, None when own) say why
    a pipeline has nothing here; a panel with no bar at all says it in its place."""
    import altair as alt

    configs = configs or {}
    reasons = [
        r
        for label, table in tables.items()
        if (r := missing_reason(kind, label, table, configs.get(label))) is not None
    ]
    parts = []
    for label, table in tables.items():
        part = table[(table["kind"] == kind) & table["operation"].isin(RATE_OPERATIONS)]
        parts.append(part.assign(pipeline=label))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if rows.empty:
        return empty_chart(title, f"Nothing to draw: {'; '.join(reasons)}.")
    rows = rows.assign(
        far=rows["verdict"] == "far",
        interval=[
            "–" if low != low else f"{low:.2f}–{high:.2f}"
            for low, high in zip(rows["low"], rows["high"], strict=True)
        ],
    )[
        ["pipeline", "operation", "n", "applied", "measured", "expected", "low", "high"]
        + ["verdict", "far", "interval"]
    ]
    pipelines = list(tables)
    colours = alt.Scale(
        domain=pipelines, range=[SERIES_COLOURS[i % 2] for i in range(len(pipelines))]
    )
    x = alt.X("operation:N", sort=list(RATE_OPERATIONS), title=None, axis=alt.Axis(labelAngle=0))
    offset = alt.XOffset("pipeline:N", sort=pipelines)
    tooltip = [
        alt.Tooltip("pipeline:N"),
        alt.Tooltip("operation:N"),
        alt.Tooltip("measured:Q", format=".2f"),
        alt.Tooltip("applied:Q", title="views applied"),
        alt.Tooltip("n:Q", title="views counted"),
        alt.Tooltip("expected:Q", title="reference", format=".2f"),
        alt.Tooltip("interval:N", title="correct-pipeline interval"),
        alt.Tooltip("verdict:N"),
    ]
    base = alt.Chart(rows).encode(x=x, xOffset=offset, tooltip=tooltip)
    y_scale = alt.Scale(domain=[0, 1.05])
    legend = alt.Legend(orient="bottom", title=None) if len(pipelines) > 1 else None
    bars = base.mark_bar().encode(
        y=alt.Y("measured:Q", title="fraction of views", scale=y_scale),
        color=alt.Color("pipeline:N", scale=colours, legend=legend),
        stroke=alt.condition("datum.far", alt.value(FAR_COLOUR), alt.value(None)),
        strokeWidth=alt.condition("datum.far", alt.value(2.5), alt.value(0)),
    )
    expected = base.transform_filter("isValid(datum.expected)")
    band = expected.mark_bar(color="grey", opacity=0.3).encode(
        y=alt.Y("low:Q", scale=y_scale), y2="high:Q"
    )
    tick = expected.mark_tick(color="black", thickness=2).encode(y=alt.Y("expected:Q"))
    heading = {"subtitle": wrapped([f"{r}." for r in reasons])} if reasons else {}
    chart = alt.layer(bars, band, tick).properties(
        height=220, title=alt.TitleParams(title, anchor="start", **heading)
    )
    return readable(chart)


def rates_charts(
    tables: Mapping[str, pd.DataFrame],
    configs: Mapping[str, PipelineConfig | None] | None = None,
) -> list[Any]:
    """:func:`rates_chart` of each view kind of :data:`RATE_PANELS`, in order."""
    return [rates_chart(kind, title, tables, configs) for kind, title in RATE_PANELS]
