"""One curve panel of the training pages as data: the options the controls chose, the points
a panel draws and what its captions say, its legend selection, and why an empty k-NN panel
is empty, decided without Streamlit (``pages/_training_charts.py`` draws them).

    options = CurveOptions(smoothing=0.6, x="step", group="live")
    points = panel_points(frames, PANELS["loss"], options)
    points.empty_note()                         # None: there is something to draw
    knn_empty_note(frames, runs_root())         # points.no_knn: why (none planned, ...)
    curve_chart(points.long, **chart_style(points, options, colors), rules=...)
    points.caption(PANELS["loss"])              # the hint and what was left out
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dinodiag import rundir
from dinodiag.dashboard import chart_view, curve_charts, run_status
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.run_names import run_colors

KNN_NOTE = (
    "Shaded: each evaluation's 95% interval on its test images (binomial); grey: the change "
    "from step 0 that is still noise. The y axis never zooms narrower than that noise."
)
NO_KNN_YET = "No k-NN evaluation yet."


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

    def given(
        self, x: str | None = None, smoothing: float | None = None, log_y: bool | None = None
    ) -> CurveOptions:
        """These options with a panel's own x axis, smoothing or log scale where given."""
        return dataclasses.replace(
            self,
            x=x or self.x,
            smoothing=self.smoothing if smoothing is None else smoothing,
            log_y=self.log_y if log_y is None else log_y,
        )

    @property
    def view(self) -> chart_view.ChartView:
        """What the page URL keeps of these options (:mod:`dinodiag.dashboard.chart_view`)."""
        return chart_view.ChartView(
            self.smoothing, self.x, self.log_y, self.ignore_outliers, self.shown
        )


def shown_key(group: str) -> str:
    """The session key of a group's legend selection (run ids)."""
    return f"{group}_shown"


def control_values(key: str, view: chart_view.ChartView) -> dict[str, Any]:
    """The controls' widget values of ``view``, by widget key (``key`` names the group)."""
    return {
        f"{key}_smooth": view.smoothing,
        f"{key}_x": view.x,
        f"{key}_log": view.log_y,
        f"{key}_outliers": view.ignore_outliers,
        shown_key(key): view.shown,
    }


def url_changes(
    view: chart_view.ChartView, current: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """``(set, delete)``: the chart parameters of the page URL ``current`` to set and to
    remove so that it holds ``view`` (the other parameters untouched; nothing when equal)."""
    query = chart_view.view_to_query(view)
    changed = {
        name: query[name]
        for name in chart_view.PARAMS
        if name in query and current.get(name) != query[name]
    }
    gone = [name for name in chart_view.PARAMS if name not in query and name in current]
    return changed, gone


def legend_selection(
    event: Mapping[str, Any] | None,
    tag: str,
    ids_by_name: Mapping[str, str],
    before: Sequence[str],
) -> tuple[str, ...]:
    """The group's runs shown after a legend event of chart ``tag`` (Streamlit's selection
    state of the chart): a click reports the clicked run alone and toggles it
    (:func:`~dinodiag.dashboard.chart_view.toggled_ids`); a double click empties the
    legend's selection (a click always reports its run): every run shown again, ()."""
    selection = (event or {}).get("selection") or {}
    points = selection.get(curve_charts.legend_param(tag)) or []
    clicked = [p.get("name") for p in points if isinstance(p, dict)]
    if not clicked:
        return ()
    return chart_view.toggled_ids(clicked, ids_by_name, before)


def legend_chart_key(key: str, tag: str, shown: Sequence[str]) -> str:
    """A grouped chart's widget key, the group's selection in it: a changed selection draws
    every chart afresh from it (a kept chart would restore its own last selection)."""
    return f"{key}_legend_{tag}_{'|'.join(shown)}"


def colours(known: Sequence[str], series: Sequence[str]) -> dict[str, str]:
    """Each run's colour (:func:`~dinodiag.dashboard.run_names.run_colors` over every
    ``known`` run, so a run keeps its colour whichever runs a chart shows); ``series`` that
    are no known run get colours none of them has."""
    known_set = set(known)
    return run_colors(list(known), extra=[s for s in series if s not in known_set])


@dataclass(frozen=True)
class PanelPoints:
    """What one panel draws: its long frame and what was left out of it."""

    long: pd.DataFrame  # curves.long_frame rows, positive only on a log scale
    kind: str  # the panel's rows: "train" or "eval" (k-NN)
    off: tuple[str, ...] = ()  # loss terms 0 at every step (switched off): not drawn
    no_x: tuple[str, ...] = ()  # runs without a recorded start, on the wall-time axis
    dropped: int = 0  # points <= 0 the log scale left out
    log_y: bool = False  # drawn on a log scale (asked, and the panel allows it)

    @property
    def no_knn(self) -> bool:
        """Whether the panel is empty for want of k-NN points (an eval panel with nothing to
        draw, not for want of a wall time): :func:`knn_empty_note` says why."""
        return self.long.empty and self.kind == "eval" and not self.dropped and not self.no_x

    def empty_note(self) -> str | None:
        """What the panel says in place of a chart (None: there are points)."""
        if not self.long.empty:
            return None
        if self.dropped:
            return f"All {self.dropped} point(s) are <= 0: the log scale cannot show them."
        if self.no_x:
            return "No wall time for these runs (no recorded start): choose another x axis."
        return "No points yet." if self.kind == "train" else NO_KNN_YET

    def off_note(self) -> str | None:
        """The caption over the chart naming the terms switched off, None when none is."""
        if not self.off:
            return None
        return f"Not drawn: {', '.join(self.off)}, 0 at every step (the term is off)."

    def caption(self, panel: rc.Panel, note: str = "") -> str:
        """The caption under the chart: the panel's hint, the k-NN band's, ``note`` and what
        was left out ("" when there is nothing to say)."""
        notes = [panel.help, KNN_NOTE if panel.key == "knn" else "", note]
        if self.dropped:
            notes.append(
                f"{self.dropped} point(s) <= 0 left out by the log scale (KoLeo can be negative)."
            )
        if self.no_x:
            notes.append(f"Not drawn, no wall time recorded: {', '.join(self.no_x)}.")
        return " ".join(n for n in notes if n)


def panel_points(
    frames: Mapping[str, pd.DataFrame],
    panel: rc.Panel,
    options: CurveOptions,
    *,
    starts: Mapping[str, float | None] | None = None,
    names: Mapping[str, str] | None = None,
) -> PanelPoints:
    """The points ``panel`` draws of the runs' metrics ``frames`` with ``options`` (x axis,
    smoothing, log scale); ``starts``: each run's start for the wall-time axis; ``names``:
    short names by run id."""
    long = rc.long_frame(
        frames, panel, x=options.x, smoothing=options.smoothing, starts=starts, names=names
    )
    off, no_x = tuple(long.attrs.get("off", [])), tuple(long.attrs.get("no_x", []))
    log_y = bool(options.log_y and panel.log_allowed)
    dropped = 0
    if log_y and not long.empty:
        long, dropped = rc.positive_only(long)
    return PanelPoints(long, panel.kind, off, no_x, dropped, log_y)


def chart_style(
    points: PanelPoints, options: CurveOptions, colors: Mapping[str, str]
) -> dict[str, Any]:
    """The keyword arguments of :func:`~dinodiag.dashboard.curve_charts.curve_chart` and
    ``metric_charts`` for ``points``: x axis, colours, log scale, outliers, and the group's
    legend selection as the charts' short names (None: each chart picks on its own)."""
    names_by_id = dict(zip(points.long["run"], points.long["name"], strict=True))
    selected = [names_by_id[r] for r in options.shown if r in names_by_id]
    return {
        "x": options.x,
        "colors": colors,
        "ignore_outliers": options.ignore_outliers,
        "selected": selected if options.group else None,
        "log_y": points.log_y,
    }


def knn_empty_note(
    frames: Mapping[str, pd.DataFrame],
    root: Path,
    config_of: Callable[[Path], Mapping | None] = rundir.read_config,
) -> str:
    """What an empty k-NN panel says: why each ended run of the runs directory ``root`` has
    no k-NN point (:func:`~dinodiag.dashboard.run_status.knn_absence`: none planned, ended
    before the first), else :data:`NO_KNN_YET` (a run still going, a frame that is no run).
    ``config_of``: a run folder's config.json (the page passes its cached reader)."""
    reasons = {}
    for run_id, frame in frames.items():
        path = root / run_id
        if run_id and (path / rundir.STATUS_FILE).is_file():
            reason = run_status.knn_absence(rundir.read_run(path), config_of(path), frame)
            if reason is None:
                return NO_KNN_YET
            reasons[run_id] = reason
    if not reasons or len(reasons) < len(frames):
        return NO_KNN_YET
    if len(set(reasons.values())) == 1:
        return next(iter(reasons.values()))
    return " ".join(f"{run_id}: {reason}" for run_id, reason in reasons.items())
