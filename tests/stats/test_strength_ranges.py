"""dinodiag.stats.strength_ranges: the drawn strengths against the range a recipe draws in."""

from __future__ import annotations

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.stats.frames import sample_views
from dinodiag.stats.strength_ranges import strengths


def test_strengths_against_the_expected_recipe(small_dataset) -> None:
    released = PRESETS["dinov2-released"].config
    frame = sample_views(build_pipeline(released), small_dataset, 40, seed=0)
    drawn = strengths(frame, PRESETS["dinov2"].config).set_index(["kind", "strength"])
    brightness = drawn.loc[("global1", "brightness")]
    assert brightness.expected == "0.6 to 1.4" and bool(brightness.inside)
    assert 0.6 <= brightness["min"] <= brightness["max"] <= 1.4
    assert drawn.loc[("global2", "blur_sigma"), "expected"] == "0.1 to 2"
    assert ("global1", "blur_sigma") not in drawn.index  # never blurred: nothing drawn
