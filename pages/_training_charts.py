"""Training page glue: cached reads of run directories and the curve panels.

Not a page. Shared by the live view, the comparison, the seed story and "Your run"; the curve
logic (colours per run, smoothing, x axes, thinning, hover, export) lives in
``dinodiag.dashboard.curves`` / ``curve_charts`` / ``run_names``; what a panel draws and
says, its options and legend selection in ``dinodiag.dashboard.curve_panel``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from dinodiag import rundir, runs
from dinodiag.dashboard import chart_view, curve_charts, curve_panel, curve_points, knn_verdict
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.labels import status_badge
from dinodiag.dashboard.run_reads import file_stamp, known_runs, started_at
from dinodiag.rundir import RunInfo

KNN_NOTE = curve_panel.KNN_NOTE  # the versus tab's k-NN chart says it too
CurveOptions = curve_panel.CurveOptions  # what controls() returns and panel() takes


def verdicts(frames: Mapping[str, pd.DataFrame]) -> None:
    """One k-NN verdict line per run (learning / too short to judge / too few test images)."""
    for name, frame in frames.items():
        verdict = knn_verdict.run_verdict(frame, name)
        getattr(st, verdict.level)(verdict.text, icon=VERDICT_ICONS[verdict.level])


VERDICT_ICONS = {
    "success": ":material/trending_up:",
    "warning": ":material/warning:",
    "info": ":material/info:",
}


def badge(state: str) -> str:
    """Markdown badge of a run state (``:green-badge[FINISHED]``)."""
    return status_badge(state)


@st.cache_data(max_entries=64, show_spinner=False)
def _read_metrics(path: str, stamp: tuple[float, int]) -> pd.DataFrame:
    return rundir.read_metrics(path)


def metrics(path: Path) -> pd.DataFrame:
    """A run's metrics.jsonl as a frame, re-read only when the file changed."""
    return _read_metrics(str(path), file_stamp(path, rundir.METRICS_FILE))


@st.cache_data(max_entries=64, show_spinner=False)
def _read_config(path: str, stamp: tuple[float, int]) -> dict | None:
    return rundir.read_config(path)


def config(path: Path) -> dict | None:
    return _read_config(str(path), file_stamp(path, rundir.CONFIG_FILE))


@st.cache_data(max_entries=256, show_spinner=False)
def _started(path: str, stamp: tuple[float, int]) -> float | None:
    return started_at(path)


def prototypes(infos: Sequence[RunInfo]) -> dict[str, int]:
    """K (number of prototypes) per run, for the ln K line."""
    return rc.prototypes({info.run_id: config(info.path) for info in infos})


def colours(series: Sequence[str]) -> dict[str, str]:
    """Each run's colour over every run of the runs directory
    (:func:`dinodiag.dashboard.curve_panel.colours`)."""
    return curve_panel.colours(known_runs(runs.runs_root()), series)


def wall_starts(frames: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Where each run's clock starts in wall time (runs of the runs directory only)."""
    root = runs.runs_root()
    started = {
        run: _started(str(root / run), file_stamp(root / run, rundir.STATUS_FILE)) for run in frames
    }
    return rc.wall_starts(frames, started)


# Legend text is not selected by a double click (the double click shows every run again).
NO_TEXT_SELECTION = (
    "<style>[data-testid='stVegaLiteChart'] {user-select: none; -webkit-user-select: none;}</style>"
)


def _restore(key: str) -> None:
    """The controls' values from the URL where the widgets have none yet (a reload, a link,
    a tab opened again): :func:`dinodiag.dashboard.chart_view.view_from_query`."""
    view, notes = chart_view.view_from_query(st.query_params.to_dict())
    values = curve_panel.control_values(key, view)
    fresh = f"{key}_smooth" not in st.session_state
    for name, value in values.items():
        st.session_state.setdefault(name, value)
    if fresh:
        for note in notes:
            st.warning(f"Not taken from the link: {note}", icon=":material/link_off:")


def _write_url(view: chart_view.ChartView) -> None:
    """The charts' view into the page URL (only its own parameters; unchanged: nothing sent)."""
    changed, gone = curve_panel.url_changes(view, st.query_params.to_dict())
    for name, value in changed.items():
        st.query_params[name] = value
    for name in gone:
        del st.query_params[name]


def controls(key: str) -> CurveOptions:
    """Smoothing, x axis, log scale and outlier widgets, restored from and kept in the URL;
    the options carry the page's legend selection (``key`` names the group of charts)."""
    _restore(key)
    st.html(NO_TEXT_SELECTION)
    left, middle, log, outliers = st.columns([3, 4, 2, 2], vertical_alignment="bottom")
    smoothing = left.slider(
        "Smoothing",
        *chart_view.SMOOTHING_RANGE,
        step=chart_view.SMOOTHING_STEP,
        key=f"{key}_smooth",
        help="Exponential moving average, as in TensorBoard: 0 shows the raw points. The raw "
        "values stay drawn faintly under the smoothed line; schedules and k-NN are never "
        "smoothed.",
    )
    x = middle.segmented_control(
        "x axis",
        list(rc.X_AXES),
        key=f"{key}_x",
        format_func=rc.X_AXES.get,
        help="Relative: time since the run started. Wall: the clock time (UTC).",
    )
    log_y = log.toggle("Log scale", key=f"{key}_log", help="Points <= 0 are left out and counted.")
    ignore = outliers.toggle(
        "Ignore outliers",
        key=f"{key}_outliers",
        help="Scale the y axis to the 2nd-98th percentile of the points, as TensorBoard's "
        "'ignore outliers in chart scaling': one spike no longer flattens the curve.",
    )
    shown = tuple(st.session_state.get(curve_panel.shown_key(key), ()))
    options = CurveOptions(smoothing, x or "step", log_y, ignore, key, shown)
    _write_url(options.view)
    return options


def _legend_picked(chart_key: str, tag: str, ids_by_name: dict[str, str], group: str) -> None:
    """A legend click or a double click in one chart: the page's selection for every chart
    of the group (the next run draws them all from it) and so the URL
    (:func:`~dinodiag.dashboard.curve_panel.legend_selection`). A double click in the plot
    sets the chart's reset parameter, so that a chart drawn with no pick reports it too."""
    shown = curve_panel.shown_key(group)
    before = st.session_state.get(shown, ())
    event = st.session_state.get(chart_key)
    st.session_state[shown] = curve_panel.legend_selection(event, tag, ids_by_name, before)


def show_chart(
    chart: object, long: pd.DataFrame, options: CurveOptions, key: str, tag: str
) -> None:
    """One Altair chart; in a group of several runs its legend clicks and double clicks feed
    the group's selection (a rerun draws every chart of the group with it)."""
    if not options.group or curve_charts.colour_field(long) != "name":
        st.altair_chart(chart, width="stretch")
        return
    ids_by_name = dict(zip(long["name"], long["run"], strict=True))
    chart_key = curve_panel.legend_chart_key(key, tag, options.shown)
    st.altair_chart(
        chart,
        width="stretch",
        key=chart_key,
        on_select=partial(_legend_picked, chart_key, tag, ids_by_name, options.group),
        selection_mode=[curve_charts.legend_param(tag), curve_charts.reset_param(tag)],
    )


def downloads(long: pd.DataFrame, x: str, name: str, key: str) -> None:
    """CSV and JSON of exactly what a chart shows (every point, smoothed and raw)."""
    row = st.container(horizontal=True, gap="small")
    row.download_button(
        "CSV",
        lambda: curve_points.export_frame(long, x).to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=f"{key}_csv",
        type="tertiary",
        help="Every point of this chart (runs, metrics, x axis and smoothing as shown).",
    )
    row.download_button(
        "JSON",
        lambda: curve_points.export_frame(long, x).to_json(orient="records", indent=1),
        file_name=f"{name}.json",
        mime="application/json",
        icon=":material/download:",
        key=f"{key}_json",
        type="tertiary",
    )


def panel(
    frames: Mapping[str, pd.DataFrame],
    which: rc.Panel,
    *,
    x: str | None = None,
    smoothing: float | None = None,
    log_y: bool | None = None,
    ln_k: Mapping[str, int] | None = None,
    per_row: int = 4,
    colors: Mapping[str, str] | None = None,
    options: CurveOptions | None = None,
    names: Mapping[str, str] | None = None,
    rules: pd.DataFrame | None = None,
    note: str = "",
    key: str = "",
) -> None:
    """One titled chart (or small multiples) with its reference lines, a hint and its data.

    ``options`` (from :func:`controls`) or ``x`` / ``smoothing`` / ``log_y``; ``colors`` by
    run id or series (default: every run's own colour, :func:`colours`); ``names`` short
    names by run id (default: :func:`~dinodiag.dashboard.run_names.short_names`); ``rules``
    replaces the panel's reference lines; ``note`` is added to its hint.
    """
    chosen = (options or CurveOptions()).given(x, smoothing, log_y)
    starts = wall_starts(frames) if chosen.x == "wall" else None
    points = curve_panel.panel_points(frames, which, chosen, starts=starts, names=names)
    long = points.long
    st.markdown(f"**{which.title}**")
    if points.off_note():
        st.caption(points.off_note())
    if points.no_knn:  # why, where the runs directory can say
        st.caption(curve_panel.knn_empty_note(frames, runs.runs_root(), config))
        return
    if points.empty_note() is not None:
        st.caption(points.empty_note())
        return
    colors = colors or colours(list(long["run"].unique()))
    style = curve_panel.chart_style(points, chosen, colors)
    chart_key = f"{key or 'curves'}_{which.key}"
    if which.separate:
        charts = curve_charts.metric_charts(long, **style)
        metrics = list(dict.fromkeys(long["metric"]))
        for n, chart in enumerate(charts):
            if n % per_row == 0:
                columns = st.columns(per_row)
            with columns[n % per_row]:
                part = long[long["metric"] == metrics[n]]
                show_chart(chart, part, chosen, chart_key, f"m{n}")
    else:
        lines = rules if rules is not None else rc.reference_lines(which, frames, ln_k or {}, names)
        zone = knn_verdict.baseline_zone(frames) if which.key == "knn" else None
        chart = curve_charts.curve_chart(long, rules=lines, zone=zone, **style)
        show_chart(chart, long, chosen, chart_key, "c")
    caption = points.caption(which, note)
    if caption:
        st.caption(caption)
    downloads(long, chosen.x, f"dinodiag-{which.key}", key=chart_key)


def all_panels(frames: Mapping[str, pd.DataFrame], infos: Sequence[RunInfo], key: str) -> None:
    """Every panel of the live view in a grid, with the shared controls."""
    options = controls(key)
    common = {"options": options, "ln_k": prototypes(infos), "key": key}
    left, right = st.columns(2)
    with left:
        panel(frames, rc.PANELS["loss"], **common)
    with right:
        panel(frames, rc.PANELS["knn"], **common)
    left, right = st.columns(2)
    with left:
        panel(frames, rc.PANELS["entropy"], **common)
    with right:
        panel(frames, rc.PANELS["speed"], **common, per_row=2)
    panel(frames, rc.PANELS["features"], **common, per_row=3)
    panel(frames, rc.PANELS["schedules"], **common)
