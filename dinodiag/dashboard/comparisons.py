"""Which pipelines a page shows side by side: the sidebar's, the reference, a preset, the
seed's broken and fixed recipes; every one built and keyed for the caches.

    shown = inspector_pipelines("seed", ctx)            # [Shown("seed-broken", ...), ...]
    other = statistics_comparison("reference", ctx)     # Shown("dinov2 (reference)", ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS, get_preset
from dinodiag.dashboard.context import SidebarContext
from dinodiag.dashboard.sidebar import config_key
from dinodiag.runs.story import STORY_PIPELINES

# Resample draws new crops: the pipeline seed steps by one per draw, and a prime stride keeps
# the draws of neighbouring sidebar seeds apart (seed 1's draws are not seed 0's later ones).
DRAW_STRIDE = 100_003


@dataclass(frozen=True)
class Shown:
    """One pipeline on a page, with what the caches and the pictures need."""

    title: str  # heading and table label ("seed-broken", "reference: dinov2")
    pipeline: Any  # callable pipeline (built from the config, or the user's own)
    key: str  # cache key of the pipeline
    config: PipelineConfig | None  # None for your own pipeline

    @property
    def mean(self) -> Sequence[float] | None:
        """Normalisation mean to undo for display (None: the pipeline's output is shown as is)."""
        return self.config.mean if self.config is not None else None

    @property
    def std(self) -> Sequence[float] | None:
        return self.config.std if self.config is not None else None


def built(title: str, config: PipelineConfig) -> Shown:
    """A config's pipeline, built, under ``title``."""
    return Shown(title, build_pipeline(config), config_key(config), config)


def sidebar_pipeline(ctx: SidebarContext) -> Shown:
    """The sidebar's pipeline (check ``ctx.pipeline`` is not None first), titled by its short
    label (your own spec by its file name and factory, not its path)."""
    return Shown(ctx.pipeline_short_label, ctx.pipeline, ctx.pipeline_key, ctx.config)


def per_pipeline(
    table: Callable[[pd.DataFrame, PipelineConfig | None], pd.DataFrame],
    shown: Sequence[Shown],
    frames: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """``table(frame, config)`` of each shown pipeline's sampled frame (``frames`` by title)
    stacked in one frame, with a first column ``pipeline`` (e.g. ``stats.summarize``)."""
    tables = []
    for run in shown:
        part = table(frames[run.title], run.config)
        part.insert(0, "pipeline", run.title)
        tables.append(part)
    return pd.concat(tables, ignore_index=True)


def draw_seed(seed: int, draw: int) -> int:
    """The pipeline seed of the inspector's ``draw``-th Resample under the sidebar's seed."""
    return seed * DRAW_STRIDE + draw


# ------------------------------------------------------------------------------ inspector


def inspector_choices(reference: str) -> dict[str, str]:
    """The inspector's "side by side with" options: key -> label."""
    return {
        "none": "Nothing: one pipeline",
        "reference": f"Reference ({reference})",
        "seed": "The seed's broken vs fixed pipelines",
    }


def inspector_pipelines(choice: str, ctx: SidebarContext) -> list[Shown]:
    """The pipelines the inspector draws for an option of :func:`inspector_choices`.

    ``"seed"`` shows the seed's two recipes (the sidebar's pipeline is not needed); the other
    options start with the sidebar's pipeline, so check it is usable first.
    """
    if choice == "seed":
        return [built(name, get_preset(name).config) for name in STORY_PIPELINES.values()]
    shown = [sidebar_pipeline(ctx)]
    if choice == "reference":
        shown.append(built(f"reference: {ctx.reference}", ctx.reference_config))
    return shown


# ------------------------------------------------------------------------------ statistics


def statistics_choices(ctx: SidebarContext) -> dict[str, str]:
    """The statistics page's "compare with" options: nothing, the reference, every other
    preset (key -> label)."""
    presets = [name for name in PRESETS if name != ctx.pipeline_short_label]
    return {
        "none": "Nothing",
        "reference": f"Reference ({ctx.reference})",
        **{p: p for p in presets},
    }


def statistics_comparison(choice: str, ctx: SidebarContext) -> Shown | None:
    """The pipeline sampled beside the sidebar's for a :func:`statistics_choices` key, named
    so that it never takes the sidebar pipeline's name; None for ``"none"``."""
    if choice == "none":
        return None
    if choice == "reference":
        other = ctx.reference_config
        name = f"{other.name} (reference)"
    else:
        other = get_preset(choice).config
        name = other.name
    if name == ctx.pipeline_short_label:
        name += " (2)"
    return built(name, other)
