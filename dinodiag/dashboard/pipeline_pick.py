"""What a launch form trains: the data (the sidebar's dataset or the training preset's) and
the pipeline (the sidebar's recipe, the sidebar's own code, or the preset's own crops),
decided from the sidebar's state without Streamlit.

The training form (``pages/_training_form.py``) and the versus tab draw these offers as
radios and turn the choice into a :class:`PipelinePick`, which gives the plan's base config
and recipe (:func:`dinodiag.runs.run_plan.plan_run`):

    offer = pipeline_offer(ctx, preset_plan("cpu-demo").pipeline, code_allowed=False)
    offer.state                        # "choice" | "locked" (code off here) | "broken"
    pick = offer.pick("sidebar")       # PipelinePick("recipe", config=ctx.config)
    base = pick.train_base(preset.config, data="sample")
    plan = plan_run(base, changes, recipe=pick.recipe)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.dashboard.context import SidebarContext
from dinodiag.dashboard.sidebar import describe_config
from dinodiag.recipe.config import TrainConfig
from dinodiag.train.pipelines import with_own_pipeline

PICK_KINDS = ("recipe", "code", "preset")  # what a pick trains


@dataclass(frozen=True)
class PipelinePick:
    """What a run trains: the sidebar's recipe or code, or the preset's recipe."""

    kind: str  # "recipe" (the sidebar's config), "code" (the sidebar's own code) or "preset"
    config: PipelineConfig | None = None  # the sidebar's recipe when kind == "recipe"
    spec: str = ""  # file.py:factory when kind == "code"
    kwargs: str = ""  # its JSON keyword arguments
    confirmed: bool = True  # False while the sidebar's code cannot train and the user has not
    # agreed to train the preset's pipeline instead

    def __post_init__(self) -> None:
        if self.kind not in PICK_KINDS:
            raise ValueError(f"PipelinePick.kind is {self.kind!r}: use one of {PICK_KINDS}.")

    @property
    def recipe(self) -> PipelineConfig | None:
        """The sidebar's recipe the run trains (None: your code, or the preset's crops)."""
        return self.config if self.kind == "recipe" else None

    def base(self, config: TrainConfig) -> TrainConfig:
        """``config`` training your code when that is the pick (its crop fields dropped)."""
        return with_own_pipeline(config, self.spec, self.kwargs) if self.kind == "code" else config

    def train_base(self, preset_config: TrainConfig, data: str) -> TrainConfig:
        """The plan's base: the preset's config on ``data`` (a dataset spec), training your
        code when that is the pick. The recipe goes to the plan apart (:attr:`recipe`)."""
        return self.base(preset_config.with_overrides({"data.data": data}))


def crop_sizes(pipeline: Any, named: bool = False) -> str:
    """``2 × 32 px + 8 × 12 px``: a pipeline's crop counts and sizes (a PipelineConfig or a
    measured pipeline), without its name; ``named``: ``2 × 32 px globals + 8 × 12 px locals``
    (the cpu-demo set-up's pipeline is called small-images, which reads like a preset)."""
    globals_, locals_ = (" globals", " locals") if named else ("", "")
    text = f"{pipeline.global_crops_number} × {pipeline.global_crops_size} px{globals_}"
    if pipeline.local_crops_number:
        text += f" + {pipeline.local_crops_number} × {pipeline.local_crops_size} px{locals_}"
    return text


@dataclass(frozen=True)
class PipelineOffer:
    """What the pipeline radio offers, and the pick each answer makes."""

    state: str  # "choice": the radio; "locked": the sidebar's own code, which this server
    # does not run (the preset trains once the user agrees); "broken": the sidebar's pipeline
    # has an error (the preset trains)
    options: dict[str, str] = field(default_factory=dict)  # radio answer -> its label
    code: str = ""  # the sidebar's own code (file.py:factory), "" for a recipe
    kwargs: str = ""  # its JSON keyword arguments
    config: PipelineConfig | None = None  # the sidebar's recipe

    def pick(self, choice: str = "preset", confirmed: bool = True) -> PipelinePick:
        """The pick of the radio's ``choice`` ("sidebar" or "preset"); ``confirmed``: the
        user agreed to train the preset's pipeline in place of code this server refuses."""
        if self.state == "locked":
            return PipelinePick("preset", confirmed=confirmed)
        if self.state == "broken" or choice == "preset":
            return PipelinePick("preset")
        if choice != "sidebar":
            raise ValueError(f"pipeline choice {choice!r}: use one of {list(self.options)}.")
        if self.code:
            return PipelinePick("code", spec=self.code, kwargs=self.kwargs)
        return PipelinePick("recipe", config=self.config)


def pipeline_offer(
    ctx: SidebarContext, preset_pipeline: Any, preset: str = "the preset", *, code_allowed: bool
) -> PipelineOffer:
    """The pipeline radio of a launch form, the sidebar's first: its recipe, or its code
    (``code_allowed``: this server runs code from the browser), or the preset's own crops
    (``preset_pipeline``, named ``preset`` in the label)."""
    own = ctx.choice.source == "own"
    code = ctx.choice.spec.strip() if own else ""
    if own and not code_allowed:
        return PipelineOffer("locked", code=code)
    if (ctx.pipeline if own else ctx.config) is None:
        return PipelineOffer("broken")
    line = f"your code `{code}`" if code else describe_config(ctx.config)
    options = {
        "sidebar": f"the sidebar's: {line}",
        "preset": f"{preset}'s own crops: {crop_sizes(preset_pipeline, named=True)}",
    }
    kwargs = ctx.choice.spec_kwargs.strip() if code else ""
    return PipelineOffer("choice", options, code, kwargs, None if code else ctx.config)


@dataclass(frozen=True)
class DataOffer:
    """What the training-data radio offers: the sidebar's dataset (when a training process
    can read it) and the preset's."""

    options: dict[str, str]  # radio answer ("sidebar", "preset") -> its label
    default: str  # the answer the radio starts on
    sidebar_spec: str | None  # the sidebar's dataset spec, None when a process cannot read it
    sidebar_line: str  # what the sidebar's dataset is, or why a process cannot read it
    preset_data: str  # the preset's dataset spec
    unlabelled: bool  # the sidebar's images have no labels (no k-NN accuracy)

    def data(self, choice: str) -> str:
        """The dataset spec the run trains on for the radio's ``choice``."""
        return self.sidebar_spec if choice == "sidebar" and self.sidebar_spec else self.preset_data


def data_offer(ctx: SidebarContext, preset_data: str) -> DataOffer:
    """The training-data radio: the sidebar's dataset first when a process can read it,
    chosen by default when it is not the built-in sample (too few images to learn from)."""
    spec, line = ctx.training_data()
    options = {"preset": f"the preset's: `{preset_data}`"}
    if spec is not None:
        options = {"sidebar": f"the sidebar's: {line}", **options}
    default = "sidebar" if ctx.trains_on_sidebar_data else "preset"
    unlabelled = spec is not None and not getattr(ctx.dataset, "has_labels", False)
    return DataOffer(options, default, spec, line, preset_data, unlabelled)
