"""dinodiag.dashboard.field_edits: mean / std typed as text, read back with a clear error."""

from __future__ import annotations

import pytest

import dinodiag
from dinodiag.dashboard.field_edits import (
    apply_edits,
    changed_values,
    editable_fields,
    parse_field_values,
    triple_text,
)
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions


def test_triples_are_one_text_box_read_back_as_numbers():
    cfg = dinodiag.load_config("dinov2")
    kinds = {f.key: f.kind for f in editable_fields(cfg)}
    assert kinds["mean"] == kinds["std"] == "triple"
    assert triple_text(cfg.std) == "0.229, 0.224, 0.225"
    values = parse_field_values(cfg, {"mean": "0.5,0.5; 0.5", "local_crops_number": 4})
    assert values == {"mean": (0.5, 0.5, 0.5), "local_crops_number": 4}
    edited = apply_edits(cfg, changed_values(cfg, values))
    assert edited.mean == (0.5, 0.5, 0.5) and edited.local_crops_number == 4
    assert changed_values(cfg, parse_field_values(cfg, {"std": triple_text(cfg.std)})) == {}


@pytest.mark.parametrize("text", ["0.5, 0.5", "a, b, c", "", "1, 2, 3, 4"])
def test_a_triple_that_is_not_three_numbers_names_the_field(text):
    with pytest.raises(ConfigError) as info:
        parse_field_values(dinodiag.load_config("dinov2"), {"std": text})
    assert str(info.value).startswith("std = ")
    assert_mentions(str(info.value), "invalid", "three numbers")
