"""The sidebar's rules for inputs: which config box is read, menu names, what pages say."""

from __future__ import annotations

import dinodiag
from dinodiag.dashboard import labels
from dinodiag.dashboard.progress import CountingPipeline, progress_text
from dinodiag.dashboard.sidebar import DATASET_SOURCES, config_input, menu_words
from dinodiag.data import open_dataset
from dinodiag.errors import DataError
from tests.facts import assert_mentions


def test_the_config_box_edited_last_is_read_and_the_other_is_named():
    assert config_input(None, "", None).source == "none"
    assert config_input(None, "a: 1", None).source == "text"
    assert config_input("f.yaml", "  ", "text").source == "upload"  # nothing pasted
    both = config_input("f.yaml", "a: 1", "upload")
    assert both.source == "upload" and "the pasted text is left out" in both.note
    both = config_input("f.yaml", "a: 1", "text")
    assert both.source == "text"
    assert_mentions(both.note, "uploaded file f.yaml", "left out")


def test_dataset_errors_use_the_menus_names(tmp_path):
    try:
        open_dataset(f"folder:{tmp_path}", split="all")  # an empty folder
    except DataError as exc:
        message = menu_words(str(exc))
    assert "'sample'" not in message and "'generated'" not in message
    # the menu's own labels for the sources that need no files
    sample, generated = (f"*{DATASET_SOURCES[key]}*" for key in ("sample", "generated"))
    assert_mentions(message, sample, generated)
    try:
        open_dataset(f"folder:{tmp_path / 'gone'}", split="all")
    except DataError as exc:
        message = menu_words(str(exc))
    assert_mentions(message, f"use {sample}", generated)


def test_repeats_and_staleness_lines():
    assert labels.repeats_line(16, 20) is None
    repeats = labels.repeats_line(500, 20)
    assert repeats.startswith("500 samples from 20 images")
    assert_mentions(repeats, "drawn 25 times")
    assert "2–3 times" in labels.repeats_line(50, 20)
    now = ("pipe", "sample", "dinov2", 0)
    assert labels.validation_staleness(None, now) is None
    assert labels.validation_staleness((*now, 16), now) is None  # the sample count may differ
    stale = labels.validation_staleness(("pipe", "generated", "dinov2", 1, 16), now)
    assert_mentions(stale, "dataset and seed", "changed")  # what changed, and only that
    assert "pipeline" not in stale and "reference" not in stale


def test_counting_pipeline_reports_progress_and_keeps_the_pipelines_attributes():
    seen = []
    pipeline = dinodiag.build_pipeline(dinodiag.load_config("dinov2"))
    counted = CountingPipeline(pipeline, 4, lambda d, t, s: seen.append((d, t)), updates=2)
    image, _ = open_dataset("sample", split="all")[0]
    for seed in range(5):  # the checks call it once more than the sample count
        counted(image, seed=seed)
    assert seen == [(2, 4), (4, 4), (4, 4)]
    assert counted.config is pipeline.config
    assert progress_text(40, 256, 20.0).split(" · ") == [
        "Checking: 40 / 256 images",
        "about 1 min 48 s left",
    ]
    assert progress_text(1, 256, 1.0) == "Checking: 1 / 256 images"
