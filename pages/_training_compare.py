"""Training page, "Compare runs" tab: the runs table, any runs' curves overlaid, the diff of
their configs."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import curves as rc
from dinodiag.dashboard import run_status
from dinodiag.runs.compare import config_diff, runs_table
from pages import _training_charts as charts


def compare_tab(all_runs: Sequence[runs.RunInfo]) -> None:
    if not all_runs:
        st.info("No runs to compare yet.", icon=":material/info:")
        return
    frames = {r.run_id: charts.metrics(r.path) for r in all_runs}
    st.dataframe(
        runs_table(all_runs, frames),
        hide_index=True,
        key="cmp_table",
        column_config={
            "k-NN start (%)": st.column_config.NumberColumn(format="%.1f"),
            "best k-NN (%)": st.column_config.NumberColumn(format="%.1f"),
            "last k-NN (%)": st.column_config.NumberColumn(format="%.1f"),
            "message": st.column_config.TextColumn(width="large"),
        },
    )
    by_id = {r.run_id: r for r in all_runs}
    default = run_status.default_overlay(all_runs)
    chosen = st.multiselect("Runs to overlay", list(by_id), default=default, key="cmp_runs")
    if not chosen:
        st.caption("Choose one or more runs.")
        return
    picked = [by_id[i] for i in chosen]
    metrics = st.multiselect(
        "Metrics", list(rc.OVERLAY_METRICS), default=["k-NN top-1", "total loss"], key="cmp_metrics"
    )
    smoothing, x, log_y = charts.controls("cmp")
    selected = {i: frames[i] for i in chosen}
    ln_k = charts.prototypes(picked)
    columns = st.columns(2)
    for n, label in enumerate(metrics):
        with columns[n % 2]:
            panel = rc.overlay_panel(label)
            charts.panel(selected, panel, x=x, smoothing=smoothing, log_y=log_y, ln_k=ln_k)
    st.markdown("**Config differences**")
    if len(chosen) < 2:
        st.caption("Choose two runs or more to see how their configs differ.")
        return
    diff = config_diff({i: charts.config(by_id[i].path) for i in chosen})
    if diff.empty:
        st.caption("The configs are identical.")
    else:
        st.dataframe(diff, key="cmp_diff")
