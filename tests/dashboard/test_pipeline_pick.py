"""dinodiag.dashboard.pipeline_pick: what a launch form trains (the data, the pipeline)."""

from __future__ import annotations

from dataclasses import replace

import pytest

import dinodiag
from dinodiag.dashboard.context import SidebarContext
from dinodiag.dashboard.pipeline_pick import (
    PipelinePick,
    crop_sizes,
    data_offer,
    pipeline_offer,
)
from dinodiag.dashboard.sidebar import PipelineChoice
from dinodiag.runs.run_plan import preset_plan
from tests.dashboard.test_context import Folder
from tests.dashboard.test_context import context as sidebar_context
from tests.facts import assert_mentions

CODE = "my_augment.py:build_transform"


class Labelled(Folder):
    """A dataset whose images have labels (k-NN accuracy can be measured)."""

    has_labels = True


def context(**changes: object) -> SidebarContext:
    return sidebar_context(**{"dataset": Labelled(), **changes})


def own_code(**choice: str) -> SidebarContext:
    spec = PipelineChoice(source="own", spec=f" {CODE} ", spec_kwargs=' {"size": 32} ', **choice)
    return context(choice=spec, config=None)


@pytest.fixture(scope="module")
def preset():
    return preset_plan("cpu-demo")


def test_the_sidebar_recipe_is_offered_first_and_picked_with_its_config(preset):
    ctx = context()
    offer = pipeline_offer(ctx, preset.pipeline, "cpu-demo", code_allowed=False)
    assert offer.state == "choice" and list(offer.options) == ["sidebar", "preset"]
    assert "seed-broken" in offer.options["sidebar"]
    assert "cpu-demo" in offer.options["preset"]
    assert crop_sizes(preset.pipeline, named=True) in offer.options["preset"]
    pick = offer.pick("sidebar")
    assert (pick.kind, pick.config, pick.recipe, pick.spec) == (
        "recipe",
        ctx.config,
        ctx.config,
        "",
    )
    assert offer.pick("preset") == PipelinePick("preset")


def test_own_code_is_offered_stripped_when_the_server_allows_it(preset):
    offer = pipeline_offer(own_code(), preset.pipeline, code_allowed=True)
    assert offer.state == "choice" and CODE in offer.options["sidebar"]
    pick = offer.pick("sidebar")
    assert (pick.kind, pick.spec, pick.kwargs, pick.recipe) == ("code", CODE, '{"size": 32}', None)
    base = pick.train_base(preset.config, "generated:50:32")
    assert base.data.pipeline == CODE and base.data.data == "generated:50:32"
    assert base.data.global_crops_size is None and base.data.local_crops is None


def test_own_code_the_server_refuses_trains_the_preset_only_once_confirmed(preset):
    offer = pipeline_offer(own_code(), preset.pipeline, code_allowed=False)
    assert offer.state == "locked" and offer.options == {} and offer.code == CODE
    assert offer.pick(confirmed=False) == PipelinePick("preset", confirmed=False)
    assert offer.pick("sidebar", confirmed=True) == PipelinePick("preset", confirmed=True)


@pytest.mark.parametrize(
    "ctx",
    [
        context(config=None, pipeline=None, pipeline_error="bad YAML"),
        replace(own_code(), pipeline=None, pipeline_error="no such file"),
    ],
    ids=["recipe", "code"],
)
def test_a_broken_sidebar_pipeline_trains_the_preset(ctx, preset):
    offer = pipeline_offer(ctx, preset.pipeline, code_allowed=True)
    assert offer.state == "broken" and offer.pick("sidebar") == PipelinePick("preset")


def test_an_unknown_answer_or_kind_is_refused_by_name(preset):
    offer = pipeline_offer(context(), preset.pipeline, code_allowed=True)
    with pytest.raises(ValueError, match="'both'"):
        offer.pick("both")
    with pytest.raises(ValueError, match="'brought'"):
        PipelinePick("brought")


def test_a_preset_or_recipe_pick_keeps_the_preset_config_on_the_chosen_data(preset):
    recipe = dinodiag.load_config("dinov2")
    for pick in (PipelinePick("preset"), PipelinePick("recipe", config=recipe)):
        base = pick.train_base(preset.config, "folder:/data/x")
        assert base.data.data == "folder:/data/x"
        assert base.data.pipeline == preset.config.data.pipeline
    assert PipelinePick("preset").recipe is None
    assert PipelinePick("code", config=recipe, spec=CODE).recipe is None


def test_crop_sizes_counts_globals_and_locals():
    dinov2 = dinodiag.load_config("dinov2")
    assert crop_sizes(dinov2) == "2 × 224 px + 8 × 96 px"
    assert_mentions(crop_sizes(dinov2, named=True), "2 × 224 px globals", "8 × 96 px locals")
    assert crop_sizes(dinodiag.load_config("seed-broken")) == "2 × 96 px"


def test_the_sidebar_dataset_is_offered_and_chosen_by_default_when_a_process_can_read_it():
    offer = data_offer(context(), "sample")
    assert list(offer.options) == ["sidebar", "preset"] and offer.default == "sidebar"
    assert (offer.sidebar_spec, offer.unlabelled) == ("folder:/data/x", False)
    assert offer.data("sidebar") == "folder:/data/x" and offer.data("preset") == "sample"


def test_the_sample_is_offered_but_the_preset_data_starts_chosen():
    offer = data_offer(context(dataset_key="sample"), "generated:50:32")
    assert list(offer.options) == ["sidebar", "preset"] and offer.default == "preset"


def test_uploads_and_broken_datasets_leave_only_the_preset_data():
    for ctx in (
        context(dataset_key="upload:abc"),
        context(dataset=None, dataset_error="no such folder"),
    ):
        offer = data_offer(ctx, "sample")
        assert list(offer.options) == ["preset"] and offer.default == "preset"
        assert offer.sidebar_spec is None and offer.data("sidebar") == "sample"
    assert (
        "no such folder"
        in data_offer(context(dataset=None, dataset_error="no such folder"), "x").sidebar_line
    )


def test_unlabelled_images_are_flagged():
    assert data_offer(context(dataset=Folder()), "sample").unlabelled is True
