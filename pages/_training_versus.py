"""Training page, "Seed story" tab: the seed's broken and fixed pipelines trained on the same
generated data with the same model and budget, one after the other, overlaid."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import sidebar
from dinodiag.errors import DinodiagError
from dinodiag.runs import story
from pages import _training_charts as charts
from pages._training_live import REFRESH_SECONDS

STORY_KNN = dataclasses.replace(
    charts.rc.PANELS["knn"], title="k-NN top-1 on held-out images (%)", columns=("knn_top1",)
)
STORY_ENTROPY = dataclasses.replace(
    charts.rc.PANELS["entropy"],
    title="Teacher entropy against ln K",
    columns=("teacher_entropy",),
    help="Per-image entropy of the teacher's output; near ln K "
    "(dashed) its targets are almost uniform and teach little.",
)
COLORS = {"broken": "#d62728", "fixed": "#2ca02c"}  # red / green in every story chart


def story_tab(all_runs: Sequence[runs.RunInfo]) -> None:
    st.markdown(
        "The seed's researcher trained for 30+ epochs and the k-NN accuracy stayed under 5%. "
        "Here the same mistake takes minutes to see: **two short runs** on the same generated "
        "shapes, with the same model, seed and number of steps (the same images seen). Only "
        "the crops differ."
    )
    specs = story.story_specs(story.STORY_PRESET, story.STORY_STEPS)
    cols = st.columns(2)
    for col, (role, spec) in zip(cols, specs.items(), strict=True):
        with col.container(border=True):
            st.markdown(f"**{story.ROLE_LABELS[role]}**")
            assert spec.pipeline is not None
            st.caption(sidebar.describe_config(spec.pipeline))
    st.caption(
        "The seed's recipes at 96 px, scaled to the cpu-demo's 32 px crops: counts and scales "
        "are the seed's (broken: 2 views, global scale 0.2–1, no local crops; fixed: 2 + 8 local "
        "crops, 0.4–1 / 0.05–0.4, locals as large as globals, as in the seed). The fixed run "
        "computes 10 views per image instead of 2: it takes about twice as long on a 2-core CPU."
    )
    left, right = st.columns(2)
    steps = left.number_input(
        "Steps per run",
        10,
        5000,
        story.STORY_STEPS,
        step=50,
        key="story_steps",
        help="k-NN is measured at step 0 and five more times.",
    )
    mode = right.radio(
        "Schedule",
        ["queue", "together"],
        key="story_mode",
        horizontal=True,
        format_func={
            "queue": "one after the other (best on a CPU)",
            "together": "both at once",
        }.get,
    )
    if mode == "together":
        st.warning(
            "Both runs at once share the cores: each gets half of them and runs about "
            "half as fast.",
            icon=":material/warning:",
        )
    active = [r for r in all_runs if r.active]
    if active:
        st.warning(
            f"{len(active)} run(s) already active: the story's runs will share the "
            "machine with them.",
            icon=":material/warning:",
        )
    if st.button(
        "Run the seed story", key="story_start", type="primary", icon=":material/science:"
    ):
        try:
            story.start_story(int(steps), together=mode == "together")
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        st.rerun()
    story_results(story.latest_story(all_runs))


def story_results(members: dict[str, runs.RunInfo]) -> None:
    if not members:
        return
    active = any(r.active for r in members.values())

    @st.fragment(run_every=REFRESH_SECONDS if active else None)
    def view() -> None:
        now = {
            role: runs.read_run(info.path) for role, info in members.items() if info.path.exists()
        }
        if any(r.active for r in now.values()) != active:
            st.rerun()
        st.subheader(f"Latest story: {next(iter(now.values())).story if now else ''}")
        for role, info in now.items():
            total = f"/{info.total_steps}" if info.total_steps else ""
            st.markdown(
                f"{charts.badge(info.state)} **{story.ROLE_LABELS[role]}** · `{info.run_id}` · "
                f"step {info.step}{total} · {info.message}"
            )
        frames = {role: charts.metrics(info.path) for role, info in now.items()}
        infos = [dataclasses.replace(i, run_id=role) for role, i in now.items()]
        if not active and set(now) == set(story.STORY_PIPELINES):
            level, text = story.story_verdict(frames["broken"], frames["fixed"])
            getattr(st, level)(text)
        smoothing, x, log_y = charts.controls("story")
        options = {
            "x": x,
            "smoothing": smoothing,
            "log_y": log_y,
            "ln_k": charts.prototypes(infos),
            "colors": COLORS,
        }
        left, right = st.columns(2)
        with left:
            charts.panel(frames, STORY_KNN, **options)
        with right:
            charts.panel(frames, STORY_ENTROPY, **options)

    view()
