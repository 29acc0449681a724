"""What a dashboard run is made of: the launch form's values, their validation and the
command line they become (the devices: ``runs/devices.py``; yours vs the reference and the
seed story: ``runs/story.py``).

    spec = LaunchSpec(preset="cpu-demo", batch_size=32, max_seconds=120)
    plan = resolve_launch(spec)                   # ConfigError / DataError naming the knob
    build_command(spec, Path("runs/x"))           # [python, -m, dinodiag, train, --preset, ...]
    LaunchSpec(pipeline_spec="my_aug.py:build", pipeline_kwargs='{"size": 32}')  # your code

Every knob is ``None`` = "the training preset's value", so a spec only says what changes. A
spec trains a recipe (``pipeline``, a :class:`PipelineConfig`) or your own code
(``pipeline_spec``): the code's crops are measured on the training images, and when the knob
``patch_size`` is not set the patch adapts to them (:mod:`dinodiag.train.pipelines`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import load_config
from dinodiag.errors import ConfigError, TrainingError
from dinodiag.runs.devices import check_device
from dinodiag.train.config import TrainConfig, check_crops
from dinodiag.train.estimate import TimeEstimate
from dinodiag.train.pipelines import (
    RunPipeline,
    adapted_patch_size,
    resolve_run_pipeline,
    with_brought_pipeline,
)
from dinodiag.train.presets import get_train_preset

LAUNCH_PRESETS = ("cpu-demo", "gpu", "small-images", "tiny-test")  # what the form offers


@dataclass(frozen=True)
class LaunchSpec:
    """The launch form: a training preset and the knobs changed from it (None = preset's)."""

    preset: str = "cpu-demo"  # training preset: cpu-demo (2-core laptop), gpu, small-images ...
    data: str | None = None  # dataset spec (folder, generated:..., cifar10:ROOT); None = preset's
    pipeline: PipelineConfig | None = None  # crop recipe to train with; None = preset's
    pipeline_spec: str | None = None  # or your own code: path/to/file.py:factory (the sidebar's)
    pipeline_kwargs: str = ""  # JSON object of keyword arguments for that factory
    epochs: float | None = None  # passes over the data (the schedules are laid out over them)
    max_seconds: float | None = None  # time budget; 0 = no limit (stops cleanly before it)
    max_steps: int | None = None  # step cap; 0 = no cap
    batch_size: int | None = None  # images per step; DINO centering wants >= 64
    lr: float | None = None  # base lr at batch 1024 (sqrt-scaled to the batch)
    arch: str | None = None  # vit_tiny | vit_small | vit_base | resnet18
    patch_size: int | None = None  # ViT patch side; crop sizes must be multiples of it
    depth: int | None = None  # ViT blocks; 2-4 for a CPU
    local_crops: int | None = None  # local crops per image (0 = no multi-crop)
    global_size: int | None = None  # global crop side (px)
    local_size: int | None = None  # local crop side (px)
    device: str | None = None  # auto | cpu | cuda | cuda:N
    eval_every: int | None = None  # k-NN every N steps (0 = off); also at step 0 and the end
    log_every: int | None = None  # a metrics row every N steps
    seed: int | None = None  # weights, data order and augmentations
    threads: int | None = None  # torch CPU threads (two runs at once on 2 cores: 1 each)
    label: str = ""  # end of the run id (default: the preset name)

    @property
    def brought(self) -> bool:
        """Whether the spec trains your own code rather than a recipe."""
        return bool(self.pipeline_spec)

    def with_recipe(self, pipeline: PipelineConfig | None) -> LaunchSpec:
        """This spec training ``pipeline`` at the spec's global crop size and patch size
        (:func:`scaled_pipeline`: counts, scales and photometrics kept); None: the preset's."""
        if pipeline is None:
            return replace(self, pipeline=None, pipeline_spec=None, pipeline_kwargs="")
        size = self.global_size or pipeline.global_crops_size
        recipe = scaled_pipeline(pipeline, size, self.patch_size or pipeline.patch_size)
        return replace(self, pipeline=recipe, pipeline_spec=None, pipeline_kwargs="")

    def with_code(self, spec: str, kwargs: str = "") -> LaunchSpec:
        """This spec training your code ``spec``: its crops come from it, so the crop knobs
        are dropped (and the patch adapts to the crops unless ``patch_size`` is set)."""
        return replace(
            self,
            pipeline=None,
            pipeline_spec=spec.strip(),
            pipeline_kwargs=(kwargs or "").strip(),
            local_crops=None,
            global_size=None,
            local_size=None,
        )


# spec field -> (config field, command-line flag); "none" = a 0 that means "no limit".
_FIELDS: dict[str, tuple[str, str]] = {
    "data": ("data.data", "--data"),
    "epochs": ("run.epochs", "--epochs"),
    "max_seconds": ("run.max_seconds", "--max-seconds"),
    "max_steps": ("run.max_steps", "--max-steps"),
    "batch_size": ("data.batch_size", "--batch-size"),
    "lr": ("optim.base_lr", "--lr"),
    "arch": ("model.arch", "--arch"),
    "patch_size": ("model.patch_size", "--patch-size"),
    "depth": ("model.depth", "--depth"),
    "local_crops": ("data.local_crops", "--local-crops"),
    "global_size": ("data.global_crops_size", "--global-size"),
    "local_size": ("data.local_crops_size", "--local-size"),
    "device": ("run.device", "--device"),
    "eval_every": ("run.eval_every", "--eval-every"),
    "log_every": ("run.log_every", "--log-every"),
    "seed": ("run.seed", "--seed"),
    "threads": ("run.threads", "--threads"),
}
_ZERO_IS_NONE = ("max_seconds", "max_steps")


def overrides(spec: LaunchSpec) -> dict[str, Any]:
    """``{"section.field": value}`` for every knob the spec sets (validated later)."""
    base = get_train_preset(spec.preset).config
    out: dict[str, Any] = {}
    for name, (field_name, _) in _FIELDS.items():
        value = getattr(spec, name)
        if value is None:
            continue
        if name in _ZERO_IS_NONE and not value:
            value = None
        out[field_name] = value
    if spec.arch is not None and spec.arch != base.model.arch:
        # A preset's custom width belongs to its own arch: the new arch brings its own.
        out["model.embed_dim"] = None
        out["model.num_heads"] = None
    if spec.brought:
        for name in ("local_crops", "global_size", "local_size"):
            if getattr(spec, name) is not None:
                raise ConfigError(
                    f"{_FIELDS[name][1]} cannot change your own pipeline's crops (they come "
                    f"from {spec.pipeline_spec}): pass sizes to the factory in its keyword "
                    "arguments instead."
                )
    return out


@dataclass(frozen=True)
class LaunchPlan:
    """What a validated spec will train."""

    config: TrainConfig  # the training config (preset + knobs)
    pipeline: PipelineConfig  # the crops it trains with (sizes and patch applied); for your own
    # code its measured counts, sizes and normalisation
    train_images: int | None  # images in the training split (None when not opened)
    run_pipeline: RunPipeline | None = None  # your own code as measured (None: a recipe)
    adapted: str = ""  # why the patch size differs from the preset's (your code's crops)

    @property
    def steps(self) -> int | None:
        """Planned optimisation steps (the time budget may end the run earlier)."""
        if self.train_images is None:
            return None
        per_epoch = max(1, self.train_images // self.config.data.batch_size)  # drop_last
        steps = max(1, round(self.config.run.epochs * per_epoch))
        cap = self.config.run.max_steps
        return min(steps, cap) if cap else steps

    def summary(self) -> str:
        """One sentence for the form: steps, batch, training images, time budget, views."""
        p = self.pipeline
        views = f"{p.global_crops_number} × {p.global_crops_size} px"
        if p.local_crops_number:
            views += f" + {p.local_crops_number} × {p.local_crops_size} px"
        budget = self.config.run.max_seconds
        stop = f", stopping at {budget:g} s (set-up and k-NN included)" if budget else ""
        # With a budget the count is a cap: how many fit depends on the machine and the
        # pipeline's cost per step (the form's "Estimate the time" measures it).
        steps = "The planned" if self.steps is None else f"{'Up to ' if budget else ''}{self.steps}"
        what = f"pipeline `{p.name}`"
        if self.run_pipeline is not None:
            what = f"your code `{self.run_pipeline.label}` (views measured on the training images)"
        text = (
            f"{steps} steps of {self.config.data.batch_size} images "
            f"({self.train_images} training images){stop}; views per image: {views}; {what}."
        )
        return text + (f" ViT {self.adapted}." if self.adapted else "")


def resolve_launch(spec: LaunchSpec, check_data: bool = True) -> LaunchPlan:
    """The training config and the crop recipe a spec trains with, validated as the engine
    will (crops multiple of the patch, 2+ views, KoLeo batch, device, dataset).

    Raises :class:`ConfigError` naming the knob, or :class:`DataError` for the dataset.
    """
    if spec.preset not in LAUNCH_PRESETS:
        get_train_preset(spec.preset)  # an unknown name gets a suggestion
    config = get_train_preset(spec.preset).config.with_overrides(overrides(spec))
    if spec.brought:
        return _resolve_code(spec, config)
    pipeline = spec.pipeline or load_config(config.data.pipeline)
    changes: dict[str, Any] = {"patch_size": config.model.patch_size}
    for knob, target in (
        ("local_crops", "local_crops_number"),
        ("global_crops_size", "global_crops_size"),
        ("local_crops_size", "local_crops_size"),
    ):
        value = getattr(config.data, knob)
        if value is not None:
            changes[target] = value
    pipeline = pipeline.replace(**changes)
    check_crops(pipeline, config.model)
    if config.optim.koleo_weight > 0 and config.data.batch_size < 2:
        raise ConfigError(
            f"batch size {config.data.batch_size}: KoLeo needs at least 2 images per step "
            "(at 1 it is infinite). Use a batch of 2 or more (DINO works best from 64)."
        )
    check_device(config.run.device)
    images = None
    if check_data:
        from dinodiag.data import open_dataset

        images = len(open_dataset(config.data.data, split=config.data.train_split))
        if images < config.data.batch_size:
            raise ConfigError(
                f"batch size {config.data.batch_size} is larger than the training set "
                f"({images} images in {config.data.data}): lower the batch size."
            )
    return LaunchPlan(config, pipeline, images)


def _resolve_code(spec: LaunchSpec, config: TrainConfig) -> LaunchPlan:
    """The plan of a spec that trains your code: imported, measured on the training images
    (always opened: the views are measured on them), the patch adapted unless set."""
    from dinodiag.data import open_dataset

    assert spec.pipeline_spec is not None
    config = with_brought_pipeline(config, spec.pipeline_spec, spec.pipeline_kwargs)
    _check_batch(config)
    check_device(config.run.device)
    dataset = open_dataset(config.data.data, split=config.data.train_split)
    adapted = ""
    if spec.patch_size is None:
        found = adapted_patch_size(config, dataset)
        if found is not None:
            config = config.with_overrides({"model.patch_size": found[0]})
            adapted = found[1]
    run_pipeline = resolve_run_pipeline(config, dataset)
    if len(dataset) < config.data.batch_size:
        raise ConfigError(
            f"batch size {config.data.batch_size} is larger than the training set "
            f"({len(dataset)} images in {config.data.data}): lower the batch size."
        )
    return LaunchPlan(config, run_pipeline.config, len(dataset), run_pipeline, adapted)


def _check_batch(config: TrainConfig) -> None:
    if config.optim.koleo_weight > 0 and config.data.batch_size < 2:
        raise ConfigError(
            f"batch size {config.data.batch_size}: KoLeo needs at least 2 images per step "
            "(at 1 it is infinite). Use a batch of 2 or more (DINO works best from 64)."
        )


def reference_at(plan: LaunchPlan, reference: PipelineConfig) -> PipelineConfig:
    """The reference recipe at the crop sizes ``plan`` trains: the same global size and patch,
    the same local size when the plan has local crops (else scaled in proportion), so that
    only the recipe (counts, scales, photometrics) differs."""
    patch = plan.config.model.patch_size
    scaled = scaled_pipeline(reference, plan.pipeline.global_crops_size, patch)
    if plan.pipeline.local_crops_number and plan.pipeline.local_crops_size % patch == 0:
        scaled = scaled.replace(local_crops_size=plan.pipeline.local_crops_size)
    name = reference.name.split("@")[0]  # "seed-fixed@32px" -> "seed-fixed"
    return scaled.replace(name=f"{name}@{scaled.global_crops_size}px")


def spec_for_recipe(
    spec: LaunchSpec, recipe: PipelineConfig, patch_size: int | None = None
) -> LaunchSpec:
    """``spec`` training ``recipe`` as it is: its counts and sizes (and ``patch_size``, when
    given) set as knobs, so that no preset override changes them."""
    return replace(
        spec,
        pipeline=recipe,
        pipeline_spec=None,
        pipeline_kwargs="",
        patch_size=patch_size or spec.patch_size,
        local_crops=recipe.local_crops_number,
        global_size=recipe.global_crops_size,
        local_size=recipe.local_crops_size,
    )


def preset_knobs(preset: str, recipe: PipelineConfig | None = None) -> LaunchSpec:
    """The launch form's starting values: every knob at the training preset's value, the crop
    sizes those of ``recipe`` (default: the preset's pipeline) scaled to the preset's global
    crop size and patch (:func:`scaled_pipeline`). ``0`` stands for "no limit"."""
    base = get_train_preset(preset).config
    preset_pipeline = resolve_launch(LaunchSpec(preset=preset), check_data=False).pipeline
    recipe = recipe or preset_pipeline
    scaled = scaled_pipeline(recipe, preset_pipeline.global_crops_size, base.model.patch_size)
    return LaunchSpec(
        preset=preset,
        epochs=float(base.run.epochs),
        max_steps=base.run.max_steps or 0,
        max_seconds=int(base.run.max_seconds or 0),
        batch_size=base.data.batch_size,
        lr=base.optim.base_lr,
        arch=base.model.arch,
        patch_size=base.model.patch_size,
        depth=base.model.depth or 12,  # None in a preset means 12 blocks
        eval_every=base.run.eval_every,
        local_crops=recipe.local_crops_number,
        global_size=scaled.global_crops_size,
        local_size=scaled.local_crops_size,
        seed=base.run.seed,
    )


def build_command(
    spec: LaunchSpec, run_dir: Path, pipeline_file: Path | None = None, python: str | None = None
) -> list[str]:
    """``python -m dinodiag train --preset P --run-dir D [--flag value ...]`` for a spec."""
    command = [
        python or sys.executable,
        "-m",
        "dinodiag",
        "train",
        "--preset",
        spec.preset,
        "--run-dir",
        str(run_dir),
    ]
    if pipeline_file is not None:
        command += ["--pipeline", str(pipeline_file)]
    elif spec.pipeline_spec:
        command += ["--pipeline", spec.pipeline_spec]
        if spec.pipeline_kwargs:
            command += ["--pipeline-kwargs", spec.pipeline_kwargs]
    for name, (_, flag) in _FIELDS.items():
        value = getattr(spec, name)
        if value is None:
            continue
        if name in _ZERO_IS_NONE and not value:
            command += ["--set", f"run.{name}=none"]
        else:
            command += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return command


def estimate_launch(spec: LaunchSpec, timeout: float = 180.0) -> TimeEstimate:
    """``train --estimate`` of a spec in a fresh process (as the run will start): the measured
    set-up, step and k-NN times and what fits in the budget. Raises :class:`TrainingError`
    with the command's message when it fails."""
    command = build_command(spec, Path("estimate-only")) + ["--estimate", "--json"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TrainingError(
            f"the estimate took more than {timeout:g} s: the run is very slow here "
            "(a smaller model, fewer or smaller crops, or a GPU would help)."
        ) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise TrainingError("the estimate failed: " + (" ".join(tail) or f"exit {done.returncode}"))
    data = json.loads(lines[-1])
    return TimeEstimate(**{k: data[k] for k in TimeEstimate.__dataclass_fields__})


def scaled_pipeline(pipeline: PipelineConfig, global_size: int, patch_size: int) -> PipelineConfig:
    """The recipe at another global crop size: counts, scales and photometrics kept, the local
    size scaled in proportion (rounded to a multiple of ``patch_size``, at least one patch).

    ``seed-fixed`` (96 / 96 px) at 32 px gives 32 / 32 px; ``dinov2`` (224 / 96) gives 32 / 12.
    """
    if global_size < 1 or patch_size < 1:
        raise ConfigError(f"crop size {global_size} and patch size {patch_size} must be >= 1.")
    ratio = pipeline.local_crops_size / pipeline.global_crops_size
    local = max(patch_size, round(global_size * ratio / patch_size) * patch_size)
    return pipeline.replace(
        global_crops_size=global_size, local_crops_size=local, patch_size=patch_size
    )
