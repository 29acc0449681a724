"""The dashboard keeps your place (issue 23): the Training page's tab and runs, Your run's
directory and the inspector's comparison in the URL; widget values kept across pages; the
last validation read back after a reload; an invalid pasted config keeping the last valid
results, stale; an uploaded image kept after leaving the inspector."""

from __future__ import annotations

from pathlib import Path

from apphelpers import APP, assert_no_exception, errors, texts
from streamlit.testing.v1 import AppTest
from test_app_inputs import png_bytes
from test_training_page import finished_run

from tests.facts import assert_mentions

OPEN_BRACKET = "name: typo\nlocal_crops_number: 8\nglobal_crops_size: 96\n"
OPEN_BRACKET += "global_crops_scale: [0.4, 1.0\nlocal_crops_size: 32\n"


def opened(page: str, **query: str) -> AppTest:
    """A fresh browser tab opened at ``page`` with the link's ``query``."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(query)
    at.switch_page(page)
    at.run()
    assert_no_exception(at)
    return at


def test_a_training_link_opens_its_tab_and_runs_not_the_newest(tmp_path: Path) -> None:
    root = Path(tmp_path / "runs")
    older = finished_run(root, "20260101-000000-older").name
    newer = finished_run(root, "20260102-000000-newer").name
    at = opened("pages/training.py", tab="Compare runs", runs=f"{older},{newer}", run=older)
    assert at.session_state["tr_tab"] == "Compare runs"
    assert at.multiselect(key="cmp_runs").value == [older, newer]
    assert (
        at.query_params["tab"] == "Compare runs" and at.query_params["runs"] == f"{older},{newer}"
    )
    at.session_state["tr_tab"] = "Live"
    at.run()
    shown = next(s for s in at.selectbox if s.label == "Run")
    assert shown.value == older  # the link's run, not the newest
    assert at.query_params["run"] == older and "tab" not in at.query_params  # Live: the default
    at.session_state["tr_tab"] = "Compare runs"
    at.run()
    assert at.multiselect(key="cmp_runs").value == [older, newer]


def test_a_bad_tab_in_a_link_is_said_and_left_out(tmp_path: Path) -> None:
    at = opened("pages/training.py", tab="Everything")
    [warning] = [w.value for w in at.sidebar.warning if "`tab=Everything`" in w.value]
    assert_mentions(warning, "not one of", "Live")  # the tabs it may be
    assert at.session_state["tr_tab"] == "Live"


def test_your_run_keeps_its_directory_in_the_url_and_the_box(app, tmp_path: Path) -> None:
    missing = str(tmp_path / "no_such_run")
    at = app()
    at.switch_page("pages/your_run.py").run()
    at.text_input(key="yr_path").set_value(missing).run()
    assert at.query_params["dir"] == missing
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/your_run.py").run()
    assert at.text_input(key="yr_path").value == missing  # filled when you come back
    assert opened("pages/your_run.py", dir=missing).text_input(key="yr_path").value == missing


def test_switching_back_to_preset_returns_to_the_preset_you_had(app) -> None:
    at = app()
    at.selectbox(key="pl_preset").set_value("seed-fixed").run()
    at.radio(key="pl_source").set_value("config").run()
    at.text_area(key="pl_text").set_value("local_crops_number: 4\n").run()
    at.radio(key="pl_source").set_value("preset").run()
    assert at.selectbox(key="pl_preset").value == "seed-fixed"
    assert at.session_state["dinodiag_context"].config.name == "seed-fixed"
    at.radio(key="pl_source").set_value("config").run()
    assert at.text_area(key="pl_text").value == "local_crops_number: 4\n"


def test_an_invalid_pasted_config_keeps_the_last_results_stale(app) -> None:
    at = app(pl_source="config", pl_text="local_crops_number: 4\n")
    at.switch_page("pages/statistics.py").run()
    at.text_area(key="pl_text").set_value(OPEN_BRACKET).run()
    assert_no_exception(at)
    ctx = at.session_state["dinodiag_context"]
    assert ctx.pipeline_error is None and ctx.config.local_crops_number == 4  # the last valid
    assert "line 4" in ctx.pipeline_stale and "`[`" in ctx.pipeline_stale
    assert at.title[0].value == "Sampled statistics"  # the page is drawn, not "not usable"
    assert ctx.stale_banner in errors(at)  # the banner that says which pipeline is kept
    assert_mentions(ctx.stale_banner, "last valid pipeline", f"`{ctx.pipeline_label}`")
    assert not any("**Pipeline:**" in w.value for w in at.warning)  # no "not usable" notice
    at.switch_page("pages/home.py").run()
    assert "STALE" in texts(at)
    at.text_area(key="pl_text").set_value("local_crops_number: 6\n").run()
    ctx = at.session_state["dinodiag_context"]
    assert ctx.pipeline_stale is None and ctx.config.local_crops_number == 6


def test_a_config_invalid_from_the_start_has_nothing_to_keep(app) -> None:
    at = app(pl_source="config", pl_text=OPEN_BRACKET)
    assert at.session_state["dinodiag_context"].pipeline_error.startswith("pasted config")
    # where the bracket was opened: the line and the column
    assert_mentions(
        at.session_state["dinodiag_context"].pipeline_error, "line 4", "`[`", "column 21"
    )


def test_the_last_validation_survives_a_reload(app) -> None:
    at = app(val_samples=4)
    at.switch_page("pages/validation.py").run()
    at.button(key="val_run").click().run()
    verdict = at.session_state["dinodiag_last_report"].verdict
    reloaded = opened("pages/home.py")  # a new session: nothing in its state
    assert "NOT RUN" not in texts(reloaded)
    assert f"{verdict.upper()}" in texts(reloaded) and "OUT OF DATE" not in texts(reloaded)
    reloaded.session_state["val_samples"] = 4
    reloaded.switch_page("pages/validation.py").run()
    assert any(m.value.startswith("### Verdict") for m in reloaded.markdown)
    reloaded.selectbox(key="pl_preset").set_value("seed-broken").run()
    reloaded.switch_page("pages/home.py").run()
    assert "OUT OF DATE" in texts(reloaded)  # another choice: the saved one, said to be old


def test_an_uploaded_image_stays_after_leaving_the_inspector(app) -> None:
    at = app()
    at.switch_page("pages/inspector.py").run()
    at.file_uploader(key="insp_upload").set_value(("mine.png", png_bytes((300, 200)), "image/png"))
    at.run()
    at.selectbox(key="insp_compare").set_value("reference").run()
    assert at.query_params["compare"] == "reference"
    at.switch_page("pages/home.py").run()
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert "upload: mine.png" in texts(at) and "300 × 200 px" in texts(at)
    assert at.selectbox(key="insp_compare").value == "reference"
    at.button(key="insp_forget").click().run()
    assert "upload: mine.png" not in texts(at)
    assert (
        opened("pages/inspector.py", compare="seed").selectbox(key="insp_compare").value == "seed"
    )


def test_the_image_picker_names_the_files(app) -> None:
    at = app()
    at.switch_page("pages/inspector.py").run()
    options = at.selectbox(key="insp_pick").options  # the labels the menu shows
    # each label: the image's index, then its file under its class folder
    assert [option.partition(": ")[0] for option in options[:2]] == ["0", "1"]
    assert_mentions(options[0], "documents/", "doc_01_375x500_portrait.png")
    assert_mentions(options[1], "documents/", "doc_02_500x375_chart.jpg")
