"""Training page glue: cached reads of run directories and the curve panels.

Not a page. Shared by the live view, the comparison, the seed story and "Your run"; the curve
logic (colours per run, smoothing, x axes, thinning, hover, export) lives in
``dinodiag.dashboard.curves`` / ``curve_charts`` / ``run_names``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import streamlit as st

from dinodiag import rundir, runs
from dinodiag.dashboard import chart_view, curve_charts, curve_points, knn_verdict, run_status
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.labels import status_badge
from dinodiag.dashboard.run_names import run_colors
from dinodiag.rundir import RunInfo

KNN_NOTE = (
    "Shaded: each evaluation's 95% interval on its test images (binomial); grey: the change "
    "from step 0 that is still noise. The y axis never zooms narrower than that noise."
)


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


def _stamp(path: Path, name: str) -> tuple[float, int]:
    try:
        stat = (path / name).stat()
    except OSError:
        return 0.0, 0
    return stat.st_mtime, stat.st_size


@st.cache_data(max_entries=64, show_spinner=False)
def _read_metrics(path: str, stamp: tuple[float, int]) -> pd.DataFrame:
    return rundir.read_metrics(path)


def metrics(path: Path) -> pd.DataFrame:
    """A run's metrics.jsonl as a frame, re-read only when the file changed."""
    return _read_metrics(str(path), _stamp(path, rundir.METRICS_FILE))


@st.cache_data(max_entries=64, show_spinner=False)
def _read_config(path: str, stamp: tuple[float, int]) -> dict | None:
    return rundir.read_config(path)


def config(path: Path) -> dict | None:
    return _read_config(str(path), _stamp(path, rundir.CONFIG_FILE))


@st.cache_data(max_entries=256, show_spinner=False)
def _started(path: str, stamp: tuple[float, int]) -> float | None:
    started = (rundir.read_json(Path(path) / rundir.STATUS_FILE) or {}).get("started")
    return float(started) if isinstance(started, (int, float)) else None


def prototypes(infos: Sequence[RunInfo]) -> dict[str, int]:
    """K (number of prototypes) per run, for the ln K line."""
    return rc.prototypes({info.run_id: config(info.path) for info in infos})


def known_runs() -> list[str]:
    """The id of every run in the runs directory: the colours are assigned over all of them,
    so a run has the same colour whichever runs a chart shows."""
    return [path.name for path in rundir.scan_run_dirs(runs.runs_root())[0]]


def colours(series: Sequence[str]) -> dict[str, str]:
    """Each run's colour (:func:`dinodiag.dashboard.run_names.run_colors` over every run of
    the runs directory); names that are not runs there get colours none of them has."""
    known = known_runs()
    return run_colors(known, extra=[s for s in series if s not in set(known)])


def wall_starts(frames: Mapping[str, pd.DataFrame]) -> dict[str, float]:
    """Where each run's clock starts in wall time (runs of the runs directory only)."""
    root = runs.runs_root()
    started = {
        run: _started(str(root / run), _stamp(root / run, rundir.STATUS_FILE)) for run in frames
    }
    return rc.wall_starts(frames, started)


@dataclass(frozen=True)
class CurveOptions:
    """What the curve controls chose. Unpacks as ``(smoothing, x, log_y)`` for callers that
    take those three only."""

    smoothing: float = 0.6  # EMA weight, TensorBoard's slider: 0 shows the raw points
    x: str = "step"  # a key of dinodiag.dashboard.curves.X_AXES
    log_y: bool = False
    ignore_outliers: bool = False  # y range from the 2nd to the 98th percentile
    # The charts drawn with these options share one legend selection (the controls' key);
    # "" = each chart picks on its own.
    group: str = ""
    shown: tuple[str, ...] = field(default=())  # run ids the legends picked; () = all

    def __iter__(self) -> Iterator[object]:
        return iter((self.smoothing, self.x, self.log_y))


# Legend text is not selected by a double click (the double click shows every run again).
NO_TEXT_SELECTION = (
    "<style>[data-testid='stVegaLiteChart'] {user-select: none; -webkit-user-select: none;}</style>"
)


def _shown_key(group: str) -> str:
    return f"{group}_shown"


def _restore(key: str) -> None:
    """The controls' values from the URL where the widgets have none yet (a reload, a link,
    a tab opened again): :func:`dinodiag.dashboard.chart_view.view_from_query`."""
    view, notes = chart_view.view_from_query(st.query_params.to_dict())
    values = {
        f"{key}_smooth": view.smoothing,
        f"{key}_x": view.x,
        f"{key}_log": view.log_y,
        f"{key}_outliers": view.ignore_outliers,
        _shown_key(key): view.shown,
    }
    fresh = f"{key}_smooth" not in st.session_state
    for name, value in values.items():
        st.session_state.setdefault(name, value)
    if fresh:
        for note in notes:
            st.warning(f"Not taken from the link: {note}", icon=":material/link_off:")


def _write_url(view: chart_view.ChartView) -> None:
    """The charts' view into the page URL (only its own parameters; unchanged: nothing sent)."""
    query = chart_view.view_to_query(view)
    current = st.query_params.to_dict()
    for name in chart_view.PARAMS:
        if name in query and current.get(name) != query[name]:
            st.query_params[name] = query[name]
        elif name not in query and name in current:
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
    shown = tuple(st.session_state.get(_shown_key(key), ()))
    options = CurveOptions(smoothing, x or "step", log_y, ignore, key, shown)
    _write_url(chart_view.ChartView(smoothing, x or "step", log_y, ignore, shown))
    return options


def _legend_picked(chart_key: str, tag: str, ids_by_name: dict[str, str], group: str) -> None:
    """A legend click or a double click in one chart: the page's selection for every chart
    of the group (the next run draws them all from it) and so the URL. A click reports the
    clicked run alone (:func:`~dinodiag.dashboard.chart_view.toggled_ids` adds or removes
    it); a double click empties the legend's selection (and, in the plot, sets the chart's
    reset parameter, so that a chart drawn with no pick reports it too): every run again."""
    selection = (st.session_state.get(chart_key) or {}).get("selection") or {}
    points = selection.get(curve_charts.legend_param(tag)) or []
    clicked = [p.get("name") for p in points if isinstance(p, dict)]
    if not clicked:  # a click always reports its run: an empty legend is a double click's
        st.session_state[_shown_key(group)] = ()
        return
    before = st.session_state.get(_shown_key(group), ())
    st.session_state[_shown_key(group)] = chart_view.toggled_ids(clicked, ids_by_name, before)


def show_chart(
    chart: object, long: pd.DataFrame, options: CurveOptions, key: str, tag: str
) -> None:
    """One Altair chart; in a group of several runs its legend clicks and double clicks feed
    the group's selection (a rerun draws every chart of the group with it)."""
    if not options.group or curve_charts.colour_field(long) != "name":
        st.altair_chart(chart, width="stretch")
        return
    ids_by_name = dict(zip(long["name"], long["run"], strict=True))
    # The selection in the key: a changed selection draws every chart afresh from it (a kept
    # chart would restore its own last selection and leave the group).
    chart_key = f"{key}_legend_{tag}_{'|'.join(options.shown)}"
    st.altair_chart(
        chart,
        width="stretch",
        key=chart_key,
        on_select=partial(_legend_picked, chart_key, tag, ids_by_name, options.group),
        selection_mode=[curve_charts.legend_param(tag), curve_charts.reset_param(tag)],
    )


def knn_empty_note(frames: Mapping[str, pd.DataFrame]) -> str:
    """What an empty k-NN panel says: why each ended run of the runs directory has no k-NN
    point (:func:`~dinodiag.dashboard.run_status.knn_absence`: none planned, ended before the
    first), else "No k-NN evaluation yet." (a run still going, a frame that is no run)."""
    root, reasons = runs.runs_root(), {}
    for run_id, frame in frames.items():
        path = root / run_id
        if run_id and (path / rundir.STATUS_FILE).is_file():
            reason = run_status.knn_absence(runs.read_run(path), config(path), frame)
            if reason is None:
                return "No k-NN evaluation yet."
            reasons[run_id] = reason
    if not reasons or len(reasons) < len(frames):
        return "No k-NN evaluation yet."
    if len(set(reasons.values())) == 1:
        return next(iter(reasons.values()))
    return " ".join(f"{run_id}: {reason}" for run_id, reason in reasons.items())


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
    chosen = options or CurveOptions()
    x = x or chosen.x
    smoothing = chosen.smoothing if smoothing is None else smoothing
    log_y = chosen.log_y if log_y is None else log_y
    starts = wall_starts(frames) if x == "wall" else None
    long = rc.long_frame(frames, which, x=x, smoothing=smoothing, starts=starts, names=names)
    no_x, off = long.attrs.get("no_x", []), long.attrs.get("off", [])
    st.markdown(f"**{which.title}**")
    if off:
        st.caption(f"Not drawn: {', '.join(off)}, 0 at every step (the term is off).")
    if long.empty:
        if no_x:
            st.caption("No wall time for these runs (no recorded start): choose another x axis.")
        else:
            st.caption("No points yet." if which.kind == "train" else knn_empty_note(frames))
        return
    dropped = 0
    if log_y and which.log_allowed:
        long, dropped = rc.positive_only(long)
    colors = colors or colours(list(long["run"].unique()))
    names_by_id = dict(zip(long["run"], long["name"], strict=True))
    selected = [names_by_id[r] for r in chosen.shown if r in names_by_id]
    style = {"x": x, "colors": colors, "ignore_outliers": chosen.ignore_outliers}
    style["selected"] = selected if chosen.group else None  # a page's selection, or the chart's
    style["log_y"] = bool(log_y and which.log_allowed)
    if long.empty:
        st.caption(f"All {dropped} point(s) are <= 0: the log scale cannot show them.")
        return
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
    notes = [which.help, KNN_NOTE if which.key == "knn" else "", note]
    if dropped:
        notes.append(f"{dropped} point(s) <= 0 left out by the log scale (KoLeo can be negative).")
    if no_x:
        notes.append(f"Not drawn, no wall time recorded: {', '.join(no_x)}.")
    if any(notes):
        st.caption(" ".join(n for n in notes if n))
    downloads(long, x, f"dinodiag-{which.key}", key=chart_key)


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
