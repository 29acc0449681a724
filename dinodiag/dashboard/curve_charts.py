"""Altair charts of training curves, as TensorBoard draws them and a little more.

- one colour per run, the same in every chart (:mod:`dinodiag.dashboard.run_names`), its
  short name in the legend and its full id in the tooltip;
- the smoothed line over the raw values drawn faint; schedules are never smoothed
  (:mod:`dinodiag.dashboard.curves` decides what is);
- a hover rule at the pointer's x with every run's value there;
- a click on a legend entry shows only that run, more clicks add or remove runs, a double
  click on the legend or the plot shows them all (the legend greys the runs not shown);
  ``selected`` starts a chart with a page's selection, so that a page keeps one selection for
  all its charts: a click then reports the clicked run alone (the page toggles it) and a
  double click in the plot sets :func:`reset_param` (:func:`legend_param` and
  :func:`reset_param` name the parameters to listen to);
- one run with several metrics (the loss terms): a colour per metric; several runs: each
  run's colour, the metric's dash;
- a y axis never narrower than its metric needs
  (:func:`~dinodiag.dashboard.curve_points.span_floor`);
- log scale, outliers left out of the y range, 1 point or 100k points alike (the drawing is
  thinned to :data:`~dinodiag.dashboard.curve_points.MAX_DRAWN_POINTS` per line, the data not).

    long = curves.long_frame(frames, curves.PANELS["loss"], smoothing=0.6)
    chart = curve_chart(long, x="step", log_y=True, colors=run_colors(all_run_ids))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from dinodiag.dashboard import curve_points, curves, knn_verdict
from dinodiag.dashboard.run_names import run_colors

RULE_COLOUR = "#666"  # reference lines (ln K, step 0): grey, a colour no run has
FEW_POINTS = 40  # below this many points per line, each point is drawn as a dot too
BAND_OPACITY = 0.15  # the k-NN noise band under its line
DASHES = ([1, 0], [6, 3], [2, 2], [8, 3, 2, 3])  # metric 1, 2, 3, 4 on a chart of several
# Metric 1, 2, 3, 4 of a one-run chart (total loss, DINO, iBOT, KoLeo): hues no reference
# line has, each >= 3:1 on white (tests/dashboard/test_run_palette.py).
METRIC_COLOURS = ("#1a3a8f", "#c85200", "#2ca02c", "#d6268a")
PLOT_PICKS_NOTHING = "click[false]"  # the legend selection's direct-manipulation event
TITLE_LIMIT = 600  # px a chart title may take before an ellipsis ("images / s", never "image...")


def legend_param(tag: str = "c") -> str:
    """The name of the legend selection of a chart: ``curve_chart`` has tag ``c``, the n-th
    chart of ``metric_charts`` ``m{n}`` (Streamlit's ``selection_mode``)."""
    return f"shown_{tag}"


def reset_param(tag: str = "c") -> str:
    """The name of a chart's double-click selection (the x nearest the double click): a page
    that listens to it shows every run again when it is set."""
    return f"reset_{tag}"


def colour_field(long: pd.DataFrame) -> str:
    """What the colour (and the legend's selection) tells apart: ``metric`` on a chart of one
    run and several metrics, else ``name`` (the run)."""
    one_run = long["run"].nunique() <= 1
    return "metric" if one_run and long["metric"].nunique() > 1 else "name"


def _x_encoding(x: str, alt: Any) -> Any:
    if x == "wall":
        return alt.X("x:T", title=curves.X_TITLES[x], axis=alt.Axis(format="%H:%M"))
    if x == "step":  # 20k, 100k as TensorBoard writes them (and 0, not "0k"); steps are
        # whole numbers: a run of 1 step gets ticks 0 and 1, not 0, 100m, 200m, ... 1
        axis = alt.Axis(
            labelExpr="datum.value == 0 ? '0' : format(datum.value, '~s')", tickMinStep=1
        )
    else:
        axis = alt.Axis(format="~g")
    return alt.X("x:Q", title=curves.X_TITLES[x], axis=axis)


def colour_scale(long: pd.DataFrame, colors: Mapping[str, str] | None, alt: Any) -> Any:
    """The colour scale of a chart: each run's colour (``colors`` by run id, series or short
    name; else :func:`run_colors` of the runs drawn) under its short name; on a chart of
    one run and several metrics, :data:`METRIC_COLOURS` by metric."""
    if colour_field(long) == "metric":
        metrics = list(dict.fromkeys(long["metric"]))
        palette = METRIC_COLOURS * (len(metrics) // len(METRIC_COLOURS) + 1)
        return alt.Scale(domain=metrics, range=list(palette[: len(metrics)]))
    pairs = long[["run", "name", "series"]].drop_duplicates("name")
    fallback = run_colors(pairs["run"])
    domain, colours = [], []
    for run, name, series in pairs.itertuples(index=False):
        chosen = colors or {}
        domain.append(name)
        colours.append(chosen.get(run) or chosen.get(series) or chosen.get(name) or fallback[run])
    return alt.Scale(domain=domain, range=colours)


def _y_scale(
    long: pd.DataFrame,
    log_y: bool,
    ignore_outliers: bool,
    alt: Any,
    zone: pd.DataFrame | None = None,
) -> Any:
    options: dict[str, Any] = {"type": "log"} if log_y else {"zero": False}
    domain = curve_points.outlier_domain(long) if ignore_outliers else None
    knn = None if log_y else knn_verdict.knn_domain(long)  # never zoomed into its own noise
    if knn is not None:
        low, high = knn
        if zone is not None and not zone.empty:
            low, high = min(low, float(zone["low"].min())), max(high, float(zone["high"].max()))
        domain = (low, high)
    domain = curve_points.span_floor(long, domain, log_y)  # never zoomed into noise
    if domain is not None:
        low, high = domain
        if log_y:
            low = max(low, float(long["value"][long["value"] > 0].min()) * 0.9)
        options["domain"] = [low, high]
    return alt.Scale(**options)


def _one_chart(
    long: pd.DataFrame,
    *,
    x: str,
    log_y: bool,
    rules: pd.DataFrame | None,
    height: int,
    width: int | str | None,
    colors: Mapping[str, str] | None,
    ignore_outliers: bool,
    max_points: int,
    tag: str,
    title: str | None = None,
    legend: bool = True,
    legend_columns: int = 4,
    zone: pd.DataFrame | None = None,
    selected: Sequence[str] | None = None,
    toggle: bool = True,
) -> Any:
    """The layers of one chart: raw (faint), smoothed, reference rules, hover rule; on a k-NN
    chart the noise band of each point and the grey ``zone`` (``low`` / ``high`` / ``label``)
    around step 0 that a change must leave to count."""
    import altair as alt

    smoothed, raw = curve_points.drawing_points(long, max_points)
    # Only the fields the layers use travel to the browser (Altair embeds the data inline).
    smoothed = smoothed[["x", "value", "name", "metric", "run"]]
    raw = raw[["x", "raw", "name", "metric"]]
    several_metrics = long["metric"].nunique() > 1
    # The runs shown: all while nothing is picked; a click on a legend entry shows only that
    # run, further clicks add or remove runs, a double click (legend or plot) shows all
    # again. The legend greys the runs that are not shown. ``selected``: the page's choice.
    field = colour_field(long)
    present = set(long[field])
    start = [{field: v} for v in dict.fromkeys(selected or ()) if v in present]
    shown = alt.selection_point(
        name=legend_param(tag),
        fields=[field],
        bind="legend",
        # A click picks the clicked run alone: a page toggles it in its own selection (a
        # chart starts from the page's, so "picked again" is reported, not an empty one).
        # Without a page (``toggle``) a click adds or removes the run.
        toggle="true" if toggle else "false",
        empty=True,
        # A double click anywhere in the chart (legend or plot) clears the selection. A
        # legend-bound selection has no clear of its own, and an explicit ``clear`` without
        # ``on`` makes Vega-Lite fail ("t.events is not iterable", vega-lite#6553): so an
        # ``on`` that never fires (its filter is false): clicks in the plot pick nothing.
        on=PLOT_PICKS_NOTHING,
        clear="dblclick",
        **({"value": start} if start else {}),
    )
    colour = alt.Color(
        f"{field}:N",
        title=None,
        scale=colour_scale(long, colors, alt),
        legend=alt.Legend(
            orient="bottom",
            columns=legend_columns,
            labelLimit=320,
            symbolStrokeWidth=3,
            symbolOpacity=1,  # not the faint raw layer's
        )
        if legend
        else None,
    )
    y_scale = _y_scale(long, log_y, ignore_outliers, alt, zone)
    y = alt.Y("value:Q", title=None, scale=y_scale)
    encoding: dict[str, Any] = {"x": _x_encoding(x, alt), "y": y, "color": colour}
    if several_metrics:
        metrics = list(dict.fromkeys(long["metric"]))
        by_metric = field == "metric"  # one legend: coloured and dashed entries
        encoding["strokeDash"] = alt.StrokeDash(
            "metric:N",
            title=None,
            sort=metrics,
            scale=alt.Scale(domain=metrics, range=list(DASHES[: len(metrics)])),
            legend=None
            if by_metric and legend
            else alt.Legend(orient="bottom", symbolStrokeColor="black"),
        )
    clip = ignore_outliers
    layers = [_hover_layer(long, x, tag, alt)]  # under the lines: a line shows its own tooltip
    if zone is not None and not zone.empty:  # the change a run must make to count
        layers.append(
            alt.Chart(zone)
            .mark_rect(color=RULE_COLOUR, opacity=0.12, clip=clip)
            .encode(
                y=alt.Y("low:Q", scale=y_scale, title=None),
                y2="high:Q",
                tooltip=[alt.Tooltip("label:N", title="grey zone")],
            )
        )
    band = knn_verdict.knn_band(long)
    if len(band):  # each k-NN point's 95% interval, in the run's colour
        layers += _band_layers(band, encoding, shown, y_scale, clip, alt)
    if curve_points.smoothed(long):  # the raw values underneath, faint
        faint = alt.when(shown).then(alt.value(0.22)).otherwise(alt.value(0.0))
        layers.append(
            alt.Chart(raw)
            .mark_line(strokeWidth=1, clip=clip)
            .encode(
                **{**encoding, "y": alt.Y("raw:Q", title=None, scale=y_scale)},
                opacity=faint,
                detail="name:N",
            )
        )
    seen = alt.when(shown).then(alt.value(1.0)).otherwise(alt.value(0.06))
    line = (
        alt.Chart(smoothed)
        .mark_line(strokeWidth=2, clip=clip)
        .encode(
            **encoding,
            opacity=seen,
            detail="name:N",
            tooltip=[alt.Tooltip("run:N", title="run"), alt.Tooltip("metric:N", title="metric")],
        )
        .add_params(shown)
    )
    layers.append(line)
    sizes = smoothed.groupby(["name", "metric"])["x"].transform("size")
    few = smoothed[sizes < FEW_POINTS]  # a line of 1 point draws nothing: dots show them
    if len(few):
        layers.append(
            alt.Chart(few)
            .mark_point(filled=True, size=36, clip=clip)
            .encode(x=encoding["x"], y=y, color=colour, opacity=seen)
        )
    if rules is not None and not rules.empty:
        rule = alt.Chart(rules).encode(
            y="value:Q", tooltip=["label:N", alt.Tooltip("value:Q", format=".3g")]
        )
        layers.append(rule.mark_rule(strokeDash=[6, 4], color=RULE_COLOUR))
        layers.append(
            rule.mark_text(align="left", dx=4, dy=-6, color=RULE_COLOUR).encode(
                text="label:N", x=alt.value(0)
            )
        )
    chart = alt.layer(*layers).properties(height=height)
    if len(band):  # a few points: SVG, so a browser (and its tests) can read the marks
        chart = chart.properties(usermeta={"embedOptions": {"renderer": "svg"}})
    if width is not None:
        chart = chart.properties(width=width)
    if not title:
        return chart
    return chart.properties(title=alt.TitleParams(title, anchor="start", limit=TITLE_LIMIT))


def _band_layers(
    band: pd.DataFrame, encoding: dict[str, Any], shown: Any, y_scale: Any, clip: bool, alt: Any
) -> list[Any]:
    """The noise band of k-NN curves: an area between the 95% interval bounds of each point
    (low opacity, the run's colour) and a bar at each point (a single evaluation has no area)."""
    band = band[["x", "low", "high", "raw", "n_test", "name", "metric", "run"]]
    opacity = alt.when(shown).then(alt.value(BAND_OPACITY)).otherwise(alt.value(0.02))
    tooltip = [
        alt.Tooltip("run:N", title="run"),
        alt.Tooltip("metric:N", title="metric"),
        alt.Tooltip("raw:Q", title="k-NN (%)", format=".1f"),
        alt.Tooltip("low:Q", title="95% low", format=".1f"),
        alt.Tooltip("high:Q", title="95% high", format=".1f"),
        alt.Tooltip("n_test:Q", title="test images"),
    ]
    common = {
        "x": encoding["x"],
        "y": alt.Y("low:Q", title=None, scale=y_scale),
        "y2": "high:Q",
        "color": encoding["color"],
        "opacity": opacity,
        "detail": "metric:N",
        "tooltip": tooltip,
    }
    # named: the SVG marks get the class "knn_noise_band_marks" (the browser tests find them)
    area = alt.Chart(band, name="knn_noise_band").mark_area(clip=clip).encode(**common)
    bars = alt.Chart(band).mark_rule(strokeWidth=2, clip=clip).encode(**common)
    return [area, bars]


def _hover_layer(long: pd.DataFrame, x: str, tag: str, alt: Any) -> Any:
    """A vertical rule at the x nearest the pointer, with every series' value there."""
    table = curve_points.hover_frame(long, x)
    nearest = alt.selection_point(
        name=f"hover_{tag}",
        nearest=True,
        on="pointerover",
        clear="pointerout",
        fields=["x"],
        empty=False,
    )
    tooltip = [alt.Tooltip("at:N", title="at")]
    tooltip += [alt.Tooltip(f"{c}:N", title=t) for c, t in table.attrs["series"].items()]
    # A double click anywhere in the plot sets this to the nearest x: never empty, so a page
    # hears it (Streamlit reports a selection that changed; the legend's clear empties a
    # selection that a freshly drawn chart reports as empty already).
    reset = alt.selection_point(
        name=reset_param(tag), nearest=True, on="dblclick", fields=["x"], empty=False, clear=False
    )
    show = alt.when(nearest).then(alt.value(0.5)).otherwise(alt.value(0.0))
    return (
        alt.Chart(table)
        .mark_rule(color=RULE_COLOUR, strokeWidth=1)
        .encode(x=_x_encoding(x, alt), opacity=show, tooltip=tooltip)
        .add_params(nearest, reset)
    )


def curve_chart(
    long: pd.DataFrame,
    *,
    x: str = "step",
    log_y: bool = False,
    rules: pd.DataFrame | None = None,
    height: int = 260,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    ignore_outliers: bool = False,
    max_points: int = curve_points.MAX_DRAWN_POINTS,
    zone: pd.DataFrame | None = None,
    selected: Sequence[str] | None = None,
) -> Any:
    """An Altair chart of a :func:`~dinodiag.dashboard.curves.long_frame`: colour = run
    (``colors`` by run id, e.g. :func:`run_colors` of every run, or by series: broken red,
    fixed green), dash = metric when there are several, dashed grey ``rules`` (``value``,
    ``label``: ln K, the step-0 k-NN). k-NN curves get their 95% noise band, a y range no
    narrower than their noise (:func:`~dinodiag.dashboard.knn_verdict.knn_domain`) and the
    grey ``zone`` (:func:`~dinodiag.dashboard.knn_verdict.baseline_zone`) when given."""
    return _one_chart(
        long,
        zone=zone,
        x=x,
        log_y=log_y,
        rules=rules,
        height=height,
        width=None,
        colors=colors,
        ignore_outliers=ignore_outliers,
        max_points=max_points,
        tag="c",
        title=title,
        selected=selected,
        toggle=selected is None,
    )


def metric_charts(
    long: pd.DataFrame,
    *,
    x: str = "step",
    width: int | None = None,
    colors: Mapping[str, str] | None = None,
    log_y: bool = False,
    ignore_outliers: bool = False,
    max_points: int = curve_points.MAX_DRAWN_POINTS,
    selected: Sequence[str] | None = None,
) -> list[Any]:
    """One small chart per metric, each with its own y scale (lr and momentum differ
    1000-fold), the runs' colours shared: the page lays them out side by side. (Separate
    charts, not an Altair concat: Altair's concat gives each layer's selections to every
    layer, which Vega cannot draw.) The legend is drawn only when several runs are."""
    import altair as alt

    charts = []
    several = long["run"].nunique() > 1
    for n, metric in enumerate(dict.fromkeys(long["metric"])):
        chart = _one_chart(
            long[long["metric"] == metric],
            x=x,
            log_y=log_y,
            rules=None,
            height=150,
            width=width,
            colors=colors,
            ignore_outliers=ignore_outliers,
            max_points=max_points,
            tag=f"m{n}",
            title=metric,
            legend=several,
            legend_columns=1,  # a narrow chart: one run a line, never a cut name
            selected=selected,
            toggle=selected is None,
        )
        # Streamlit's default autosize ("fit") squeezes title, axes and legend into the
        # height, leaving a small chart a plot a few pixels high: fit the width only.
        charts.append(
            chart.properties(autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))
        )
    return charts
