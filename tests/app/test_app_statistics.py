"""The statistics page: outside-the-reference shares, repeats, your own pipeline's name."""

from __future__ import annotations

from apphelpers import assert_no_exception, errors, texts

from tests.facts import assert_mentions


def test_the_share_outside_the_reference_range_and_the_repeats_are_said(app):
    at = app(stats_n=100, stats_compare="seed-broken")
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    text = texts(at)
    assert_mentions(text, "100 samples", "20 images", "drawn 5 times")
    assert_mentions(text, "**Outside dinov2's range**", "dashed lines")  # the heading, the key
    # the reference itself: inside its own range, which is named with its bounds
    dinov2 = next(x for x in text.splitlines() if x.startswith("- **dinov2**: "))
    assert_mentions(dinov2, "all inside", "global crops, scale", "0.32–1")
    line = next(
        x for x in text.splitlines() if x.startswith("- **seed-broken**: ") and "global" in x
    )
    assert "% below 0.32" in line


def test_your_own_pipeline_is_named_short_in_the_tables(app, tmp_path, allow_code):
    folder = tmp_path / "a" / "very" / "long" / "path" / "to" / "my" / "project"
    folder.mkdir(parents=True)
    module = folder / "my_augment.py"
    module.write_text(
        "from torchvision import transforms\n"
        "def build():\n"
        "    view = transforms.Compose([\n"
        "        transforms.RandomResizedCrop(64, scale=(0.2, 1.0)),\n"
        "        transforms.RandomHorizontalFlip(), transforms.ToTensor()])\n"
        "    return lambda image: [view(image), view(image)]\n"
    )
    at = app(pl_source="own", pl_spec=f"{module}:build", stats_n=50)
    at.switch_page("pages/statistics.py").run()
    assert_no_exception(at)
    assert not errors(at)
    rates = next(d.value for d in at.dataframe if "operation" in d.value.columns)
    assert set(rates["pipeline"]) == {"my_augment.py:build"}  # not the whole path
    summary = at.dataframe[0].value
    assert set(summary["pipeline"]) == {"my_augment.py:build"}
