"""Training page, "New run" tab: the launch form (data and pipeline from the sidebar, a
training preset, the important knobs), validated before anything starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import sidebar
from dinodiag.dashboard.context import SidebarContext
from dinodiag.dashboard.run_status import active_runs_warning
from dinodiag.errors import DinodiagError
from dinodiag.runs.devices import device_choices, gpu_warning
from dinodiag.runs.launch_spec import (
    LAUNCH_PRESETS,
    LaunchSpec,
    preset_knobs,
    resolve_launch,
)
from dinodiag.train.config import ARCHS
from dinodiag.train.presets import TRAIN_PRESETS

GOTO_KEY = "tr_goto"  # session_state: the tab to open on the next script run


def data_choice(ctx: SidebarContext, preset_data: str) -> str:
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
        key="tr_data",
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


def pipeline_choice(ctx: SidebarContext, preset_pipeline: Any) -> tuple[Any, bool]:
    """(pipeline config to train, or None for the preset's; False while a BYO pipeline waits
    for the user's confirmation)."""
    if ctx.choice.source == "byo":
        st.info(
            f"The sidebar pipeline is your own code (`{ctx.choice.spec}`). The training engine "
            "builds its crops from a config (counts, sizes, scales, photometric recipe), so it "
            "cannot train your transform as is. Describe it as a config (sidebar → *YAML / "
            "JSON*) to train it, or train the preset's pipeline instead.",
            icon=":material/info:",
        )
        ok = st.checkbox(
            f"Train the preset's pipeline ({preset_pipeline.name}) instead", key="tr_byo_ok"
        )
        return None, ok
    if ctx.config is None:
        st.warning(
            "The sidebar pipeline has an error; the preset's pipeline is used.",
            icon=":material/warning:",
        )
        return None, True
    options = {
        "sidebar": f"the sidebar's: {sidebar.describe_config(ctx.config)}",
        "preset": f"the preset's: {sidebar.describe_config(preset_pipeline)}",
    }
    choice = st.radio(
        "Pipeline (crops)",
        list(options),
        format_func=options.get,
        key="tr_pipe",
        help="The sidebar's recipe keeps its counts, scales and photometric "
        "augmentations; its crop sizes are scaled to the preset's.",
    )
    return (ctx.config if choice == "sidebar" else None), True


def knobs(preset: str, pipeline: Any, preset_pipeline: Any) -> dict[str, Any]:
    """The knob widgets, keyed per preset and pipeline so that their defaults follow them."""
    d = preset_knobs(preset, pipeline)
    k = f"tr_{preset}_{(pipeline or preset_pipeline).name}_"
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
    out["local_crops"] = c[0].number_input("Local crops", 0, 16, d.local_crops, key=k + "loc")
    out["global_size"] = c[1].number_input("Global crop (px)", 4, 1024, d.global_size, key=k + "gs")
    out["local_size"] = c[2].number_input("Local crop (px)", 4, 1024, d.local_size, key=k + "ls")
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


def new_run_tab(ctx: SidebarContext, all_runs: Sequence[runs.RunInfo]) -> None:
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = st.selectbox("Training preset", list(names), format_func=names.get, key="tr_preset")
    plan = resolve_launch(LaunchSpec(preset=preset), check_data=False)
    data = data_choice(ctx, plan.config.data.data)
    pipeline, confirmed = pipeline_choice(ctx, plan.pipeline)
    st.markdown("**Knobs**")
    values = knobs(preset, pipeline, plan.pipeline)
    label = values.pop("label").strip()
    spec = LaunchSpec(preset=preset, data=data, label=label, threads=None, **values)
    spec = spec.with_recipe(pipeline)
    try:
        plan = resolve_launch(spec)
    except DinodiagError as exc:
        st.error(f"**Cannot start:** {exc}", icon=":material/error:")
        return
    st.caption(plan.summary())
    for warning in (active_runs_warning([r for r in all_runs if r.active]), gpu_warning(preset)):
        if warning:  # worth knowing before starting; nothing here blocks the start
            st.warning(warning, icon=":material/warning:")
    if st.button(
        "Start training",
        key="tr_start",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=not confirmed,
    ):
        try:
            run_dir = runs.launch(spec)
        except DinodiagError as exc:
            st.error(str(exc), icon=":material/error:")
            return
        st.session_state["tr_pending_run"] = run_dir.name
        st.session_state[GOTO_KEY] = "Live"
        st.rerun()
