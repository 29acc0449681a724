"""Home: what dinodiag is, what is selected now, the last verdict, where to go next."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dinodiag.dashboard import labels, saved_validations, sidebar
from pages import _shared as ui

ctx = ui.context()

st.title("dinodiag: why is my DINOv2 run not learning?")
st.markdown(
    "A DINOv2 run whose k-NN accuracy stays near chance is very often a **data pipeline** "
    "problem: global crops that cut too much, no local crops, local crops of the wrong size "
    "or scale. dinodiag shows you the crops your pipeline really makes, **measures** the "
    "scales it really samples, and **checks** everything against a reference recipe in one click."
)

st.subheader("What you are looking at")
st.markdown(
    f"- **Images:** {ctx.dataset_status}\n"
    f"- **Pipeline:** {ctx.pipeline_status}\n"
    f"- **Reference:** {sidebar.describe_config(ctx.reference_config)} · **seed** {ctx.seed}"
)
current = (ctx.pipeline_key, ctx.dataset_key, ctx.reference, ctx.seed)
report, checked = st.session_state.get(ui.REPORT_KEY), st.session_state.get("val_signature")
if report is None:  # a reload: the report saved on disk (saved_validations says why there)
    report, checked = saved_validations.latest(current) or (None, None)
stale = labels.validation_staleness(checked, current)
st.markdown(labels.last_validation(report, stale))

st.subheader("How to use it")
st.markdown(
    "**1.** In the sidebar, choose the **images** (built-in samples work out of the box), the "
    "**pipeline** (a preset, your YAML / DINOv2 config, or your own code as `file.py:factory`) "
    "and the **reference** to compare against. The choice stays the same on every page."
)
steps = [
    (
        "pages/inspector.py",
        "Crop inspector",
        ":material/crop:",
        "See every crop drawn on the source image and each view with its sampled parameters.",
    ),
    (
        "pages/statistics.py",
        "Sampled statistics",
        ":material/bar_chart:",
        "Draw hundreds of samples: crop scales against the configured and reference ranges.",
    ),
    (
        "pages/validation.py",
        "Validation",
        ":material/fact_check:",
        "Run every check in one click: pass / warn / fail with what to change.",
    ),
]
if (Path(__file__).parent / "your_run.py").exists():
    steps.append(
        (
            "pages/your_run.py",
            "Your run",
            ":material/folder_open:",
            "Open your DINOv2 output directory: a diagnosis, its curves and checkpoints.",
        )
    )
if (Path(__file__).parent / "training.py").exists():
    steps.append(
        (
            "pages/training.py",
            "Training",
            ":material/model_training:",
            "Train briefly with two pipelines and see which one learns.",
        )
    )
PER_ROW = 3  # five cards in one row cut "Sampled statistics" to "Sampled statis" at 1400 px
for number, (page, title, icon, text) in enumerate(steps, 2):
    if (number - 2) % PER_ROW == 0:
        columns = st.columns(PER_ROW)
    with columns[(number - 2) % PER_ROW].container(border=True):
        st.page_link(page, label=f"**{number}. {title}**", icon=icon)
        st.caption(text)

with st.expander("The story behind it: four bugs that stopped a DINOv2 run from learning"):
    st.markdown(
        "A researcher's run stayed under 5% k-NN accuracy after 30+ epochs. The pipeline had "
        "**(1)** global crop scale 0.2–1.0 instead of 0.32 / 0.4–1.0, **(2)** no local crops at "
        "all "
        "(2 views instead of 2 + 8), **(3)** local crops of 32 px instead of 96 px, **(4)** local "
        "scale 0.05–0.2 instead of 0.05–0.32 / 0.4. Its proposed check looked at output tensors "
        "only (count, size, range, NaN) and could not see errors 1 and 4. Try the presets "
        "`seed-broken` and `seed-fixed`: the second still has 96 px globals **and** locals, "
        "which removes the small-to-large asymmetry multi-crop relies on; the checks flag it."
    )
