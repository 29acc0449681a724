"""Interactive histograms of sampled statistics (Altair / Vega-Lite, as the training curves):
each pipeline's share of crops per bin, hover values, its configured range shaded, the
reference's range between dashed rules, and the share outside that range said in the
subtitle, one line per pipeline (:func:`dinodiag.dashboard.stats_charts.outside_shares`,
which the text under the charts reads too). Labels of 12 px (:func:`readable`).

    reference = config_ranges(cfg)
    outside = outside_shares({"dinov2": frame}, reference)
    charts = histograms({"dinov2": frame}, {"dinov2": reference}, reference, outside, "dinov2")
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dinodiag.dashboard.stats_charts import SERIES_COLOURS, Outside

REFERENCE_COLOUR = "#222"  # the reference range's dashed rules
# Text sizes of the charts (px): Vega-Lite's defaults (10-11 px) read small on a page.
FONT_SIZES = {"label": 12, "axis_title": 12, "title": 14, "subtitle": 12}
EMPTY_LINE = 40  # characters a line of an empty chart's reason (a third of the page wide)


@dataclass(frozen=True)
class StatPanel:
    """One histogram of :func:`histograms`."""

    column: str  # the sample_views column
    group: str | None  # "global" / "local" views only; None: every crop
    title: str
    x_title: str
    log_x: bool = False
    range_key: str | None = None  # the key of config_ranges it is judged against

    @property
    def what(self) -> str:
        return f"{self.group} crops" if self.group else "crops"


STAT_PANELS = (
    StatPanel(
        "scale", "global", "Global crop area scale", "box area / image area", False, "global"
    ),
    StatPanel("scale", "local", "Local crop area scale", "box area / image area", False, "local"),
    StatPanel("ratio", None, "Aspect ratio (all crops)", "box width / height (log)", True, "ratio"),
    StatPanel(
        "upsampling",
        None,
        "Upsampling factor (all crops)",
        "output side / crop side in source px (log)",
        True,
    ),
    StatPanel("global_iou", "global", "IoU of the two global crops", "IoU"),
    StatPanel(
        "local_coverage", "local", "Local crop covered by a global crop", "fraction of local area"
    ),
)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Readable ticks for a log axis spanning [lo, hi] (e.g. 0.75, 1, 1.33 or 0.5, 1, 2, 4)."""
    candidates = [0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0, 1.33, 1.5, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0]
    ticks = [t for t in [*candidates, 20.0] if lo <= t <= hi]
    if len(ticks) > 6:  # thin to about 6, counting from 1 (no upsampling, a square crop)
        step = math.ceil(len(ticks) / 6)
        one = ticks.index(1.0) if 1.0 in ticks else 0
        ticks = [t for i, t in enumerate(ticks) if (i - one) % step == 0]
    return ticks or [round(lo, 2), round(hi, 2)]


def histogram_table(
    series: Mapping[str, np.ndarray],
    log_x: bool = False,
    ranges: Sequence[tuple[float, float]] = (),
    bins: int = 30,
) -> pd.DataFrame:
    """The bars of overlaid histograms of ``series`` (pipeline -> values): one row per
    pipeline and bin with ``lo`` / ``hi`` (the bin's edges), ``count``, ``share`` (% of that
    pipeline's values: two pipelines with different view counts stay comparable) and
    ``bin`` (its edges as text for the tooltip). Shared bins over the values and ``ranges``
    (geometric on a log axis, where values <= 0 are left out)."""
    values = {k: np.asarray(v, dtype=float) for k, v in series.items()}
    values = {
        k: v[np.isfinite(v) & (v > 0)] if log_x else v[np.isfinite(v)] for k, v in values.items()
    }
    columns = ["pipeline", "lo", "hi", "count", "share", "bin"]
    everything = np.concatenate([np.empty(0), *values.values()])
    if everything.size == 0:
        return pd.DataFrame(columns=columns)
    lo, hi = float(everything.min()), float(everything.max())
    for low, high in ranges:
        lo, hi = min(lo, low), max(hi, high)
    hi = hi if hi > lo else lo + 1e-3
    edges = np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)
    rows = []
    for label, vals in values.items():
        counts, _ = np.histogram(vals, bins=edges)
        for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True):
            if count:
                share = 100.0 * count / vals.size
                rows.append((label, low, high, int(count), share, f"{low:.3g}–{high:.3g}"))
    return pd.DataFrame(rows, columns=columns)


def _series(frames: Mapping[str, pd.DataFrame], panel: StatPanel) -> dict[str, np.ndarray]:
    series = {}
    for label, frame in frames.items():
        part = frame if panel.group is None else frame[frame["group"] == panel.group]
        column = part[panel.column] if panel.column in part else pd.Series([], dtype=float)
        series[label] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
    return series


def readable(chart: Any) -> Any:
    """``chart`` with :data:`FONT_SIZES` (labels, axis titles, title, legend >= 11 px), its
    height the plot's (Streamlit's default autosize squeezes title and notes into it)."""
    import altair as alt

    label, axis_title = FONT_SIZES["label"], FONT_SIZES["axis_title"]
    chart = chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
    return (
        chart.configure_axis(labelFontSize=label, titleFontSize=axis_title)
        .configure_legend(labelFontSize=label, titleFontSize=axis_title, labelLimit=400)
        .configure_title(fontSize=FONT_SIZES["title"], subtitleFontSize=FONT_SIZES["subtitle"])
    )


def wrapped(lines: Sequence[str], width: int = EMPTY_LINE + 10) -> list[str]:
    """``lines`` cut at ``width`` characters (a subtitle line is never wrapped by Vega: it
    ends in "…" on a narrow chart); each line's continuation indented."""
    return [part for line in lines for part in textwrap.wrap(line, width, subsequent_indent="  ")]


def empty_chart(title: str, reason: str, height: int = 220) -> Any:
    """A chart frame that says why it has nothing to draw (``reason``, wrapped to lines of
    :data:`EMPTY_LINE` characters), in place of a blank."""
    import altair as alt

    lines = textwrap.wrap(reason, EMPTY_LINE)
    text = alt.Chart(pd.DataFrame({"at": [0]})).mark_text(
        text=lines, fontSize=FONT_SIZES["label"], color="#555"
    )
    chart = text.properties(height=height, title=alt.TitleParams(title, anchor="start"))
    return readable(chart.configure_view(strokeWidth=0))


def _no_data_reason(panel: StatPanel, frames: Mapping[str, pd.DataFrame]) -> str:
    if panel.group and not any((f["group"] == panel.group).any() for f in frames.values()):
        return f"No {panel.group} crops: {' and '.join(frames)} made none."
    return f"Not measured: no {panel.what} recorded a {panel.x_title.split(' (')[0]}."


def histogram_chart(
    frames: Mapping[str, pd.DataFrame],
    panel: StatPanel,
    configured: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    reference: Mapping[str, tuple[float, float]] | None = None,
    outside: Sequence[Outside] = (),
    reference_name: str = "the reference",
) -> Any:
    """One interactive histogram (Altair): each pipeline's bars in its colour
    (:data:`SERIES_COLOURS`, overlaid), its configured range shaded in that colour, the
    reference's range between dashed rules; hovering a bar gives the pipeline, the bin, its
    crops and share. The title's subtitle has one line per pipeline from ``outside``
    (:func:`outside_shares`), so two pipelines' notes never overlap."""
    import altair as alt

    series = _series(frames, panel)
    key = panel.range_key
    shades = {k: r[key] for k, r in (configured or {}).items() if key and key in r}
    ref = (reference or {}).get(key) if key else None
    table = histogram_table(series, panel.log_x, [*shades.values(), *([ref] if ref else [])])
    if table.empty:
        return empty_chart(panel.title, _no_data_reason(panel, frames))
    pipelines = list(frames)
    colours = alt.Scale(
        domain=pipelines, range=[SERIES_COLOURS[i % 2] for i in range(len(pipelines))]
    )
    lo, hi = float(table["lo"].min()), float(table["hi"].max())
    scale = alt.Scale(type="log", domain=[lo, hi]) if panel.log_x else alt.Scale(domain=[lo, hi])
    axis = alt.Axis(values=_log_ticks(lo, hi), format="~g") if panel.log_x else alt.Axis()
    x = alt.X("lo:Q", title=panel.x_title, scale=scale, axis=axis)
    several = len(pipelines) > 1
    legend = alt.Legend(orient="bottom", title=None) if several else None
    bars = (  # named: the SVG bars get the class "histogram_bars_marks" (browser tests)
        alt.Chart(table, name="histogram_bars")
        .mark_bar(opacity=0.55 if several else 0.8, stroke="white", strokeWidth=0.3)
        .encode(
            x=x,
            x2="hi:Q",
            y=alt.Y("share:Q", title=f"share of {panel.what} (%)", stack=None),
            y2=alt.datum(0),  # from 0 up (with x and x2 alone, Vega-Lite draws a thin tick)
            color=alt.Color("pipeline:N", scale=colours, legend=legend),
            tooltip=[
                alt.Tooltip("pipeline:N"),
                alt.Tooltip("bin:N", title=panel.x_title.split(" (")[0]),
                alt.Tooltip("count:Q", title=panel.what),
                alt.Tooltip("share:Q", title="share (%)", format=".1f"),
            ],
        )
    )
    layers = []
    if shades:
        shade = pd.DataFrame(
            [(k, a, b, f"{a:.3g}–{b:.3g}") for k, (a, b) in shades.items()],
            columns=["pipeline", "lo", "hi", "range"],
        )
        layers.append(
            alt.Chart(shade)
            .mark_rect(opacity=0.12)
            .encode(
                x=x,
                x2="hi:Q",
                color=alt.Color("pipeline:N", scale=colours, legend=None),
                tooltip=[alt.Tooltip("pipeline:N"), alt.Tooltip("range:N", title="configured")],
            )
        )
    layers.append(bars)
    rules = [(v, f"{reference_name}'s range: {ref[0]:.3g}–{ref[1]:.3g}") for v in ref or ()]
    if panel.column == "upsampling":
        rules.append((1.0, "1: crop drawn at its source size"))
    if rules:
        frame = pd.DataFrame(rules, columns=["value", "label"])
        dashed = frame["label"].str.contains("range")
        for part, dash in ((frame[dashed], [6, 4]), (frame[~dashed], [1, 0])):
            if len(part):
                layers.append(
                    alt.Chart(part)
                    .mark_rule(color=REFERENCE_COLOUR, strokeDash=dash, strokeWidth=1.5)
                    .encode(
                        x=alt.X("value:Q", scale=scale), tooltip=[alt.Tooltip("label:N", title=" ")]
                    )
                )
    notes = [
        f"{o.pipeline}: {o.words()} ({reference_name}'s range)" for o in outside if o.key == key
    ]
    title = alt.TitleParams(
        panel.title, anchor="start", **({"subtitle": wrapped(notes)} if notes else {})
    )
    chart = alt.layer(*layers).properties(height=220, title=title)
    # SVG: a few dozen bars draw as fast, and the marks can be found (and hovered) by name
    return readable(chart.properties(usermeta={"embedOptions": {"renderer": "svg"}}))


def histograms(
    frames: Mapping[str, pd.DataFrame],
    configured: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    reference: Mapping[str, tuple[float, float]] | None = None,
    outside: Sequence[Outside] = (),
    reference_name: str = "the reference",
) -> list[Any]:
    """The six histograms of :data:`STAT_PANELS` (:func:`histogram_chart`), in order: the
    page lays them out in a grid. ``frames``: pipeline -> ``sample_views`` frame (one or
    two); ``configured``: pipeline -> :func:`config_ranges`; ``reference``: the reference's
    ranges; ``outside``: :func:`outside_shares` of the same frames and reference."""
    return [
        histogram_chart(frames, panel, configured, reference, outside, reference_name)
        for panel in STAT_PANELS
    ]
