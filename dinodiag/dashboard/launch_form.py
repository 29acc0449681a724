"""The training form's rules besides the pipeline (:mod:`dinodiag.dashboard.pipeline_pick`):
the knobs' starting values and widget keys, which plans are cached, and the time
estimates it keeps per plan (one running at a time).

    defaults, key = knob_start("cpu-demo", pick.config, preset_pipeline, code_plan)
    for row in FORM_ROWS:           # one row of columns each
        for knob in row:            # a number_input, the architecture a selectbox
            st.number_input(knob.label, **number_widget(knob, defaults, key))
    if trains_code(base, pick.recipe): cached(plan_cache_key(base, changes), ...)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard.knob_widgets import number_args
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.plan import RunPlan
from dinodiag.runs.estimates import EstimateStatus
from dinodiag.runs.run_plan import form_defaults
from dinodiag.train.knn_horizon import judge_estimate


@dataclass(frozen=True)
class FormKnob:
    """One knob widget of the form; its range and help are the knob table's
    (:func:`~dinodiag.dashboard.knob_widgets.number_args`)."""

    field: str  # "section.field" of TrainConfig (a key of form_defaults)
    label: str  # the widget's label
    key: str  # the widget key's tail, after knob_start's prefix
    floats: bool = False  # the widget takes floats although the default may be an int
    step: float | None = None  # the +/- step (None: Streamlit's, 1 or 0.01)
    format: str | None = None  # printf format of the value (None: Streamlit's)
    zero_means_none: bool = False  # 0 = no limit (the step cap, the time budget)
    crop: bool = False  # a crop knob: your own code makes the crops, so not shown for it


ARCH_FIELD = "model.arch"  # the one knob drawn as a selectbox (of dinodiag.recipe.config.ARCHS)
FORM_ROWS: tuple[tuple[FormKnob, ...], ...] = (  # the form's rows of knobs, in columns
    (
        FormKnob("run.epochs", "Epochs", "ep", floats=True),
        FormKnob("run.max_steps", "Max steps", "steps", zero_means_none=True),
        FormKnob("run.max_seconds", "Time budget (s)", "sec", True, 30.0, zero_means_none=True),
        FormKnob("data.batch_size", "Batch size", "bs"),
        FormKnob("optim.base_lr", "Base lr", "lr", step=1e-4, format="%.5f"),
    ),
    (
        FormKnob(ARCH_FIELD, "Architecture", "arch"),
        FormKnob("model.patch_size", "Patch size", "patch"),
        FormKnob("model.depth", "Depth (blocks)", "depth"),
        FormKnob("run.eval_every", "k-NN every (steps)", "eval"),
    ),
    (
        FormKnob("data.local_crops", "Local crops", "loc", crop=True),
        FormKnob("data.global_crops_size", "Global crop (px)", "gs", crop=True),
        FormKnob("data.local_crops_size", "Local crop (px)", "ls", crop=True),
        FormKnob("run.seed", "Seed", "seed"),
    ),
)


def in_form_words(message: str) -> str:
    """A planner's message as the form says it: a flag of one of the form's knobs becomes that
    widget's label (``--patch-size 3`` -> ``**Patch size** 3``); other flags stay as they are
    (they are the command line's, which the message may also be meant for)."""
    for row in FORM_ROWS:
        for knob in row:
            flag = "--" + knob.field.partition(".")[2].replace("_", "-")
            message = re.sub(rf"{re.escape(flag)}(?![\w-])", f"**{knob.label}**", message)
    return message


def number_widget(knob: FormKnob, defaults: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The keyword arguments of ``st.number_input`` for ``knob``: its starting value from
    ``defaults`` (:func:`knob_start`), its key (``prefix`` + the knob's tail), its step and
    format, and the knob table's bounds and help."""
    value = defaults[knob.field]
    args: dict[str, Any] = {
        "value": float(value) if knob.floats else value,
        "key": prefix + knob.key,
    }
    if knob.step is not None:
        args["step"] = knob.step
    if knob.format is not None:
        args["format"] = knob.format
    return args | number_args(knob.field, zero_means_none=knob.zero_means_none)


def knob_start(
    preset: str,
    recipe: PipelineConfig | None,
    preset_pipeline: PipelineConfig,
    code: RunPlan | None = None,
) -> tuple[dict[str, Any], str]:
    """``(defaults, key prefix)`` of the knob widgets: every knob at the training preset's
    value with the crops of ``recipe`` (:func:`~dinodiag.runs.run_plan.form_defaults`), and a
    widget key prefix per preset and pipeline, so that the widgets start again from these
    values when either changes. With ``code`` (the plan of your own pipeline) the patch
    starts at the size that fits its crops and the key follows the code."""
    defaults = form_defaults(preset, recipe)
    name = (recipe or preset_pipeline).name
    if code is not None:  # the code's spec, file.py:factory
        name = code.config.data.pipeline
        defaults["model.patch_size"] = code.config.model.patch_size
    return defaults, f"tr_{preset}_{name}_"


def trains_code(base: TrainConfig, recipe: PipelineConfig | None) -> bool:
    """Whether planning ``base`` imports and calls your own code (no recipe, and its
    ``data.pipeline`` is ``file.py:factory``): such a plan is worth caching."""
    return recipe is None and is_pipeline_spec(base.data.pipeline)


def plan_cache_key(base: TrainConfig, changes: Mapping[str, Any]) -> str:
    """The cache key of a plan that trains your code: its config and the form's changes."""
    return json.dumps([base.to_dict(), dict(changes)], sort_keys=True, default=str)


def estimate_key(plan: RunPlan) -> str:
    """What an estimate measured: the config and the recipe (another value, another
    estimate)."""
    return json.dumps([plan.config.to_dict(), repr(plan.recipe)], sort_keys=True)


def running_jobs(found: Mapping[str, Mapping[str, str]]) -> dict[str, Path]:
    """The estimates still measuring, ``{estimate key: job folder}``, among the form's kept
    answers (``{"job": folder}`` while running, ``{"text"}`` or ``{"error"}`` once done):
    the ones to discard before another starts (the machine measures one run at a time)."""
    return {key: Path(value["job"]) for key, value in found.items() if "job" in value}


def estimate_answer(status: EstimateStatus, plan: RunPlan, runs_root: str | Path) -> dict[str, str]:
    """What the form keeps of a finished estimate: ``{"text": ...}``, the measured times
    and whether the run is long enough to tell learning from the k-NN noise (judged against
    the earlier runs of ``runs_root``), or ``{"error": ...}``."""
    if status.estimate is None:
        return {"error": status.error or "the estimate failed."}
    config = plan.config
    judged = judge_estimate(status.estimate, config.name, config.data.data, runs_root)
    return {"text": f"{status.estimate.sentence()}\n\n{judged.sentence()}"}
