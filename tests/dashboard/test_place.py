"""Issue 23's library parts: a page's place in the URL (links.page_query / page_values), an
unclosed bracket named where it was opened, views drawn to a common scale, file names in the
picker, validation reports saved for a reload."""

from __future__ import annotations

from pathlib import Path

import pytest

from dinodiag import build_pipeline
from dinodiag.augment.presets import get_preset
from dinodiag.checks.report import CheckReport, CheckResult
from dinodiag.dashboard import saved_validations
from dinodiag.dashboard.crop_pictures import common_side, item_name, view_groups
from dinodiag.dashboard.links import from_query, page_query, page_values, to_query
from dinodiag.dashboard.sidebar import PipelineChoice, base_config, unclosed_bracket
from dinodiag.errors import ConfigError
from tests.facts import assert_mentions


def test_a_page_writes_its_own_place_only_on_that_page():
    state = {"tr_tab": "Compare runs", "cmp_runs": ["a-1", "b-2"], "tr_run": "a-1"}
    assert page_query("training", state) == {"tab": "Compare runs", "runs": "a-1,b-2", "run": "a-1"}
    assert to_query(state, False, page="training")["runs"] == "a-1,b-2"
    assert to_query(state, False, page="") == {}  # Home carries no run
    assert page_query("training", {"tr_tab": "Live", "cmp_runs": []}) == {}  # defaults
    assert page_query("your_run", {"yr_path": "/x" * 600}) == {}  # too long for a URL
    assert page_query("inspector", {"insp_compare": "seed"}) == {"compare": "seed"}


def test_a_links_place_is_read_back_and_checked():
    values, notes = from_query(
        {"tab": "Look inside", "runs": "a-1,b-2", "seed": "2"}, False, "training"
    )
    assert values == {"seed": 2, "tr_tab": "Look inside", "cmp_runs": ["a-1", "b-2"]}
    assert not notes
    values, notes = page_values("inspector", {"compare": "everything", "tab": "Live"})
    [note] = notes
    assert values == {} and note.startswith("`compare=everything` ")
    assert_mentions(note, "none", "reference", "seed")  # the values it may have
    assert page_values("your_run", {"dir": "/runs/mine"})[0] == {"yr_path": "/runs/mine"}


@pytest.mark.parametrize(
    ("text", "line", "bracket"),
    [
        ("a: 1\nb: 2\nc: 3\nglobal_crops_scale: [0.4, 1.0\nlocal_crops_size: 32\n", 4, "["),
        ("mean: {r: 0.5\nstd: 1\n", 1, "{"),
    ],
)
def test_an_unclosed_bracket_is_named_at_the_line_it_was_opened(text, line, bracket):
    where = unclosed_bracket(text)
    assert where is not None and where.startswith(f"line {line}: the `{bracket}` opened")
    with pytest.raises(ConfigError) as error:
        base_config(PipelineChoice("config", config_text=text))
    assert f"not valid YAML/JSON at line {line}:" in str(error.value)


def test_other_yaml_errors_keep_the_parsers_position():
    assert unclosed_bracket("a: 1\n  b: 2\n") is None
    with pytest.raises(ConfigError, match="line 2, column"):
        base_config(PipelineChoice("config", config_text="a: 1\n  b: 2\n"))


def test_views_side_by_side_are_drawn_to_one_scale(image):
    small = build_pipeline(get_preset("seed-fixed").config)(image, seed=0)  # 96 px globals
    large = build_pipeline(get_preset("dinov2").config)(image, seed=0)  # 224 px globals
    side = common_side([small, large])
    assert side == 224
    alone = view_groups(small, None, None, tile=150)
    beside = view_groups(small, None, None, tile=150, scale_side=side)
    assert alone[0].width == 150 + 8  # alone: its globals fill the tile
    assert beside[0].width == round(150 * 96 / 224) + 8  # beside 224 px views: 96 / 224 wide
    assert view_groups(large, None, None, tile=150, scale_side=side)[0].width == 158


def test_the_picker_names_a_file_by_its_folder_and_name():
    assert item_name("/data/images/cats/001.jpg") == "cats/001.jpg"
    assert item_name("generated #3 (class 'disk')") == "generated #3 (class 'disk')"


def report(status: str) -> CheckReport:
    result = CheckResult("view_count", "Views", status, {"globals": 2, "locals": [96]}, 10, "m")
    return CheckReport([result], "mine", "dinov2", "sample", 4, 0)


def test_a_saved_report_is_found_for_its_choice_else_the_newest(tmp_path: Path):
    assert saved_validations.latest(("p", "d", "dinov2", 0), tmp_path) is None
    saved_validations.save(("p", "d", "dinov2", 0, 4), report("fail"), tmp_path)
    saved_validations.save(("q", "d", "dinov2", 0, 4), report("pass"), tmp_path)
    found, signature = saved_validations.latest(("p", "d", "dinov2", 0), tmp_path)
    assert found.verdict == "fail" and signature == ("p", "d", "dinov2", 0, 4)
    assert found.results[0].measured == {"globals": 2, "locals": [96]}
    other, signature = saved_validations.latest(("z", "d", "dinov2", 0), tmp_path)
    assert signature[0] in ("p", "q")  # none for this choice: the newest, said to be old
    (saved_validations.folder(tmp_path) / "broken.json").write_text("{", encoding="utf-8")
    assert saved_validations.latest(("p", "d", "dinov2", 0), tmp_path)[0].verdict == "fail"
