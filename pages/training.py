"""Training: short DINOv2 runs launched as their own processes, watched live, compared, and
looked inside. The run directories are the truth (``runs/`` or ``$DINODIAG_RUNS_DIR``): the
page finds its runs again after a page switch, a closed browser or an app restart.
"""

from __future__ import annotations

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import links
from dinodiag.runs.devices import device_summary
from pages import _shared as ui
from pages import _training_compare as compare
from pages import _training_form as form
from pages import _training_inspect as look
from pages import _training_live as live
from pages import _training_versus as versus

TABS = list(links.TRAINING_TABS)  # the URL names the open one (?tab=Compare+runs)
TAB_KEY = "tr_tab"

ctx = ui.context()
st.title("Training")
st.markdown(
    "Does **your** pipeline let the model **learn**? Train the sidebar's pipeline briefly and "
    "watch the k-NN accuracy on held-out images: a working recipe climbs above its step-0 "
    "(random weights) baseline, a broken one stays near it; *Yours vs reference* trains the "
    "reference beside it. Each run is its own process writing to a run directory."
)
st.caption(f"Device: {device_summary()} · runs in `{runs.runs_root()}`")

all_runs = runs.list_runs()
goto = st.session_state.pop(form.GOTO_KEY, None)
if goto in TABS:
    st.session_state[TAB_KEY] = goto
# Stateful tabs: only the open tab runs (the live fragment refreshes only while it is shown).
tabs = dict(zip(TABS, st.tabs(TABS, key=TAB_KEY, on_change="rerun"), strict=True))

if tabs["Live"].open:
    with tabs["Live"]:
        info = live.pick_run(all_runs)
        if info is not None:
            live.actions(info)
            live.delete_control(info)
            live.live_view(info)

if tabs["New run"].open:
    with tabs["New run"]:
        form.new_run_tab(ctx, all_runs)

if tabs["Yours vs reference"].open:
    with tabs["Yours vs reference"]:
        versus.versus_tab(ctx, all_runs)

if tabs["Compare runs"].open:
    with tabs["Compare runs"]:
        compare.compare_tab(all_runs)

if tabs["Look inside"].open:
    with tabs["Look inside"]:
        look.inspect_tab(ctx, all_runs)
ui.keep_place("training")  # the tab and the run(s) shown: a reload or a link comes back here
