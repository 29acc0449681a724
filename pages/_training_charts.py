"""Training page glue: cached reads of run directories and the curve panels.

Not a page. Shared by the live view, the comparison and the seed story; the curve logic
(smoothing, x axis, long frames, Altair specs) lives in ``dinodiag.dashboard.curves``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from dinodiag.dashboard import curves as rc
from dinodiag.dashboard.labels import status_badge
from dinodiag.runs.manager import RunInfo
from dinodiag.train import rundir


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


def prototypes(infos: Sequence[RunInfo]) -> dict[str, int]:
    """K (number of prototypes) per run, for the ln K line."""
    return rc.prototypes({info.run_id: config(info.path) for info in infos})


def controls(key: str) -> tuple[float, str, bool]:
    """Smoothing, x axis and log scale widgets: ``(smoothing, x, log_y)``."""
    left, middle, right = st.columns([3, 2, 2], vertical_alignment="bottom")
    smoothing = left.slider(
        "Smoothing",
        0.0,
        0.95,
        0.6,
        0.05,
        key=f"{key}_smooth",
        help="Exponential moving average, as in TensorBoard: 0 shows the raw points.",
    )
    x = middle.segmented_control(
        "x axis",
        list(rc.X_AXES),
        default="step",
        key=f"{key}_x",
        format_func=lambda v: {"time": "wall time"}.get(v, v),
    )
    log_y = right.toggle("Log scale for losses", key=f"{key}_log")
    return smoothing, x or "step", log_y


def panel(
    frames: Mapping[str, pd.DataFrame],
    which: rc.Panel,
    *,
    x: str,
    smoothing: float,
    log_y: bool,
    ln_k: Mapping[str, int] | None = None,
    width: int = 190,
    colors: Mapping[str, str] | None = None,
) -> None:
    """One titled chart (or small multiples) with its reference lines and a hint below."""
    long = rc.long_frame(frames, which, x=x, smoothing=smoothing if which.kind == "train" else 0)
    st.markdown(f"**{which.title}**")
    if long.empty:
        st.caption("No points yet." if which.kind == "train" else "No k-NN evaluation yet.")
        return
    if which.separate:
        st.altair_chart(rc.small_multiples(long, x=x, width=width), width="content")
    else:
        rules = rc.reference_lines(which, frames, ln_k or {})
        log = log_y and which.log_allowed
        dropped = 0
        if log:
            long, dropped = rc.positive_only(long)
        chart = rc.curve_chart(long, x=x, log_y=log, rules=rules, colors=colors)
        st.altair_chart(chart, width="stretch")
        if dropped:
            st.caption(f"{dropped} point(s) ≤ 0 hidden by the log scale (KoLeo can be negative).")
    st.caption(which.help)


def all_panels(frames: Mapping[str, pd.DataFrame], infos: Sequence[RunInfo], key: str) -> None:
    """Every panel of the live view in a grid, with the shared controls."""
    smoothing, x, log_y = controls(key)
    options = {"x": x, "smoothing": smoothing, "log_y": log_y, "ln_k": prototypes(infos)}
    left, right = st.columns(2)
    with left:
        panel(frames, rc.PANELS["loss"], **options)
    with right:
        panel(frames, rc.PANELS["knn"], **options)
    left, right = st.columns(2)
    with left:
        panel(frames, rc.PANELS["entropy"], **options)
    with right:
        panel(frames, rc.PANELS["speed"], **options, width=170)
    panel(frames, rc.PANELS["features"], **options, width=240)
    panel(frames, rc.PANELS["schedules"], **options, width=160)
