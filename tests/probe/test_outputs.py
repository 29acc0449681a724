"""A user's pipeline output split into global / local view tensors, with notes and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from dinodiag.errors import PipelineSpecError
from dinodiag.probe.outputs import as_tensors, split_views, view_objects
from tests.facts import assert_mentions


def test_dict_output_keeps_its_groups() -> None:
    notes: list[str] = []
    output = {"global_crops": [torch.zeros(3, 8, 8)] * 2, "local_crops": [torch.ones(3, 4, 4)]}
    globals_, locals_ = split_views(output, "spec", notes)
    assert [tuple(v.shape) for v in globals_] == [(3, 8, 8)] * 2
    assert [tuple(v.shape) for v in locals_] == [(3, 4, 4)] and notes == []


def test_dict_output_with_extra_keys_names_them() -> None:
    notes: list[str] = []
    view = torch.zeros(3, 8, 8)
    output = {"global_crops": [view] * 2, "global_crops_teacher": [view] * 2, "weak_flag": True}
    globals_, locals_ = split_views(output, "spec", notes)
    assert len(globals_) == 2 and locals_ == []
    [note] = notes
    assert note.startswith("dict output: ")
    assert_mentions(note, "'global_crops'", "'local_crops'", "global_crops_teacher", "weak_flag")
    assert view_objects(output, 2) == ([view, view], [])


def test_list_output_guesses_at_most_two_leading_globals_and_says_so() -> None:
    notes: list[str] = []
    views = [torch.zeros(3, 8, 8)] * 3 + [torch.zeros(3, 4, 4)]
    globals_, locals_ = split_views(views, "spec", notes)
    assert (len(globals_), len(locals_)) == (2, 2)
    [note] = notes
    assert note.startswith("list output: ")
    assert_mentions(note, "first 2 views", "global crops")
    globals_, locals_ = split_views(views, "spec", notes := [], n_global=3)
    assert (len(globals_), len(locals_)) == (3, 1) and notes == []


def test_a_single_view_is_one_global_crop() -> None:
    globals_, locals_ = split_views(torch.zeros(3, 8, 8), "spec", [])
    assert len(globals_) == 1 and locals_ == []


def test_pil_and_numpy_views_are_converted_with_a_note() -> None:
    notes: list[str] = []
    image = Image.new("RGB", (6, 4), (255, 0, 51))
    views = as_tensors([image, image, np.zeros((3, 4, 4), np.float32)], "views", "spec", notes)
    assert tuple(views[0].shape) == (3, 4, 6)  # ToTensor: (C, H, W) in [0, 1]
    assert views[0][:, 0, 0].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert sum("PIL images" in n for n in notes) == 1  # once, not once per view
    [note] = [n for n in notes if n.startswith("views[2] ")]
    assert_mentions(note, "numpy array", "torch tensors")


@pytest.mark.parametrize(
    ("output", "facts"),
    [
        # the part that is missing or wrong, what it was, and what it should be
        ({"local_crops": []}, ["without 'global_crops'", "['local_crops']"]),
        ({"global_crops": "a"}, ["global_crops", "type str", "a list"]),
        ([torch.zeros(3, 4, 4), 7], ["views[1]", "type int", "torch tensor"]),
        ([], ["empty list", "no views"]),
        ((), ["empty tuple", "no views"]),
        ({"global_crops": []}, ["no global crops", "at least one global view"]),
    ],
)
def test_unusable_outputs_name_the_pipeline_and_the_part(output: object, facts: list[str]) -> None:
    with pytest.raises(PipelineSpecError) as info:
        split_views(output, "mine", [])
    assert str(info.value).startswith("pipeline 'mine' returned ")  # the pipeline first
    assert_mentions(str(info.value), *facts)
