"""dinodiag.dashboard.comparisons: the pipelines the inspector and the statistics show."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

import dinodiag
from dinodiag.dashboard import comparisons
from dinodiag.dashboard.context import SidebarContext
from dinodiag.dashboard.sidebar import PipelineChoice, config_key
from dinodiag.data import open_dataset


def context(preset: str = "dinov2", reference: str = "dinov2") -> SidebarContext:
    config = dinodiag.load_config(preset)
    return SidebarContext(
        None,
        "sample",
        None,
        PipelineChoice(preset=preset),
        config,
        dinodiag.build_pipeline(config),
        config_key(config),
        None,
        reference,
        0,
    )


def test_the_inspector_shows_the_sidebar_the_reference_or_the_seeds_two_recipes():
    ctx = context("seed-broken")
    assert list(comparisons.inspector_choices("dinov2")) == ["none", "reference", "seed"]
    assert comparisons.inspector_choices("dinov2")["reference"] == "Reference (dinov2)"
    (alone,) = comparisons.inspector_pipelines("none", ctx)
    assert (alone.title, alone.key, alone.config) == ("seed-broken", ctx.pipeline_key, ctx.config)
    assert alone.mean == ctx.config.mean and alone.std == ctx.config.std
    mine, ref = comparisons.inspector_pipelines("reference", ctx)
    assert ref.title == "reference: dinov2" and ref.key == config_key(ctx.reference_config)
    seed = comparisons.inspector_pipelines("seed", replace(ctx, pipeline=None))
    assert [s.title for s in seed] == ["seed-broken", "seed-fixed"]  # no sidebar pipeline needed
    image = open_dataset("sample", split="all")[0][0]
    assert len(seed[1].pipeline(image, seed=0).local_crops) == 8  # really the fixed recipe


def test_your_own_pipeline_is_shown_as_it_is():
    ctx = replace(context(), choice=PipelineChoice(source="own", spec="a.py:f"), config=None)
    (shown,) = comparisons.inspector_pipelines("none", ctx)
    assert shown.title == "a.py:f" and shown.mean is None and shown.std is None


def test_statistics_compare_with_another_preset_under_a_name_of_its_own():
    ctx = context("seed-broken", reference="seed-broken")
    choices = comparisons.statistics_choices(ctx)
    assert list(choices)[:2] == ["none", "reference"] and "seed-broken" not in choices
    assert "dinov2" in choices and choices["reference"] == "Reference (seed-broken)"
    assert comparisons.statistics_comparison("none", ctx) is None
    assert comparisons.statistics_comparison("dinov2", ctx).title == "dinov2"
    # the reference is the sidebar's own preset: "seed-broken (reference)" differs already
    assert comparisons.statistics_comparison("reference", ctx).title == "seed-broken (reference)"
    named_like_it = replace(ctx, config=ctx.config.replace(name="dinov2"))
    assert comparisons.statistics_comparison("dinov2", named_like_it).title == "dinov2 (2)"


def test_per_pipeline_stacks_the_tables_with_a_pipeline_column():
    ctx = context()
    shown = [comparisons.sidebar_pipeline(ctx), comparisons.statistics_comparison("lightly", ctx)]
    frames = {"dinov2": pd.DataFrame({"v": [1, 2]}), "lightly": pd.DataFrame({"v": [3]})}

    def table(frame: pd.DataFrame, config: object) -> pd.DataFrame:
        return frame.assign(name=config.name)

    stacked = comparisons.per_pipeline(table, shown, frames)
    assert stacked.to_dict("list") == {
        "pipeline": ["dinov2", "dinov2", "lightly"],
        "v": [1, 2, 3],
        "name": ["dinov2", "dinov2", "lightly"],
    }


def test_each_draw_and_each_seed_get_their_own_pipeline_seed():
    seeds = {comparisons.draw_seed(seed, draw) for seed in range(3) for draw in range(50)}
    assert len(seeds) == 150
    assert comparisons.draw_seed(0, 0) == 0 and comparisons.draw_seed(2, 5) == 200_011
