"""The curve charts' view in the page URL, so that a reload or a shared link shows the same
charts: smoothing, x axis, log scale, outliers and the legend's selection (the runs shown).

    /training?smooth=0.8&x=epoch&log=1&show=20260509-220101-cpu-demo,20260509-221500-cpu-demo

Written only where a value differs from the default. :func:`view_from_query` checks every
value against what its widget accepts: a bad one is left out with a note, never an exception.
The sidebar's parameters (:mod:`dinodiag.dashboard.links`) and these never share a name;
:func:`page_params` picks these out of a URL so that the sidebar's writer keeps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dinodiag.dashboard.curves import X_AXES

SMOOTHING_RANGE = (0.0, 0.95)  # the slider's bounds (TensorBoard's EMA weight)
SMOOTHING_STEP = 0.05
SEPARATOR = ","  # between run ids in ``show`` (a run id never holds one)
PARAMS = ("smooth", "x", "log", "outliers", "show")


@dataclass(frozen=True)
class ChartView:
    """What the curve controls and the legends chose."""

    smoothing: float = 0.6  # EMA weight: 0 shows the raw points, 0.95 very smooth
    x: str = "step"  # a key of dinodiag.dashboard.curves.X_AXES
    log_y: bool = False
    ignore_outliers: bool = False  # y range from the 2nd to the 98th percentile
    shown: tuple[str, ...] = ()  # run ids the legends picked; () = every run


def view_to_query(view: ChartView) -> dict[str, str]:
    """The URL parameters of ``view``, defaults left out."""
    default = ChartView()
    query = {}
    if view.smoothing != default.smoothing:
        query["smooth"] = f"{view.smoothing:g}"
    if view.x != default.x:
        query["x"] = view.x
    if view.log_y:
        query["log"] = "1"
    if view.ignore_outliers:
        query["outliers"] = "1"
    if view.shown:
        query["show"] = SEPARATOR.join(view.shown)
    return query


def _flag(name: str, text: str, notes: list[str]) -> bool:
    if text in ("1", "0"):
        return text == "1"
    notes.append(f"`{name}={text}` is not 1 or 0.")
    return False


def view_from_query(params: Mapping[str, str]) -> tuple[ChartView, list[str]]:
    """``(view, notes)`` from a URL's parameters: each checked (smoothing in [0, 0.95] on
    the slider's 0.05 steps, x one of :data:`~dinodiag.dashboard.curves.X_AXES`, flags 1 or
    0); a bad value keeps its default and gets a note naming the parameter and the value."""
    default, notes = ChartView(), []
    smoothing = default.smoothing
    if "smooth" in params:
        try:
            number = float(params["smooth"])
        except ValueError:
            number = -1.0
        low, high = SMOOTHING_RANGE
        if low <= number <= high:
            smoothing = round(round(number / SMOOTHING_STEP) * SMOOTHING_STEP, 2)
        else:
            notes.append(f"`smooth={params['smooth']}` is not a number in [{low:g}, {high:g}].")
    x = params.get("x", default.x)
    if x not in X_AXES:
        notes.append(f"`x={x}` is not one of {', '.join(X_AXES)}.")
        x = default.x
    log_y = _flag("log", params["log"], notes) if "log" in params else False
    outliers = _flag("outliers", params["outliers"], notes) if "outliers" in params else False
    shown = tuple(dict.fromkeys(r for r in params.get("show", "").split(SEPARATOR) if r))
    return ChartView(smoothing, x, log_y, outliers, shown), notes


def page_params(params: Mapping[str, str]) -> dict[str, str]:
    """The chart-view parameters of a URL (:data:`PARAMS`), the others left out."""
    return {name: params[name] for name in PARAMS if name in params}


def toggled_ids(
    clicked: Sequence[str], ids_by_name: Mapping[str, str], before: Sequence[str]
) -> tuple[str, ...]:
    """The runs shown after a legend click on the ``clicked`` legend names: each one's run
    added to ``before`` (the page's selection) or, when in it, taken out; the runs of
    ``before`` that this chart does not draw are kept (a chart of two runs does not forget a
    third picked in another chart). () when none is left: every run shown again, the way a
    click on the last picked run ends in TensorBoard's run selector."""
    shown = list(dict.fromkeys(before))
    for run in dict.fromkeys(ids_by_name[n] for n in clicked if n in ids_by_name):
        if run in shown:
            shown.remove(run)
        else:
            shown.append(run)
    return tuple(shown)
