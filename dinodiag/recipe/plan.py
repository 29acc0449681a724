"""What a run will train, planned once for the command line and the dashboard alike.

``plan_run(base, overrides, data)`` applies the changes to a training config and validates it
as the trainer will: the crop knobs a preset sets are dropped when the run trains your own
code (the code makes its crops), a pipeline file's patch size is taken, a new architecture
brings its own width, your code's views (measured on the training images by ``data``) set the
patch when the preset's does not divide them, and the crops, the device and the training set
are checked (the KoLeo batch by the config itself), each rule written here once.

    plan = plan_run(get_train_preset("cpu-demo").config, {"data.batch_size": 32}, data)
    plan.config, plan.pipeline, plan.views, plan.adapted, plan.train_images

``data`` is what only a process with torch can answer (:class:`TrainingData`: how many
training images, what your code's views measure, how many GPUs), implemented by
:class:`dinodiag.train.training_data.TrainingImages`; this module stays plain data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import ConfigError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.config import CROP_KNOBS, TrainConfig
from dinodiag.recipe.crops import (
    ViewShapes,
    check_crops,
    check_view_shapes,
    fitting_patch_sizes,
    pipeline_file_patch_size,
    resolve_pipeline,
    stand_in_pipeline,
)

PIPELINE_FILE = "pipeline.yaml"  # a plan's recipe, written next to the run by its launcher
# What a resumed run keeps: it goes on with the crops it started with (the trainer reads its
# stored pipeline), so a change of these would be written to config.json but never trained.
RESUME_KEEPS = (
    "data.pipeline",
    "data.pipeline_kwargs",
    *(f"data.{knob}" for knob in CROP_KNOBS),
    "data.dinov2_blur",
)
# ViT-L / ViT-g: what no CPU trains in useful time (check_device).
HEAVY_ARCHS = {
    "vit_large": "ViT-L (300 M weights)",
    "vit_giant2": "ViT-g (1.1 B weights)",
}


@dataclass(frozen=True)
class Measured:
    """What a plan measured on the machine and the data (None: not asked for)."""

    images: int | None = None  # images in the training split
    views: ViewShapes | None = None  # your own code's views
    gpus: int | None = None  # CUDA GPUs here


class TrainingData(Protocol):
    """What a plan asks of the machine and the data (a process with torch answers it)."""

    def measure(self, config: TrainConfig, *, images: bool, views: bool, gpus: bool) -> Measured:
        """The training images of ``config.data`` counted (DataError when the split cannot
        open), your own code's views measured on them (``config.data.pipeline`` is code),
        the GPUs counted: each only when asked."""


@dataclass(frozen=True)
class RunPlan:
    """What a validated run will train."""

    config: TrainConfig  # the training config (base + changes); a recipe plan's
    # data.pipeline is PIPELINE_FILE until the launcher writes the recipe there
    pipeline: PipelineConfig | None  # the crops it trains with (sizes and patch applied); for
    # your own code its measured counts, sizes and normalisation (None when a run resumes
    # your code: the trainer measures the code the run started with)
    train_images: int | None  # images in the training split (None when not opened)
    recipe: PipelineConfig | None = None  # a recipe to write as pipeline.yaml (None: the
    # config's data.pipeline names the crops)
    views: ViewShapes | None = None  # your own code's views as measured (None: a recipe)
    adapted: str = ""  # why the patch size differs from the base's (your code's crops)
    label: str = ""  # end of the run id (default: the config's name)

    @property
    def own(self) -> bool:
        """Whether the plan trains your own code rather than a recipe."""
        return is_pipeline_spec(self.config.data.pipeline)

    @property
    def steps(self) -> int | None:
        """Planned optimisation steps (the time budget may end the run earlier)."""
        if self.train_images is None:
            return None
        # the trainer's epoch: DINOv2's OFFICIAL_EPOCH_LENGTH when set, else the loader's
        # batches (drop_last)
        per_epoch = self.config.run.epoch_length or max(
            1, self.train_images // self.config.data.batch_size
        )
        steps = max(1, round(self.config.run.epochs * per_epoch))
        cap = self.config.run.max_steps
        return min(steps, cap) if cap else steps

    def with_run(self, changes: dict[str, Any]) -> RunPlan:
        """The plan with ``{"run.field": value}`` changes (threads, steps): nothing the crops
        or the data depend on, so nothing is measured again."""
        if any(not key.startswith("run.") for key in changes):
            raise ConfigError(f"with_run changes run.* fields only, not {sorted(changes)}.")
        return dataclasses.replace(self, config=self.config.with_overrides(changes))

    def with_images(self, data: TrainingData) -> RunPlan:
        """The plan with its training images counted and the batch checked against them; as
        it is when they were counted already. Raises :class:`DataError`."""
        if self.train_images is not None:
            return self
        images = data.measure(self.config, images=True, views=False, gpus=False).images
        assert images is not None
        check_images(self.config, images)
        return dataclasses.replace(self, train_images=images)

    def summary(self) -> str:
        """One sentence for the form: steps, batch, training images, time budget, views."""
        p = self.pipeline
        if p is None:
            return f"Resumes {self.config.name}: the trainer measures your code again."
        views = f"{p.global_crops_number} × {p.global_crops_size} px"
        if p.local_crops_number:
            views += f" + {p.local_crops_number} × {p.local_crops_size} px"
        budget = self.config.run.max_seconds
        stop = f", stopping at {budget:g} s (set-up and k-NN included)" if budget else ""
        # With a budget the count is a cap: how many fit depends on the machine and the
        # pipeline's cost per step (the form's "Estimate the time" measures it).
        steps = "The planned" if self.steps is None else f"{'Up to ' if budget else ''}{self.steps}"
        what = f"pipeline `{p.name}`"
        if self.views is not None:
            what = f"your code `{self.views.label}` (views measured on the training images)"
        text = (
            f"{steps} steps of {self.config.data.batch_size} images "
            f"({self.train_images} training images){stop}; views per image: {views}; {what}."
        )
        return text + (f" ViT {self.adapted}." if self.adapted else "")


def plan_run(
    base: TrainConfig,
    overrides: dict[str, Any] | None = None,
    data: TrainingData | None = None,
    *,
    recipe: PipelineConfig | None = None,
    label: str = "",
    count_images: bool = True,
    resume: bool = False,
    check_machine: bool = True,
) -> RunPlan:
    """The training config and the crops ``base`` with ``overrides`` (``{"section.field":
    value}``) trains, validated as the trainer will.

    ``recipe``: train this :class:`PipelineConfig` (written as :data:`PIPELINE_FILE` next to
    the run), scaled to the run's global crop size and patch (:func:`scaled_pipeline`), then
    the crop fields applied. ``data`` (:class:`TrainingData`) measures your code's
    views, counts the training images (``count_images``; always for your code, whose images
    are opened to measure it) and the GPUs (``check_machine``);
    without it nothing is measured, counted or checked against the machine. ``resume``: the
    base is a run's own config.json, so its crops and patch stay as they were.
    Raises :class:`ConfigError` naming the field, or :class:`DataError` for the dataset.
    """
    config, given = _configured(base, dict(overrides or {}), recipe, resume)
    own = recipe is None and is_pipeline_spec(config.data.pipeline)
    if own and not resume and data is None:
        raise ConfigError(
            f"data.pipeline = {config.data.pipeline!r} is your own code: its views are "
            "measured on the training images, so plan it with the training data."
        )
    measured = Measured()
    if data is not None:  # one call: the images opened once, your code measured on them
        measured = data.measure(
            config,
            images=count_images or (own and not resume),  # open anyway to measure your code
            views=own and not resume,
            gpus=check_machine,
        )
    if measured.gpus is not None:
        check_device(config, measured.gpus)
    if measured.images is not None:
        check_images(config, measured.images)
    adapted = ""
    if own and not resume and "model.patch_size" not in given:
        assert measured.views is not None
        config, adapted = _adapted_patch(config, measured.views)
    pipeline: PipelineConfig | None  # the crops, made and checked last (recipe/crops.py)
    if recipe is not None:
        size = config.data.global_crops_size or recipe.global_crops_size
        pipeline = scaled_pipeline(recipe, size, config.model.patch_size)
        pipeline = pipeline.replace(**_crop_changes(config))
        check_crops(pipeline, config.model)
    elif own and resume:
        pipeline = None  # the trainer measures the code the run started with (its stored spec)
    elif own:
        assert measured.views is not None
        pipeline = stand_in_pipeline(measured.views, config.model)
        check_view_shapes(measured.views, config.model)
    else:
        pipeline = resolve_pipeline(config)  # the crop fields and the patch applied, checked
    return RunPlan(
        config,
        pipeline,
        measured.images,
        recipe=pipeline if recipe else None,
        views=measured.views,
        adapted=adapted,
        label=label,
    )


def _configured(
    base: TrainConfig, changes: dict[str, Any], recipe: PipelineConfig | None, resume: bool
) -> tuple[TrainConfig, set[str]]:
    """``base`` with the changes and what they imply; the fields given (before the implied)."""
    given = set(changes)
    if recipe is not None:
        changes.update({"data.pipeline": PIPELINE_FILE, "data.pipeline_kwargs": ""})
    arch = changes.get("model.arch")
    if arch is not None and arch != base.model.arch and not resume:
        # a preset's custom width belongs to the preset's architecture
        changes.setdefault("model.embed_dim", None)
        changes.setdefault("model.num_heads", None)
    pipeline = changes.get("data.pipeline")
    if "data.pipeline" in given and not resume and is_pipeline_spec(str(pipeline)):
        for knob in CROP_KNOBS:  # your code makes its crops: the base's crop knobs go
            changes.setdefault(f"data.{knob}", None)
    elif "data.pipeline" in given and "model.patch_size" not in given and recipe is None:
        patch = pipeline_file_patch_size(str(pipeline))  # a DINOv2 file's student.patch_size
        if patch is not None:
            changes["model.patch_size"] = patch
    try:
        config = base.with_overrides(changes)
    except ConfigError:
        if resume:  # a crop change on resume is the first thing to say (see below)
            _check_resume_keeps(base, changes)
        raise
    if resume:
        _check_resume_keeps(base, {field: _field(config, field) for field in RESUME_KEEPS})
    return config, given


def _field(config: TrainConfig, field: str) -> Any:
    section, _, name = field.partition(".")
    return getattr(getattr(config, section), name)


def _check_resume_keeps(base: TrainConfig, values: dict[str, Any]) -> None:
    """A resumed run trains the crops it started with: a change of them (``values``,
    ``{"data.field": value}``) is refused, naming the field (a change the trainer would ignore
    while config.json recorded it)."""
    for field in RESUME_KEEPS:
        if field not in values:
            continue
        before, after = _field(base, field), values[field]
        if after != before and str(after) != str(before):  # --set gives text: "4" is 4
            raise ConfigError(
                f"{field} = {after!r} cannot change when a run resumes: it goes on with the "
                f"crops it started with ({field} = {before!r} in its config.json). To train "
                "other crops start a new run (another --run-dir), or drop the change."
            )


def _crop_changes(config: TrainConfig) -> dict[str, Any]:
    """The config's crop knobs as the :class:`PipelineConfig` fields they set."""
    fields = {
        "local_crops": "local_crops_number",
        "global_crops_size": "global_crops_size",
        "local_crops_size": "local_crops_size",
    }
    return {
        target: getattr(config.data, knob)
        for knob, target in fields.items()
        if getattr(config.data, knob) is not None
    }


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


def _adapted_patch(config: TrainConfig, views: ViewShapes) -> tuple[TrainConfig, str]:
    """``config`` with a patch size that divides your code's crops when its own does not
    (the nearest divisor of every side), and the sentence saying so."""
    p = config.model.patch_size
    if not config.model.arch.startswith("vit"):
        return config, ""
    if all(h % p == 0 and w % p == 0 for h, w in views.sizes):
        return config, ""
    patch = fitting_patch_sizes(views.sizes, p)[0]
    shown = ", ".join(f"{h}x{w}" for h, w in views.sizes)
    if patch == 1:  # a token per pixel: (H x W) tokens, hours per step at any real size
        raise ConfigError(
            f"pipeline {views.label} makes crops of {shown} px, which no patch size above 1 "
            f"divides, so the ViT's patch {p} cannot adapt to them: make crops that are "
            f"multiples of {p} px in your code, or give --patch-size 1 (a token per pixel)."
        )
    why = (
        f"patch size {patch} instead of {p}: the crops of {views.label} ({shown} px) are not "
        f"multiples of {p} (give --patch-size to choose another)"
    )
    return config.with_overrides({"model.patch_size": patch}), why


def check_images(config: TrainConfig, images: int) -> None:
    """The batch must fit in the training set (the loader drops the last partial batch)."""
    if images < config.data.batch_size:
        batch = config.data.batch_size
        raise ConfigError(
            f"data.batch_size = {batch}: the batch size {batch} is larger than the training "
            f"set ({images} images in {config.data.data}): lower it to at most {images}, or "
            "train on more images."
        )


def check_device(config: TrainConfig, gpus: int) -> None:
    """The run's device must exist here (``cuda:N`` needs N + 1 GPUs), and ViT-L / ViT-g are
    refused on a CPU, where a step takes hours."""
    device = config.run.device.strip().lower()
    if device.startswith("cuda"):
        index = int(device[5:]) if device[5:].isdigit() else 0
        if index >= gpus:
            found = f"{gpus} GPU(s)" if gpus else "no CUDA GPU"
            raise ConfigError(
                f"run.device = {device!r} is not available ({found} detected): choose cpu or auto."
            )
    if config.model.arch in HEAVY_ARCHS and (device == "cpu" or (device == "auto" and not gpus)):
        what = HEAVY_ARCHS[config.model.arch]
        raise ConfigError(
            f"model.arch = {config.model.arch} ({what}) on a CPU would take hours per step: "
            "train it on a GPU (--device cuda), or keep the recipe on a student a CPU runs "
            "(--arch vit_small --depth 4; for a 2-core laptop --preset cpu-demo)."
        )
