"""Training page, "New run" tab: the launch form (data and pipeline from the sidebar, a
training preset, the important knobs), validated before anything starts."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import sidebar
from dinodiag.errors import DinodiagError
from dinodiag.runs.launch_spec import (
    LAUNCH_PRESETS,
    LaunchSpec,
    detect_devices,
    resolve_launch,
    scaled_pipeline,
)
from dinodiag.train.config import ARCHS
from dinodiag.train.presets import TRAIN_PRESETS

GOTO_KEY = "tr_goto"  # session_state: the tab to open on the next script run


def sidebar_data(ctx: Any) -> tuple[str | None, str]:
    """(dataset spec the engine can open, or None; a line saying what it is or why not)."""
    if ctx.dataset_error:
        return None, f"the sidebar dataset is not usable ({ctx.dataset_error})"
    if ctx.dataset_key.startswith("upload:"):
        return None, (
            "uploaded images live in this browser session, a training process cannot "
            "read them: put them in a folder and choose *Image folder*"
        )
    return ctx.dataset_key, sidebar.describe_dataset(ctx.dataset)


def data_choice(ctx: Any, preset_data: str) -> str:
    """The dataset radio: the sidebar's dataset or the training preset's."""
    spec, line = sidebar_data(ctx)
    options = {"preset": f"the preset's: `{preset_data}`"}
    if spec is not None:
        options = {"sidebar": f"the sidebar's: {line}", **options}
    default = "sidebar" if spec is not None and not spec.startswith("sample") else "preset"
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


def pipeline_choice(ctx: Any, preset_pipeline: Any) -> tuple[Any, bool]:
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
    base = TRAIN_PRESETS[preset].config
    recipe = pipeline or preset_pipeline
    k = f"tr_{preset}_{recipe.name}_"
    scaled = scaled_pipeline(recipe, preset_pipeline.global_crops_size, base.model.patch_size)
    locals_default = (
        recipe.local_crops_number if pipeline is not None else (preset_pipeline.local_crops_number)
    )
    c = st.columns(5)
    out: dict[str, Any] = {
        "epochs": c[0].number_input("Epochs", 0.01, 100000.0, float(base.run.epochs), key=k + "ep"),
        "max_steps": c[1].number_input(
            "Max steps",
            0,
            10**7,
            base.run.max_steps or 0,
            key=k + "steps",
            help="A cap on the steps; 0 = none.",
        ),
        "max_seconds": c[2].number_input(
            "Time budget (s)",
            0,
            86400,
            int(base.run.max_seconds or 0),
            step=30,
            key=k + "sec",
            help="The run stops cleanly (final k-NN and checkpoint) before it. 0 = no limit.",
        ),
        "batch_size": c[3].number_input(
            "Batch size",
            1,
            4096,
            base.data.batch_size,
            key=k + "bs",
            help="DINO's centering wants >= 64 images per step.",
        ),
        "lr": c[4].number_input(
            "Base lr",
            1e-6,
            1.0,
            base.optim.base_lr,
            step=1e-4,
            format="%.5f",
            key=k + "lr",
            help="At batch 1024, sqrt-scaled; lower it if the loss goes NaN, raise it if flat.",
        ),
    }
    c = st.columns(4)
    out["arch"] = c[0].selectbox(
        "Architecture", ARCHS, index=ARCHS.index(base.model.arch), key=k + "arch"
    )
    out["patch_size"] = c[1].number_input(
        "Patch size", 1, 64, base.model.patch_size, key=k + "patch"
    )
    out["depth"] = c[2].number_input(
        "Depth (blocks)", 1, 24, base.model.depth or 12, key=k + "depth"
    )
    out["eval_every"] = c[3].number_input(
        "k-NN every (steps)",
        0,
        100000,
        base.run.eval_every,
        key=k + "eval",
        help="Also at step 0 (the random-weights baseline) and at the end; 0 turns k-NN off.",
    )
    c = st.columns(4)
    out["local_crops"] = c[0].number_input("Local crops", 0, 16, locals_default, key=k + "loc")
    out["global_size"] = c[1].number_input(
        "Global crop (px)", 4, 1024, scaled.global_crops_size, key=k + "gs"
    )
    out["local_size"] = c[2].number_input(
        "Local crop (px)", 4, 1024, scaled.local_crops_size, key=k + "ls"
    )
    out["seed"] = c[3].number_input("Seed", 0, 2**31 - 1, base.run.seed, key=k + "seed")
    devices = {"auto": "auto (the GPU when there is one)"}
    devices.update({d.value: d.label for d in detect_devices()})
    c = st.columns([2, 2])
    out["device"] = c[0].selectbox(
        "Device", list(devices), format_func=devices.get, key="tr_device"
    )
    out["label"] = c[1].text_input(
        "Run name (optional)", key="tr_label", max_chars=40, placeholder=preset
    )
    return out


def warnings(plan: Any, active: Sequence[runs.RunInfo]) -> None:
    """Things worth knowing before starting (nothing here blocks the start)."""
    if active:
        names = ", ".join(r.run_id for r in active)
        st.warning(
            f"{len(active)} run(s) already active ({names}). A second run shares the CPU "
            "cores / GPU with it: both go slower (on 2 cores, about half speed each).",
            icon=":material/warning:",
        )
    gpu = any(d.is_gpu for d in detect_devices())
    if plan.config.name in ("gpu", "small-images") and not gpu:
        st.warning(
            f"The {plan.config.name} preset is sized for a GPU and no GPU was detected: "
            "on a CPU it takes hours. cpu-demo is made for CPUs.",
            icon=":material/warning:",
        )


def new_run_tab(ctx: Any, all_runs: Sequence[runs.RunInfo]) -> None:
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = st.selectbox("Training preset", list(names), format_func=names.get, key="tr_preset")
    preset_plan = resolve_launch(LaunchSpec(preset=preset), check_data=False)
    data = data_choice(ctx, preset_plan.config.data.data)
    pipeline, confirmed = pipeline_choice(ctx, preset_plan.pipeline)
    st.markdown("**Knobs**")
    values = knobs(preset, pipeline, preset_plan.pipeline)
    label = values.pop("label").strip()
    spec = LaunchSpec(preset=preset, data=data, label=label, threads=None, **values)
    if pipeline is not None:
        recipe = scaled_pipeline(pipeline, values["global_size"], values["patch_size"])
        spec = dataclasses.replace(spec, pipeline=recipe)
    try:
        plan = resolve_launch(spec)
    except DinodiagError as exc:
        st.error(f"**Cannot start:** {exc}", icon=":material/error:")
        return
    p = plan.pipeline
    views = f"2 × {p.global_crops_size} px" + (
        f" + {p.local_crops_number} × {p.local_crops_size} px" if p.local_crops_number else ""
    )
    budget = f", stopping at {values['max_seconds']} s" if values["max_seconds"] else ""
    st.caption(
        f"About {plan.steps} steps of {plan.config.data.batch_size} images "
        f"({plan.train_images} training images){budget}; views per image: {views}; "
        f"pipeline `{p.name}`."
    )
    warnings(plan, [r for r in all_runs if r.active])
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
