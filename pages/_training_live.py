"""Training page, "Live" tab: pick a run, control it, watch it (a fragment that refreshes
every 2 s while the run is queued or running, and stops refreshing when it ends)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pandas as pd
import streamlit as st

from dinodiag import rundir, runs
from dinodiag.dashboard import run_status, sidebar
from dinodiag.errors import DinodiagError
from dinodiag.runs.compare import metrics_json, metrics_summary
from pages import _training_charts as charts

RUN_KEY = "tr_run"  # session_state: the run id shown in the live tab
PENDING_KEY = "tr_pending_run"  # session_state: a run to select on the next script run
REFRESH_SECONDS = 2.0
ICONS = {"error": ":material/error:", "warning": ":material/warning:", "info": ":material/info:"}


def pick_run(all_runs: Sequence[runs.RunInfo]) -> runs.RunInfo | None:
    """The run selector (a just-started run is selected); None when there is no run."""
    if not all_runs:
        st.info(
            f"No run yet in `{runs.runs_root()}`. Start one in **New run**, or press "
            "**Run the seed story** (in **Yours vs reference**) to train the broken and the "
            "fixed pipeline one after the other.",
            icon=":material/info:",
        )
        return None
    by_id = {r.run_id: r for r in all_runs}
    pending = st.session_state.pop(PENDING_KEY, None)
    shown = run_status.selected_run(all_runs, st.session_state.get(RUN_KEY), pending)
    labels = {i: run_status.run_label(info) for i, info in by_id.items()}
    # The browser keeps a selectbox's text while its key stays, even when the labels change
    # ("running" after the run ended): a key made of the labels gives a new widget then.
    key = f"tr_run_pick:{sidebar.short_hash(json.dumps(labels))}:{shown}"
    ids = list(by_id)
    run_id = st.selectbox("Run", ids, index=ids.index(shown), key=key, format_func=labels.get)
    st.session_state[RUN_KEY] = run_id
    return by_id[run_id]


def actions(info: runs.RunInfo) -> None:
    """Stop / resume / download / delete buttons for the selected run."""
    cols = st.columns([1, 2, 1, 1, 1, 1.3], vertical_alignment="bottom")
    if cols[0].button(
        "Stop",
        key="tr_stop",
        icon=":material/stop_circle:",
        disabled=not info.active,
        type="primary" if info.active else "secondary",
    ):
        st.toast(f"{info.run_id}: {runs.stop_run(info.path)}")
        st.rerun()
    resumable = not info.active and info.has_checkpoint
    more = cols[1].number_input(
        "Resume for (steps)",
        0,
        10**7,
        100,
        step=50,
        key="tr_more",
        disabled=not resumable,
        help="Train this many steps past the checkpoint, without time limit. 0 continues the "
        "run as planned (a run stopped early).",
    )
    if cols[2].button(
        "Resume", key="tr_resume", icon=":material/play_circle:", disabled=not resumable
    ):
        try:
            runs.resume_run(info.path, more_steps=int(more) or None)
            st.rerun()
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
    frame = charts.metrics(info.path)
    cols[3].download_button(
        "CSV",
        frame.to_csv(index=False),
        file_name=f"{info.run_id}-metrics.csv",
        mime="text/csv",
        icon=":material/download:",
        key="tr_csv",
        disabled=frame.empty,
    )
    cols[4].download_button(
        "JSON",
        metrics_json(info.path),
        file_name=f"{info.run_id}-metrics.json",
        mime="application/json",
        icon=":material/download:",
        key="tr_json",
        disabled=frame.empty,
    )
    if cols[5].button(
        "Delete…",
        key="tr_delete",
        icon=":material/delete:",
        disabled=info.active,
        help="Stop it first" if info.active else None,
    ):
        st.session_state["tr_delete_ask"] = info.run_id
        st.rerun()


def delete_control(info: runs.RunInfo) -> None:
    """The confirmation step of a delete (refused while the run is active)."""
    if st.session_state.get("tr_delete_ask") != info.run_id:
        return
    st.warning(
        f"Delete **{info.run_id}** and everything in `{info.path}` (metrics, "
        "checkpoint)? This cannot be undone.",
        icon=":material/warning:",
    )
    yes, no = st.columns([1, 6])
    if yes.button("Yes, delete", key="tr_delete_yes", type="primary"):
        try:
            runs.delete_run(info.path)
            st.toast(f"deleted {info.run_id}")
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
        st.session_state.pop("tr_delete_ask", None)
        st.rerun()
    if no.button("Cancel", key="tr_delete_no"):
        st.session_state.pop("tr_delete_ask", None)
        st.rerun()


def header(info: runs.RunInfo, frame: pd.DataFrame) -> None:
    """State, progress bar (step, epoch, ETA) and the headline numbers."""
    st.markdown(f"{charts.badge(info.state)} **{info.run_id}** · {info.message}")
    progress = run_status.run_progress(info, metrics_summary(frame)["elapsed"] or 0.0)
    if progress is not None:
        st.progress(progress[0], text=progress[1])
    metrics = run_status.run_metrics(info, frame)
    widths = [2.6] + [1] * (len(metrics) - 1)  # the k-NN tile says its noise: room for it
    for column, metric in zip(st.columns(widths), metrics, strict=True):
        column.metric(
            metric.label,
            metric.value,
            metric.delta,
            metric.delta_color,
            help=metric.help,
        )
    charts.verdicts({info.run_id: frame})


def alerts(info: runs.RunInfo) -> None:
    """The failure reason and the run's alerts (latest per kind), prominently."""
    if info.state == "failed":
        st.error(f"**The run failed.** {info.message}", icon=":material/error:")
        tail = runs.console_tail(info.path, 20)
        if tail:
            with st.expander("Console output (last lines)"):
                st.code(tail, language=None)
    for level, text in run_status.event_alerts(rundir.read_events(info.path)):
        getattr(st, level)(text, icon=ICONS[level])


def live_view(info: runs.RunInfo) -> None:
    """The live fragment: refreshes every 2 s while the run is active, never once it ended."""

    @st.fragment(run_every=REFRESH_SECONDS if info.active else None)
    def view() -> None:
        now = runs.read_run(info.path) if info.path.exists() else info
        if now.active != info.active:
            st.rerun()  # started or ended: the whole page reruns (timer on / off, table)
        frame = charts.metrics(now.path)
        header(now, frame)
        alerts(now)
        absent = run_status.knn_absence(now, rundir.read_config(now.path), frame)
        if absent:  # said above the charts, whose k-NN panel would say "yet"
            st.info(absent, icon=":material/info:")
        charts.all_panels({now.run_id: frame}, [now], key="live")

    view()
