"""Training page, "New run" tab: the launch form (data and pipeline from the sidebar, a
training preset, the important knobs), validated before anything starts, with a time estimate
measured on this machine.

The run trains the sidebar's pipeline by default: its recipe, or its code when the server
allows code from the browser (``dinodiag.dashboard.security``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from dinodiag import runs
from dinodiag.dashboard import run_status, security, sidebar
from dinodiag.dashboard.context import SidebarContext, spec_stamp
from dinodiag.dashboard.knob_widgets import number_args
from dinodiag.dashboard.run_status import active_runs_warning
from dinodiag.errors import DinodiagError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import ARCHS, TrainConfig
from dinodiag.recipe.presets import TRAIN_PRESETS
from dinodiag.runs import estimates
from dinodiag.runs.devices import device_choices, gpu_warning
from dinodiag.runs.run_plan import LAUNCH_PRESETS, RunPlan, form_defaults, plan_run, preset_plan
from dinodiag.train.knn_horizon import judge_estimate
from dinodiag.train.pipelines import with_own_pipeline
from pages import _shared as ui

GOTO_KEY = "tr_goto"  # session_state: the tab to open on the next script run
ESTIMATES_KEY = "tr_estimates"  # session_state: {plan key: {"job": folder} | {"text"} | {"error"}}


@dataclass(frozen=True)
class PipelinePick:
    """What a run trains: the sidebar's recipe or code, or the preset's recipe."""

    kind: str  # "recipe" (the sidebar's config), "code" (the sidebar's own code) or "preset"
    config: Any = None  # the sidebar's PipelineConfig when kind == "recipe"
    spec: str = ""  # file.py:factory when kind == "code"
    kwargs: str = ""  # its JSON keyword arguments
    confirmed: bool = True  # False while the sidebar's code cannot train and the user has not
    # agreed to train the preset's pipeline instead

    @property
    def recipe(self) -> Any:
        """The sidebar's recipe the run trains (None: your code, or the preset's crops)."""
        return self.config if self.kind == "recipe" else None

    def base(self, config: TrainConfig) -> TrainConfig:
        """``config`` training your code when that is the pick (its crop fields dropped)."""
        return with_own_pipeline(config, self.spec, self.kwargs) if self.kind == "code" else config


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
    if recipe is None and is_pipeline_spec(base.data.pipeline):
        key = json.dumps([base.to_dict(), changes], sort_keys=True, default=str)
        return cached_plan(key, spec_stamp(base.data.pipeline), base, changes, label)
    return plan_run(base, changes, recipe=recipe, label=label)


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
    own = ctx.choice.source == "own"
    code = ctx.choice.spec.strip() if own else ""
    if own and not security.browser_code_allowed(os.environ):
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
    if (ctx.pipeline if own else ctx.config) is None:
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
    preset: str, pipeline: Any, preset_pipeline: Any, code: RunPlan | None = None
) -> dict[str, Any]:
    """The knob widgets, ``{"section.field": value}`` (0 = no limit for the step cap and the
    time budget), keyed per preset and pipeline so that their defaults follow them. With
    ``code`` (the plan of your own pipeline) the crop knobs are your code's: not shown, and
    the patch starts at the size that fits its crops."""
    d = form_defaults(preset, pipeline)
    name = (
        code.run_pipeline.label
        if code and code.run_pipeline
        else (pipeline or preset_pipeline).name
    )
    k = f"tr_{preset}_{name}_"
    if code is not None:
        d["model.patch_size"] = code.config.model.patch_size
    c = st.columns(5)
    out: dict[str, Any] = {
        "run.epochs": c[0].number_input(
            "Epochs", value=float(d["run.epochs"]), key=k + "ep", **number_args("run.epochs")
        ),
        "run.max_steps": c[1].number_input(
            "Max steps",
            value=d["run.max_steps"],
            key=k + "steps",
            **number_args("run.max_steps", zero_means_none=True),
        ),
        "run.max_seconds": c[2].number_input(
            "Time budget (s)",
            value=float(d["run.max_seconds"]),
            step=30.0,
            key=k + "sec",
            **number_args("run.max_seconds", zero_means_none=True),
        ),
        "data.batch_size": c[3].number_input(
            "Batch size", value=d["data.batch_size"], key=k + "bs", **number_args("data.batch_size")
        ),
        "optim.base_lr": c[4].number_input(
            "Base lr",
            value=d["optim.base_lr"],
            step=1e-4,
            format="%.5f",
            key=k + "lr",
            **number_args("optim.base_lr"),
        ),
    }
    c = st.columns(4)
    arch = ARCHS.index(d["model.arch"])
    out["model.arch"] = c[0].selectbox("Architecture", ARCHS, index=arch, key=k + "arch")
    out["model.patch_size"] = c[1].number_input(
        "Patch size",
        value=d["model.patch_size"],
        key=k + "patch",
        **number_args("model.patch_size"),
    )
    out["model.depth"] = c[2].number_input(
        "Depth (blocks)", value=d["model.depth"], key=k + "depth", **number_args("model.depth")
    )
    out["run.eval_every"] = c[3].number_input(
        "k-NN every (steps)",
        value=d["run.eval_every"],
        key=k + "eval",
        **number_args("run.eval_every"),
    )
    c = st.columns(4)
    if code is None:
        out["data.local_crops"] = c[0].number_input(
            "Local crops",
            value=d["data.local_crops"],
            key=k + "loc",
            **number_args("data.local_crops"),
        )
        out["data.global_crops_size"] = c[1].number_input(
            "Global crop (px)",
            value=d["data.global_crops_size"],
            key=k + "gs",
            **number_args("data.global_crops_size"),
        )
        out["data.local_crops_size"] = c[2].number_input(
            "Local crop (px)",
            value=d["data.local_crops_size"],
            key=k + "ls",
            **number_args("data.local_crops_size"),
        )
    else:
        c[0].caption(f"Crops: your code's, measured: {_views(code)}.")
        if code.adapted:
            c[1].caption(f"ViT {code.adapted}.")
    out["run.seed"] = c[3].number_input(
        "Seed", value=d["run.seed"], key=k + "seed", **number_args("run.seed")
    )
    devices = device_choices()
    c = st.columns([2, 2])
    out["run.device"] = c[0].selectbox(
        "Device", list(devices), format_func=devices.get, key="tr_device"
    )
    out["label"] = c[1].text_input(
        "Run name (optional)", key="tr_label", max_chars=40, placeholder=preset
    )
    return out


def _views(plan: RunPlan) -> str:
    p = plan.pipeline
    text = f"{p.global_crops_number} × {p.global_crops_size} px"
    return text + (
        f" + {p.local_crops_number} × {p.local_crops_size} px" if p.local_crops_number else ""
    )


def estimate_box(plan: RunPlan, key: str) -> None:
    """A button that measures the run here in a process of its own (set-up, a few steps, a
    k-NN evaluation: ``dinodiag.runs.estimates``), its stage and the time left while it runs,
    then the sentence of what fits in the budget and whether that is long enough to judge
    against the k-NN noise (``dinodiag.train.knn_horizon``)."""
    wanted = plan_key(plan)
    found = st.session_state.setdefault(ESTIMATES_KEY, {}).get(wanted)
    if st.button(
        "Estimate the time",
        key=key,
        icon=":material/timer:",
        help="Starts the run as it will start (imports, data, networks, the step-0 k-NN), "
        "times a few steps and a k-NN evaluation, and writes nothing in the runs folder.",
        disabled=bool(found and "job" in found),
    ):
        for other, value in list(st.session_state[ESTIMATES_KEY].items()):
            if "job" in value:  # one estimate at a time: the machine measures one run
                estimates.discard(Path(value["job"]))
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


def plan_key(plan: RunPlan) -> str:
    """What an estimate measured: the config and the recipe (another value, another estimate)."""
    return json.dumps([plan.config.to_dict(), repr(plan.recipe)], sort_keys=True)


def estimate_progress(plan: RunPlan, wanted: str, job: Path) -> None:
    """The running estimate: its stage and the time left, read every second (the estimate runs
    in its own process); its answer kept in the session once it comes."""

    def answer(status: Any) -> dict[str, Any]:
        if status.estimate is None:
            return {"error": status.error or "the estimate failed."}
        config = plan.config  # the k-NN noise against the evidence there is
        judged = judge_estimate(status.estimate, config.name, config.data.data, runs.runs_root())
        return {"text": f"{status.estimate.sentence()}\n\n{judged.sentence()}"}

    ui.follow_job(
        lambda: estimates.read_estimate(job),
        lambda status: f"Estimating: {status.line()}",
        answer,
        lambda found: st.session_state[ESTIMATES_KEY].__setitem__(wanted, found),
        lambda: estimates.discard(job),
    )


def new_run_tab(ctx: SidebarContext, all_runs: Sequence[runs.RunInfo]) -> None:
    names = {p: f"{p}: {TRAIN_PRESETS[p].description}" for p in LAUNCH_PRESETS}
    preset = st.selectbox("Training preset", list(names), format_func=names.get, key="tr_preset")
    own = preset_plan(preset)
    data = data_choice(ctx, own.config.data.data)
    pick = pipeline_choice(ctx, own.pipeline, preset=preset)
    base = pick.base(own.config.with_overrides({"data.data": data}))
    code_plan = None
    if pick.kind == "code":
        try:
            code_plan = plan_of(base, {})
        except DinodiagError as exc:
            st.error(f"**Cannot train your code:** {exc}", icon=":material/error:")
            return
    st.markdown("**Knobs**")
    changes = knobs(preset, pick.config, own.pipeline, code_plan)
    label = changes.pop("label").strip()
    try:
        plan = plan_of(base, changes, pick.recipe, label)
    except DinodiagError as exc:
        st.error(f"**Cannot start:** {exc}", icon=":material/error:")
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
