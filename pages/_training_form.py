"""Training page, "New run" tab: the launch form (data and pipeline from the sidebar, a
training preset, the important knobs), validated before anything starts, with a time estimate
measured on this machine.

The run trains the sidebar's pipeline by default: its recipe, or its code when the server
allows code from the browser (``dinodiag.dashboard.security``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import pipeline_pick, run_status, security
from dinodiag.dashboard.context import SidebarContext, spec_stamp
from dinodiag.dashboard.launch_form import (
    ARCH_FIELD,
    FORM_ROWS,
    estimate_answer,
    estimate_key,
    in_form_words,
    knob_start,
    number_widget,
    plan_cache_key,
    running_jobs,
    trains_code,
)
from dinodiag.dashboard.pipeline_pick import PipelinePick, crop_sizes, data_offer
from dinodiag.dashboard.run_status import active_runs_warning
from dinodiag.errors import DinodiagError
from dinodiag.recipe.config import ARCHS, TrainConfig
from dinodiag.recipe.plan import RunPlan
from dinodiag.recipe.presets import TRAIN_PRESETS
from dinodiag.runs import estimates
from dinodiag.runs.devices import device_choices, gpu_warning
from dinodiag.runs.run_plan import LAUNCH_PRESETS, plan_run, preset_plan
from pages import _shared as ui

GOTO_KEY = "tr_goto"  # session_state: the tab to open on the next script run
ESTIMATES_KEY = "tr_estimates"  # session_state: {plan key: {"job": folder} | {"text"} | {"error"}}


@st.cache_resource(show_spinner="Measuring your pipeline on the training images…", max_entries=16)
def cached_plan(key: str, stamp: float, _base: TrainConfig, _changes: dict, label: str) -> RunPlan:
    """``plan_run`` of a config that trains code: it imports and calls the code, so it runs
    once per config and file version (``stamp``: the file's modification time)."""
    return plan_run(_base, _changes, label=label)


def plan_of(
    base: TrainConfig, changes: dict[str, Any], recipe: Any = None, label: str = ""
) -> RunPlan:
    """The validated plan of ``base`` with ``changes`` (cached when it trains your code).
    Raises DinodiagError."""
    if trains_code(base, recipe):
        stamp = spec_stamp(base.data.pipeline)
        return cached_plan(plan_cache_key(base, changes), stamp, base, changes, label)
    return plan_run(base, changes, recipe=recipe, label=label)


def data_choice(ctx: SidebarContext, preset_data: str, key: str = "tr_data") -> str:
    """The dataset radio: the sidebar's dataset or the training preset's."""
    offer = data_offer(ctx, preset_data)
    choice = st.radio(
        "Training data",
        list(offer.options),
        format_func=offer.options.get,
        horizontal=True,
        index=list(offer.options).index(offer.default),
        key=key,
    )
    if offer.sidebar_spec is None:
        st.caption(f"Sidebar: {offer.sidebar_line}.")
    elif choice == "sidebar" and offer.unlabelled:
        st.info(
            "These images have no labels: the run trains, but k-NN accuracy (the clearest "
            "sign of learning) cannot be measured.",
            icon=":material/info:",
        )
    return offer.data(choice)


def pipeline_choice(
    ctx: SidebarContext, preset_pipeline: Any, key: str = "tr_pipe", preset: str = "the preset"
) -> PipelinePick:
    """The pipeline radio, the sidebar's first (:func:`pipeline_pick.pipeline_offer`): its
    recipe, or its code (allowed on this server or not), or the preset's recipe. Says in the
    form which one trains."""
    allowed = security.browser_code_allowed(os.environ)
    offer = pipeline_pick.pipeline_offer(ctx, preset_pipeline, preset, code_allowed=allowed)
    if offer.state == "locked":
        st.info(
            "The sidebar pipeline is your own code. This server runs code from the browser "
            f"only when allowed: {security.HOW_TO_ALLOW}. From a terminal: `python -m "
            f"dinodiag train --pipeline {offer.code or 'my_augment.py:build_transform'}` (with "
            "`--pipeline-kwargs`).",
            icon=":material/lock:",
        )
        ok = st.checkbox(
            f"Train the preset's pipeline ({preset_pipeline.name}) instead", key=key + "_ok"
        )
        return offer.pick(confirmed=ok)
    if offer.state == "broken":
        st.warning(
            "The sidebar pipeline has an error (see the sidebar); the preset's pipeline is used.",
            icon=":material/warning:",
        )
        return offer.pick()
    choice = st.radio(
        "Pipeline (crops)",
        list(offer.options),
        format_func=offer.options.get,
        key=key,
        help="Your code makes the crops: their counts and sizes are measured on the training "
        "images, and the ViT patch adapts when your crop sizes need it."
        if offer.code
        else "The sidebar's recipe keeps its counts, scales and photometric augmentations; "
        "its crop sizes are scaled to the preset's.",
    )
    if choice == "sidebar" and offer.code:
        st.caption(
            f"This run trains **your code** `{offer.code}` as the inspector runs it (every view "
            "recorded); the crop knobs are your code's."
        )
    return offer.pick(choice)  # a recipe: what_trains says it under the knobs


def knobs(
    preset: str, pipeline: Any, preset_pipeline: Any, code: RunPlan | None = None
) -> dict[str, Any]:
    """The knob widgets, ``{"section.field": value}`` (0 = no limit for the step cap and the
    time budget), keyed per preset and pipeline so that their defaults follow them. With
    ``code`` (the plan of your own pipeline) the crop knobs are your code's: not shown, and
    the patch starts at the size that fits its crops."""
    d, k = knob_start(preset, pipeline, preset_pipeline, code)
    out: dict[str, Any] = {}
    for row in FORM_ROWS:
        c = st.columns(len(row))
        for col, knob in zip(c, row, strict=True):
            if knob.field == ARCH_FIELD:
                index = ARCHS.index(d[ARCH_FIELD])
                out[ARCH_FIELD] = col.selectbox(knob.label, ARCHS, index=index, key=k + knob.key)
            elif not (knob.crop and code):
                out[knob.field] = col.number_input(knob.label, **number_widget(knob, d, k))
        if code is not None and any(knob.crop for knob in row):
            c[0].caption(f"Crops: your code's, measured: {crop_sizes(code.pipeline)}.")
            if code.adapted:
                c[1].caption(f"ViT {code.adapted}.")
    devices = device_choices()
    c = st.columns([2, 2])
    out["run.device"] = c[0].selectbox(
        "Device", list(devices), format_func=devices.get, key="tr_device"
    )
    out["label"] = c[1].text_input(
        "Run name (optional)", key="tr_label", max_chars=40, placeholder=preset
    )
    return out


def estimate_box(plan: RunPlan, key: str) -> None:
    """A button that measures the run here in a process of its own (set-up, a few steps, a
    k-NN evaluation: ``dinodiag.runs.estimates``), its stage and the time left while it runs,
    then the sentence of what fits in the budget and whether that is long enough to judge
    against the k-NN noise (``dinodiag.train.knn_horizon``)."""
    wanted = estimate_key(plan)
    found = st.session_state.setdefault(ESTIMATES_KEY, {}).get(wanted)
    if st.button(
        "Estimate the time",
        key=key,
        icon=":material/timer:",
        help="Starts the run as it will start (imports, data, networks, the step-0 k-NN), "
        "times a few steps and a k-NN evaluation, and writes nothing in the runs folder.",
        disabled=bool(found and "job" in found),
    ):
        for other, job in running_jobs(st.session_state[ESTIMATES_KEY]).items():
            estimates.discard(job)  # one estimate at a time: the machine measures one run
            del st.session_state[ESTIMATES_KEY][other]
        try:
            found = {"job": str(estimates.start_estimate(plan))}
        except DinodiagError as exc:
            found = {"error": str(exc)}
        st.session_state[ESTIMATES_KEY][wanted] = found
        st.rerun()  # drawn again: the button off while it measures, the progress under it
    if found is None:
        st.caption(
            "The time budget counts from the start of the training process: the set-up and "
            "every k-NN evaluation are in it. *Estimate the time* measures them here."
        )
    elif "job" in found:
        estimate_progress(plan, wanted, Path(found["job"]))
    elif "error" in found:
        st.error(found["error"], icon=":material/error:")
    else:
        st.info(found["text"], icon=":material/timer:")


def estimate_progress(plan: RunPlan, wanted: str, job: Path) -> None:
    """The running estimate: its stage and the time left, read every second (the estimate runs
    in its own process); its answer kept in the session once it comes."""

    ui.follow_job(
        lambda: estimates.read_estimate(job),
        lambda status: f"Estimating: {status.line()}",
        lambda status: estimate_answer(status, plan, runs.runs_root()),
        lambda found: st.session_state[ESTIMATES_KEY].__setitem__(wanted, found),
        lambda: estimates.discard(job),
    )


def new_run_tab(ctx: SidebarContext, all_runs: Sequence[runs.RunInfo]) -> None:
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = st.selectbox("Training preset", list(names), format_func=names.get, key="tr_preset")
    own = preset_plan(preset)
    data = data_choice(ctx, own.config.data.data)
    pick = pipeline_choice(ctx, own.pipeline, preset=preset)
    base = pick.train_base(own.config, data)
    code_plan = None
    if pick.kind == "code":
        try:
            code_plan = plan_of(base, {})
        except DinodiagError as exc:
            said = in_form_words(str(exc))
            st.error(f"**Cannot train your code:** {said}", icon=":material/error:")
            return
    st.markdown("**Knobs**")
    changes = knobs(preset, pick.config, own.pipeline, code_plan)
    label = changes.pop("label").strip()
    try:
        plan = plan_of(base, changes, pick.recipe, label)
    except DinodiagError as exc:
        st.error(f"**Cannot start:** {in_form_words(str(exc))}", icon=":material/error:")
        return
    if pick.kind in ("recipe", "preset"):
        patch = plan.config.model.patch_size
        st.markdown(run_status.what_trains(pick.kind, preset, plan.pipeline, patch, pick.recipe))
    st.caption(plan.summary())
    for warning in (active_runs_warning([r for r in all_runs if r.active]), gpu_warning(preset)):
        if warning:  # worth knowing before starting; nothing here blocks the start
            st.warning(warning, icon=":material/warning:")
    estimate_box(plan, "tr_estimate")
    if st.button(
        "Start training",
        key="tr_start",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=not pick.confirmed,
    ):
        try:
            if plan.own:  # the page's rule, checked again where the code would run
                security.refuse_code("own", None, security.browser_code_allowed(os.environ))
            run_dir = runs.launch(plan)
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        st.session_state["tr_pending_run"] = run_dir.name
        st.session_state[GOTO_KEY] = "Live"
        st.rerun()
