"""Training page, "New run" tab: the launch form (data and pipeline from the sidebar, a
training preset, the important knobs), validated before anything starts, with a time estimate
measured on this machine.

The run trains the sidebar's pipeline by default: its recipe, or its code when the server
allows code from the browser (``dinodiag.dashboard.security``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import run_status, security, sidebar
from dinodiag.dashboard.context import SidebarContext, spec_stamp
from dinodiag.dashboard.run_status import active_runs_warning
from dinodiag.errors import DinodiagError
from dinodiag.runs.devices import device_choices, gpu_warning
from dinodiag.runs.launch_spec import (
    LAUNCH_PRESETS,
    LaunchPlan,
    LaunchSpec,
    estimate_launch,
    preset_knobs,
    resolve_launch,
)
from dinodiag.train.config import ARCHS
from dinodiag.train.knn_horizon import judge_estimate
from dinodiag.train.presets import TRAIN_PRESETS

GOTO_KEY = "tr_goto"  # session_state: the tab to open on the next script run
ESTIMATES_KEY = "tr_estimates"  # session_state: {command: TimeEstimate or error text}


@dataclass(frozen=True)
class PipelinePick:
    """What a run trains: the sidebar's recipe or code, or the preset's recipe."""

    kind: str  # "recipe" (the sidebar's config), "code" (the sidebar's own code) or "preset"
    config: Any = None  # the sidebar's PipelineConfig when kind == "recipe"
    spec: str = ""  # file.py:factory when kind == "code"
    kwargs: str = ""  # its JSON keyword arguments
    confirmed: bool = True  # False while the sidebar's code cannot train and the user has not
    # agreed to train the preset's pipeline instead

    def apply(self, spec: LaunchSpec) -> LaunchSpec:
        if self.kind == "code":
            return spec.with_code(self.spec, self.kwargs)
        return spec.with_recipe(self.config if self.kind == "recipe" else None)


@st.cache_resource(show_spinner="Measuring your pipeline on the training images…", max_entries=16)
def cached_plan(spec_repr: str, stamp: float, _spec: LaunchSpec) -> LaunchPlan:
    """``resolve_launch`` of a spec that trains code: it imports and calls the code, so it
    runs once per spec and file version (``stamp``: the file's modification time)."""
    return resolve_launch(_spec)


def plan_of(spec: LaunchSpec) -> LaunchPlan:
    """The validated plan of ``spec`` (cached when it trains code). Raises DinodiagError."""
    if spec.brought:
        return cached_plan(repr(spec), spec_stamp(spec.pipeline_spec or ""), spec)
    return resolve_launch(spec)


def data_choice(ctx: SidebarContext, preset_data: str, key: str = "tr_data") -> str:
    """The dataset radio: the sidebar's dataset or the training preset's."""
    spec, line = ctx.training_data()
    options = {"preset": f"the preset's: `{preset_data}`"}
    if spec is not None:
        options = {"sidebar": f"the sidebar's: {line}", **options}
    default = "sidebar" if ctx.trains_on_sidebar_data else "preset"
    choice = st.radio(
        "Training data",
        list(options),
        format_func=options.get,
        horizontal=True,
        index=list(options).index(default),
        key=key,
    )
    if spec is None:
        st.caption(f"Sidebar: {line}.")
    elif choice == "sidebar" and not getattr(ctx.dataset, "has_labels", False):
        st.info(
            "These images have no labels: the run trains, but k-NN accuracy (the clearest "
            "sign of learning) cannot be measured.",
            icon=":material/info:",
        )
    return spec if choice == "sidebar" and spec else preset_data


def _sizes(p: Any) -> str:
    """``2 × 32 px globals + 8 × 12 px locals``: a pipeline's crops, without its name (the
    cpu-demo set-up's pipeline is called small-images, which reads like a training preset)."""
    text = f"{p.global_crops_number} × {p.global_crops_size} px globals"
    return text + (
        f" + {p.local_crops_number} × {p.local_crops_size} px locals"
        if p.local_crops_number
        else ""
    )


def pipeline_choice(
    ctx: SidebarContext, preset_pipeline: Any, key: str = "tr_pipe", preset: str = "the preset"
) -> PipelinePick:
    """The pipeline radio, the sidebar's first: its recipe, or its code (allowed on this
    server or not), or the preset's recipe. Says in the form which one trains."""
    brought = ctx.choice.source == "byo"
    code = ctx.choice.spec.strip() if brought else ""
    if brought and not security.browser_code_allowed(os.environ):
        st.info(
            "The sidebar pipeline is your own code. This server runs code from the browser "
            f"only when allowed: {security.HOW_TO_ALLOW}. From a terminal: `python -m "
            f"dinodiag train --pipeline {code or 'my_augment.py:build_transform'}` (with "
            "`--pipeline-kwargs`).",
            icon=":material/lock:",
        )
        ok = st.checkbox(
            f"Train the preset's pipeline ({preset_pipeline.name}) instead", key=key + "_ok"
        )
        return PipelinePick("preset", confirmed=ok)
    if (ctx.pipeline if brought else ctx.config) is None:
        st.warning(
            "The sidebar pipeline has an error (see the sidebar); the preset's pipeline is used.",
            icon=":material/warning:",
        )
        return PipelinePick("preset")
    line = f"your code `{code}`" if code else sidebar.describe_config(ctx.config)
    options = {
        "sidebar": f"the sidebar's: {line}",
        "preset": f"{preset}'s own crops: {_sizes(preset_pipeline)}",
    }
    choice = st.radio(
        "Pipeline (crops)",
        list(options),
        format_func=options.get,
        key=key,
        help="Your code makes the crops: their counts and sizes are measured on the training "
        "images, and the ViT patch adapts when your crop sizes need it."
        if code
        else "The sidebar's recipe keeps its counts, scales and photometric augmentations; "
        "its crop sizes are scaled to the preset's.",
    )
    if choice == "preset":
        return PipelinePick("preset")
    if code:
        st.caption(
            f"This run trains **your code** `{code}` as the inspector runs it (every view "
            "recorded); the crop knobs are your code's."
        )
        return PipelinePick("code", spec=code, kwargs=ctx.choice.spec_kwargs.strip())
    return PipelinePick("recipe", config=ctx.config)  # what_trains says it under the knobs


def knobs(
    preset: str, pipeline: Any, preset_pipeline: Any, code: LaunchPlan | None = None
) -> dict[str, Any]:
    """The knob widgets, keyed per preset and pipeline so that their defaults follow them.
    With ``code`` (the plan of your own pipeline) the crop knobs are your code's: not shown,
    and the patch starts at the size that fits its crops."""
    d = preset_knobs(preset, pipeline)
    name = (
        code.run_pipeline.label
        if code and code.run_pipeline
        else (pipeline or preset_pipeline).name
    )
    k = f"tr_{preset}_{name}_"
    if code is not None:
        d = dataclasses.replace(d, patch_size=code.config.model.patch_size)
    c = st.columns(5)
    out: dict[str, Any] = {
        "epochs": c[0].number_input("Epochs", 0.01, 100000.0, d.epochs, key=k + "ep"),
        "max_steps": c[1].number_input(
            "Max steps",
            0,
            10**7,
            d.max_steps,
            key=k + "steps",
            help="A cap on the steps; 0 = none.",
        ),
        "max_seconds": c[2].number_input(
            "Time budget (s)",
            0,
            86400,
            d.max_seconds,
            step=30,
            key=k + "sec",
            help="The run stops cleanly (final k-NN and checkpoint) before it. 0 = no limit.",
        ),
        "batch_size": c[3].number_input(
            "Batch size",
            1,
            4096,
            d.batch_size,
            key=k + "bs",
            help="DINO's centering wants >= 64 images per step.",
        ),
        "lr": c[4].number_input(
            "Base lr",
            1e-6,
            1.0,
            d.lr,
            step=1e-4,
            format="%.5f",
            key=k + "lr",
            help="At batch 1024, sqrt-scaled; lower it if the loss goes NaN, raise it if flat.",
        ),
    }
    c = st.columns(4)
    out["arch"] = c[0].selectbox("Architecture", ARCHS, index=ARCHS.index(d.arch), key=k + "arch")
    out["patch_size"] = c[1].number_input("Patch size", 1, 64, d.patch_size, key=k + "patch")
    out["depth"] = c[2].number_input("Depth (blocks)", 1, 24, d.depth, key=k + "depth")
    out["eval_every"] = c[3].number_input(
        "k-NN every (steps)",
        0,
        100000,
        d.eval_every,
        key=k + "eval",
        help="Also at step 0 (the random-weights baseline) and at the end; 0 turns k-NN off.",
    )
    c = st.columns(4)
    if code is None:
        out["local_crops"] = c[0].number_input("Local crops", 0, 16, d.local_crops, key=k + "loc")
        out["global_size"] = c[1].number_input(
            "Global crop (px)", 4, 1024, d.global_size, key=k + "gs"
        )
        out["local_size"] = c[2].number_input(
            "Local crop (px)", 4, 1024, d.local_size, key=k + "ls"
        )
    else:
        c[0].caption(f"Crops: your code's, measured: {_views(code)}.")
        if code.adapted:
            c[1].caption(f"ViT {code.adapted}.")
    out["seed"] = c[3].number_input("Seed", 0, 2**31 - 1, d.seed, key=k + "seed")
    devices = device_choices()
    c = st.columns([2, 2])
    out["device"] = c[0].selectbox(
        "Device", list(devices), format_func=devices.get, key="tr_device"
    )
    out["label"] = c[1].text_input(
        "Run name (optional)", key="tr_label", max_chars=40, placeholder=preset
    )
    return out


def _views(plan: LaunchPlan) -> str:
    p = plan.pipeline
    text = f"{p.global_crops_number} × {p.global_crops_size} px"
    return text + (
        f" + {p.local_crops_number} × {p.local_crops_size} px" if p.local_crops_number else ""
    )


def estimate_box(spec: LaunchSpec, key: str) -> None:
    """A button that measures the run here (``train --estimate`` in a fresh process: set-up,
    a step, a k-NN evaluation), the sentence of what fits in the budget, and whether that is
    long enough to judge against the k-NN noise (``dinodiag.train.knn_horizon``)."""
    from dinodiag.runs.launch_spec import build_command

    command = " ".join(build_command(spec, runs.runs_root() / "estimate")[3:])
    estimates = st.session_state.setdefault(ESTIMATES_KEY, {})
    if st.button(
        "Estimate the time",
        key=key,
        icon=":material/timer:",
        help="Starts the run as it will start (imports, data, networks, the step-0 k-NN), "
        "times a few steps and a k-NN evaluation, and writes nothing.",
    ):
        with st.spinner("Measuring a warm-up step and a k-NN evaluation…"):
            try:
                estimate = estimate_launch(spec)
                config = plan_of(spec).config  # the k-NN noise against the evidence there is
                plan = judge_estimate(estimate, config.name, config.data.data, runs.runs_root())
                estimates[command] = f"{estimate.sentence()}\n\n{plan.sentence()}"
            except DinodiagError as exc:
                estimates[command] = f"error: {exc}"
    found = estimates.get(command)
    if found is None:
        st.caption(
            "The time budget counts from the start of the training process: the set-up and "
            "every k-NN evaluation are in it. *Estimate the time* measures them here."
        )
    elif found.startswith("error: "):
        st.error(found.removeprefix("error: "), icon=":material/error:")
    else:
        st.info(found, icon=":material/timer:")


def new_run_tab(ctx: SidebarContext, all_runs: Sequence[runs.RunInfo]) -> None:
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = st.selectbox("Training preset", list(names), format_func=names.get, key="tr_preset")
    plan = resolve_launch(LaunchSpec(preset=preset), check_data=False)
    data = data_choice(ctx, plan.config.data.data)
    pick = pipeline_choice(ctx, plan.pipeline, preset=preset)
    code_plan = None
    if pick.kind == "code":
        try:
            code_plan = plan_of(pick.apply(LaunchSpec(preset=preset, data=data)))
        except DinodiagError as exc:
            st.error(f"**Cannot train your code:** {exc}", icon=":material/error:")
            return
    st.markdown("**Knobs**")
    values = knobs(preset, pick.config, plan.pipeline, code_plan)
    label = values.pop("label").strip()
    spec = pick.apply(LaunchSpec(preset=preset, data=data, label=label, threads=None, **values))
    try:
        plan = plan_of(spec)
    except DinodiagError as exc:
        st.error(f"**Cannot start:** {exc}", icon=":material/error:")
        return
    if pick.kind in ("recipe", "preset"):
        chosen = pick.config if pick.kind == "recipe" else None
        patch = plan.config.model.patch_size
        st.markdown(run_status.what_trains(pick.kind, preset, plan.pipeline, patch, chosen))
    st.caption(plan.summary())
    for warning in (active_runs_warning([r for r in all_runs if r.active]), gpu_warning(preset)):
        if warning:  # worth knowing before starting; nothing here blocks the start
            st.warning(warning, icon=":material/warning:")
    estimate_box(spec, "tr_estimate")
    if st.button(
        "Start training",
        key="tr_start",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=not pick.confirmed,
    ):
        try:
            if spec.brought:  # the page's rule, checked again where the code would run
                security.refuse_code("byo", None, security.browser_code_allowed(os.environ))
            run_dir = runs.launch(spec)
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        st.session_state["tr_pending_run"] = run_dir.name
        st.session_state[GOTO_KEY] = "Live"
        st.rerun()
