"""dinodiag.dashboard.links: the sidebar in the URL, and code never carried without the opt-in."""

from __future__ import annotations

import json

from dinodiag.dashboard.links import PENDING_EDITS, from_query, to_query
from tests.facts import assert_mentions


def test_defaults_leave_the_url_clean_and_choices_are_written():
    assert to_query({"ds_source": "sample", "pl_source": "preset", "seed": 0}, False) == {}
    state = {
        "ds_source": "generated",
        "ds_gen_n": 64.0,
        "ds_gen_size": 96,
        "pl_source": "preset",
        "pl_preset": "seed-broken",
        "reference": "dino",
        "seed": 3,
        "pl_text": "ignored: not the config source",
    }
    query = to_query(state, False, {"local_crops_number": 4})
    assert query == {
        "data": "generated",
        "images": "64",
        "preset": "seed-broken",
        "reference": "dino",
        "seed": "3",
        "edits": '{"local_crops_number":4}',
    }
    values, notes = from_query(query, False)
    assert not notes
    assert values == {
        "ds_source": "generated",
        "pl_preset": "seed-broken",
        "reference": "dino",
        "seed": 3,
        "ds_gen_n": 64,
        PENDING_EDITS: {"local_crops_number": 4},
    }


def test_bad_values_are_left_out_with_a_note_never_raised():
    values, notes = from_query(
        {"data": "s3", "seed": "x", "images": "99999", "edits": "[1", "preset": "dinov2"}, False
    )
    assert values == {"pl_preset": "dinov2"}
    # one note per value left out: the key and value as in the link, then what is allowed
    data, seed, images, edits = notes
    assert data.startswith("`data=s3` ")
    assert_mentions(data, "sample", "generated", "folder", "cifar10", "stl10", "upload")
    assert seed.startswith("`seed=x` ") and "integer >= 0" in seed
    assert images.startswith("`images=99999` ") and "[10, 5000]" in images
    assert_mentions(edits, "field edits", "JSON object", "left out")
    assert from_query({"edits": json.dumps({"mean": [0.5, 0.5, 0.5]})}, False)[0] == {
        PENDING_EDITS: {"mean": (0.5, 0.5, 0.5)}
    }


def test_a_pasted_config_travels_unless_it_is_long():
    state = {"pl_source": "config", "pl_text": "local_crops_number: 4\n"}
    assert to_query(state, False) == {"pipeline": "config", "config": "local_crops_number: 4\n"}
    assert "config" not in to_query({**state, "pl_text": "x" * 5000}, False)
    [note] = from_query({"config": "x" * 5000}, False)[1]
    assert_mentions(note, "config", "4000 characters")


def test_specs_and_dataset_roots_need_the_opt_in_both_ways():
    state = {
        "pl_source": "own",
        "pl_spec": "subprocess:getoutput",
        "pl_kwargs": '{"cmd": "id"}',
        "ds_source": "cifar10",
        "ds_path": "/data/cifar",
    }
    assert to_query(state, False) == {"data": "cifar10", "pipeline": "own"}
    assert to_query(state, True) == {
        "data": "cifar10",
        "path": "/data/cifar",
        "pipeline": "own",
        "spec": "subprocess:getoutput",
        "kwargs": '{"cmd": "id"}',
    }
    link = {"pipeline": "own", "spec": "subprocess:getoutput", "kwargs": "{}", "data": "cifar10"}
    values, notes = from_query({**link, "path": "/data/cifar"}, False)
    assert values == {"ds_source": "cifar10", "pl_source": "own"}  # no spec, no root
    assert any("nothing of it ran" in n for n in notes)
    assert any("dataset roots are off" in n for n in notes)
    values, notes = from_query({**link, "path": "/data/cifar"}, True)
    assert values["pl_spec"] == "subprocess:getoutput" and values["ds_path"] == "/data/cifar"
    assert not notes
    folder, _ = from_query({"data": "folder", "path": "/data/images"}, False)
    assert folder["ds_path"] == "/data/images"  # an image folder needs no opt-in


def test_a_link_made_when_your_code_was_called_byo_still_opens_it():
    values, notes = from_query({"pipeline": "byo", "spec": "aug.py:build"}, code_allowed=True)
    assert values["pl_source"] == "own" and values["pl_spec"] == "aug.py:build" and not notes
