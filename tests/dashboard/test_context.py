"""dinodiag.dashboard.context: what the pages read from the sidebar's resolved choices."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import dinodiag
from dinodiag.dashboard.context import SidebarContext, own_pipeline_key, spec_stamp
from dinodiag.dashboard.sidebar import PipelineChoice
from tests.facts import assert_mentions


class Folder:
    """What describe_dataset reads of a dataset."""

    name = "my_images"
    classes = ["cat", "dog"]

    def __len__(self) -> int:
        return 12


def context(**changes: object) -> SidebarContext:
    config = dinodiag.load_config("seed-broken")
    ok = SidebarContext(
        Folder(),
        "folder:/data/x",
        None,
        PipelineChoice(preset="seed-broken"),
        config,
        dinodiag.build_pipeline(config),
        "key",
        None,
        "dinov2",
        0,
    )
    return replace(ok, **changes)


def test_a_usable_context_describes_its_parts_and_has_no_problem():
    ctx = context()
    assert ctx.problems() == []
    assert ctx.pipeline_label == "seed-broken" and ctx.reference_config.name == "dinov2"
    assert ctx.pipeline_line.startswith("seed-broken: ")
    assert_mentions(ctx.pipeline_line, "2 × 96 px globals", "(0.2–1)", "no local crops")
    assert ctx.pipeline_status == ctx.pipeline_line
    assert ctx.dataset_status.startswith("my_images: ")
    assert_mentions(ctx.dataset_status, "12 images", "2 classes")


def test_errors_become_problems_and_red_lines():
    ctx = context(
        dataset=None,
        dataset_error="no such folder",
        config=None,
        pipeline=None,
        pipeline_error="bad YAML",
    )
    assert ctx.problems() == ["**Dataset:** no such folder", "**Pipeline:** bad YAML"]
    assert ctx.problems(need_dataset=False) == ["**Pipeline:** bad YAML"]
    assert ctx.problems(need_dataset=False, need_pipeline=False) == []
    assert ctx.dataset_status == ":red[no such folder]"
    assert ctx.pipeline_status == ":red[bad YAML]"
    assert_mentions(ctx.pipeline_line, "not usable", "sidebar")


def test_your_own_pipeline_is_named_by_its_spec():
    choice = PipelineChoice(source="own", spec="aug.py:build")
    ctx = context(choice=choice, config=None, pipeline=lambda image: image)
    assert ctx.pipeline_label == "aug.py:build"
    assert ctx.pipeline_line.startswith("your code: `aug.py:build`")


def test_which_sidebar_datasets_a_training_process_can_read():
    # the folder a training process reads, said as the sidebar says it
    assert context().training_data() == ("folder:/data/x", context().dataset_status)
    assert context().trains_on_sidebar_data
    spec, line = context(dataset_key="upload:abc").training_data()
    assert spec is None and "put them in a folder" in line
    spec, line = context(dataset=None, dataset_error="gone").training_data()
    assert spec is None and "(gone)" in line
    sample = context(dataset_key="sample")
    assert sample.training_data()[0] == "sample" and not sample.trains_on_sidebar_data


def test_your_own_pipeline_is_keyed_by_its_file_time(tmp_path: Path):
    module = tmp_path / "aug.py"
    module.write_text("def build():\n    return None\n")
    os.utime(module, (1_000_000, 1_000_000))
    assert spec_stamp(f"{module}:build") == 1_000_000
    assert spec_stamp("package.module:build") == 0.0  # a module: nothing to watch
    assert spec_stamp(f"{tmp_path / 'gone.py'}:build") == 0.0
    key = own_pipeline_key("aug.py:build", {"size": 96, "a": 1}, 5.0)
    assert key.startswith("own:aug.py:build:")
    # the arguments in any order are the same pipeline; another value or a newer file is not
    assert key == own_pipeline_key("aug.py:build", {"a": 1, "size": 96}, 5.0)
    assert key != own_pipeline_key("aug.py:build", {"a": 1, "size": 64}, 5.0)
    assert key != own_pipeline_key("aug.py:build", {"a": 1, "size": 96}, 6.0)
    assert key != own_pipeline_key("aug.py:other", {"a": 1, "size": 96}, 5.0)


def test_pages_say_what_is_missing_without_repeating_the_sidebars_error():
    assert context().notices() == []
    waiting = context(
        pipeline=None, config=None, pipeline_error="paste a config.", pipeline_waiting=True
    )
    assert waiting.notices() == [("info", "**Pipeline:** Paste a config.")]
    assert waiting.pipeline_status.startswith(":gray[")  # waiting, not an error
    assert_mentions(waiting.pipeline_status, "not chosen yet", "paste a config.")
    broken = context(dataset=None, dataset_error="no such folder /x")
    ((level, text),) = broken.notices(need_pipeline=False)
    assert level == "warning" and "/x" not in text and "*1 · Images*" in text
    assert broken.notices(need_dataset=False) == []
    own = context(
        config=None, choice=PipelineChoice(source="own", spec="/home/me/long/path/aug.py:build")
    )
    assert own.pipeline_short_label == "aug.py:build"
    assert "every operation recorded" in own.pipeline_line  # not only RandomResizedCrop
