"""Training page, "Compare runs" tab: the runs table (filtered by name and state), any runs'
curves overlaid, the diff of their configs."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard import knn_verdict, run_status
from dinodiag.dashboard.run_names import short_names
from dinodiag.rundir import STATES
from dinodiag.runs.compare import config_diff, runs_table
from pages import _training_charts as charts


def compare_tab(all_runs: Sequence[runs.RunInfo]) -> None:
    if not all_runs:
        st.info("No runs to compare yet.", icon=":material/info:")
        return
    names = short_names([r.run_id for r in all_runs], {r.run_id: r.role for r in all_runs})
    text_box, state_box = st.columns([3, 4], vertical_alignment="bottom")
    text = text_box.text_input(
        "Filter runs",
        key="cmp_filter",
        placeholder="seed-fixed 0509",
        help="Every word must appear in the run's id, short name, pipeline or preset.",
    )
    states = state_box.pills(
        "State", list(STATES), selection_mode="multi", key="cmp_states", default=[]
    )
    shown = run_status.filter_runs(all_runs, text, states, names)
    if len(shown) < len(all_runs):
        st.caption(f"{len(shown)} of {len(all_runs)} runs match.")
    frames = {r.run_id: charts.metrics(r.path) for r in all_runs}
    st.dataframe(
        runs_table(shown, frames).assign(name=[names[r.run_id] for r in shown]),
        hide_index=True,
        key="cmp_table",
        column_config={
            "k-NN start (%)": st.column_config.NumberColumn(format="%.1f"),
            "best k-NN (%)": st.column_config.NumberColumn(format="%.1f"),
            "last k-NN (%)": st.column_config.NumberColumn(format="%.1f"),
            "message": st.column_config.TextColumn(width="large"),
            "name": st.column_config.TextColumn(help="The name the charts' legends use."),
        },
    )
    by_id = {r.run_id: r for r in all_runs}
    chosen_before = [i for i in st.session_state.get("cmp_runs", []) if i in by_id]
    options = list(dict.fromkeys([r.run_id for r in shown] + chosen_before))
    if "cmp_runs" in st.session_state:  # chosen before, or named by the page's link
        st.session_state["cmp_runs"] = chosen_before
    else:
        st.session_state["cmp_runs"] = [
            i for i in run_status.default_overlay(all_runs) if i in options
        ]
    chosen = st.multiselect(
        "Runs to overlay",
        options,
        key="cmp_runs",
        format_func=lambda i: f"{names[i]}  ·  {by_id[i].state}  ·  {i}",
        help="A run keeps its colour in every chart and page. In a chart, a click on a legend "
        "entry shows only that run, more clicks add or remove runs, a double click shows all.",
    )
    if not chosen:
        st.caption("Choose one or more runs.")
        return
    picked = [by_id[i] for i in chosen]
    metrics = st.multiselect(
        "Metrics", list(rc.OVERLAY_METRICS), default=["k-NN top-1", "total loss"], key="cmp_metrics"
    )
    selected_named = {names[i]: frames[i] for i in chosen}
    charts.verdicts(selected_named)
    for pair in knn_verdict.compare_verdicts(selected_named):
        st.markdown(pair.text)
    options_chosen = charts.controls("cmp")
    selected = {i: frames[i] for i in chosen}
    ln_k = charts.prototypes(picked)
    columns = st.columns(2)
    for n, label in enumerate(metrics):
        with columns[n % 2]:
            panel = rc.overlay_panel(label)
            charts.panel(
                selected, panel, options=options_chosen, ln_k=ln_k, names=names, key=f"cmp{n}"
            )
    st.markdown("**Config differences**")
    if len(chosen) < 2:
        st.caption("Choose two runs or more to see how their configs differ.")
        return
    diff = config_diff({i: charts.config(by_id[i].path) for i in chosen})
    if diff.empty:
        st.caption("The configs are identical.")
    else:
        st.dataframe(diff, key="cmp_diff")
