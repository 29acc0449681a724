"""The sidebar never wipes a page, never ignores an input silently, and lives in the URL."""

from __future__ import annotations

import json

from apphelpers import APP, assert_no_exception, errors, texts
from streamlit.testing.v1 import AppTest

from tests.facts import assert_mentions

CONFIG = "global_crops_scale: [0.4, 1.0]\nlocal_crops_number: 4\n"


def warnings(at: AppTest) -> list[str]:
    return [str(w.value) for w in at.warning]


def infos(at: AppTest) -> list[str]:
    return [str(i.value) for i in at.info]


def linked(**params: str) -> AppTest:
    """A fresh session opened from a link with these query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(params)
    at.run()
    assert_no_exception(at)
    return at


# ------------------------------------------------------------------------ bug 3: errors
def test_choosing_yaml_before_typing_is_no_error_and_the_page_keeps_its_title(app):
    at = app()
    at.switch_page("pages/statistics.py").run()
    at.radio(key="pl_source").set_value("config").run()
    assert_no_exception(at)
    assert at.title[0].value == "Sampled statistics"
    assert not errors(at)  # an empty box is not an error
    assert any(i.startswith("**Pipeline:**") and "YAML / JSON" in i for i in infos(at))
    assert any("paste a YAML / JSON config" in c.value for c in at.sidebar.caption)


def test_choosing_own_code_before_typing_is_no_error(app, allow_code):
    at = app()
    at.switch_page("pages/validation.py").run()
    at.radio(key="pl_source").set_value("own").run()
    assert_no_exception(at)
    assert at.title[0].value == "Validation" and not errors(at)
    assert any(i.startswith("**Pipeline:**") and "spec" in i for i in infos(at))


def test_an_invalid_field_value_keeps_reset_and_download_and_is_said_once(app):
    at = app()
    at.switch_page("pages/statistics.py").run()
    next(w for w in at.number_input if w.label == "global_crops_number").set_value(0).run()
    assert_no_exception(at)
    assert at.title[0].value == "Sampled statistics"
    assert [e for e in errors(at) if "global_crops_number = 0 " in e] == errors(at)
    assert len(errors(at)) == 1  # the sidebar's; the page points at it
    assert any("**Pipeline:** not usable" in w for w in warnings(at))
    assert at.button(key="edit_reset")  # still there
    download = next(b for b in at.get("download_button") if b.proto.label.startswith("Download"))
    assert download.proto.disabled
    at.button(key="edit_reset").click().run()
    assert_no_exception(at)
    assert not errors(at) and at.session_state["dinodiag_context"].config.global_crops_number == 2


def test_mean_and_std_are_typed_as_three_numbers(app):
    at = app()
    mean = next(w for w in at.text_input if w.label == "mean")
    assert mean.value == "0.485, 0.456, 0.406"  # one readable box, not three cut ones
    mean.set_value("0.5, 0.5, 0.5").run()
    assert at.session_state["dinodiag_context"].config.mean == (0.5, 0.5, 0.5)
    next(w for w in at.text_input if w.label == "mean").set_value("0.5, x").run()
    assert_no_exception(at)
    assert any("mean = '0.5, x'" in e and "three numbers" in e for e in errors(at))


# ------------------------------------------------------------------------ bug 4: two inputs
def _used_and_left_out(text: str) -> tuple[str, ...]:
    """The two inputs in the order the 'left out' line names them: the one used, then the other."""
    line = next(line for line in text.splitlines() if "left out" in line)
    assert line.startswith("Using"), line
    return tuple(sorted(("pasted text", "uploaded file mine.yaml"), key=line.index))


def test_a_pasted_config_and_an_uploaded_file_say_which_one_is_used(app):
    at = app(pl_source="config")
    at.text_area(key="pl_text").set_value(CONFIG).run()
    at.file_uploader(key="pl_upload").set_value(
        ("mine.yaml", b"local_crops_number: 6\n", "application/x-yaml")
    )
    at.run()
    assert_no_exception(at)
    assert at.session_state["dinodiag_context"].config.local_crops_number == 6  # the upload
    assert _used_and_left_out(texts(at)) == ("uploaded file mine.yaml", "pasted text")
    at.text_area(key="pl_text").set_value(CONFIG + "# edited\n").run()
    assert at.session_state["dinodiag_context"].config.local_crops_number == 4  # the text now
    assert _used_and_left_out(texts(at)) == ("pasted text", "uploaded file mine.yaml")


# ------------------------------------------------------------------------ the URL
def test_the_sidebar_choices_are_written_into_the_url(app):
    at = app()
    assert at.query_params == {}  # defaults leave the URL clean
    at.selectbox(key="pl_preset").set_value("seed-broken").run()
    at.number_input(key="seed").set_value(3).run()
    next(w for w in at.number_input if w.label == "local_crops_number").set_value(4).run()
    assert at.query_params["preset"] == "seed-broken" and at.query_params["seed"] == "3"
    assert json.loads(at.query_params["edits"]) == {"local_crops_number": 4}


def test_a_link_restores_dataset_pipeline_edits_reference_and_seed():
    at = linked(
        data="generated",
        images="30",
        side="64",
        preset="seed-broken",
        reference="dino",
        seed="7",
        edits='{"local_crops_number":4,"global_crops_scale":[0.4,1.0]}',
    )
    ctx = at.session_state["dinodiag_context"]
    assert ctx.dataset_key.startswith("generated:n=30,size=64")
    assert (ctx.reference, ctx.seed) == ("dino", 7)
    assert ctx.config.local_crops_number == 4 and ctx.config.global_crops_scale == (0.4, 1.0)
    edited = next(line for line in texts(at).splitlines() if line.startswith("Edited:"))
    assert_mentions(edited, "`global_crops_scale`", "`local_crops_number`")
    at.button(key="edit_reset").click().run()  # the link's edits are not applied again
    assert at.session_state["dinodiag_context"].config.local_crops_number == 0


def test_a_link_with_a_pasted_config_and_bad_values_says_what_it_left_out():
    at = linked(pipeline="config", config=CONFIG, seed="-1", preset="nope")
    assert at.session_state["dinodiag_context"].config.local_crops_number == 4
    told = "\n".join(warnings(at))
    assert_mentions(told, "`seed=-1`", "integer >= 0")
    assert "`preset=nope` is not one of" in told


def test_a_link_never_runs_a_spec_without_the_opt_in(tmp_path):
    marker = tmp_path / "pwned"
    spec = "subprocess:getoutput"
    at = linked(pipeline="own", spec=spec, kwargs=json.dumps({"cmd": f"touch {marker}"}))
    assert not marker.exists()
    assert "pl_spec" not in at.session_state or not at.session_state["pl_spec"]
    assert any("carries a pipeline spec" in w and "nothing of it ran" in w for w in warnings(at))
    assert "spec" not in at.query_params and "kwargs" not in at.query_params
    at = linked(data="cifar10", path=str(tmp_path))
    assert any("dataset roots" in w and "off" in w for w in warnings(at))
    assert "path" not in at.query_params


def test_with_the_opt_in_a_link_carries_the_spec(tmp_path, allow_code):
    module = tmp_path / "aug.py"
    module.write_text(
        "from torchvision import transforms\n"
        "def build():\n"
        "    view = transforms.Compose([transforms.RandomResizedCrop(32), transforms.ToTensor()])\n"
        "    return lambda image: [view(image), view(image)]\n"
    )
    at = linked(pipeline="own", spec=f"{module}:build")
    ctx = at.session_state["dinodiag_context"]
    assert ctx.pipeline is not None and ctx.choice.spec == f"{module}:build"
    assert at.query_params["spec"] == f"{module}:build"


def test_a_stale_validation_is_not_shown_as_current_on_home(app):
    at = app()
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    at.switch_page("pages/home.py").run()
    last = next(line for line in texts(at).splitlines() if "**Last validation:**" in line)
    assert ":green-badge[PASS]" in last
    at.selectbox(key="ds_source").set_value("generated").run()
    assert "OUT OF DATE" in texts(at) and "the dataset changed since" in texts(at)
    assert ":green-badge[PASS]" not in texts(at)
