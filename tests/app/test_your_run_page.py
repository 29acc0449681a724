"""The "Your run" page in AppTest: a DINOv2 output directory opened from a path, its diagnosis,
curves (with a dinodiag run overlaid), crop check, checkpoint evaluation, k-NN per checkpoint
and look inside; bad paths give a message naming them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apphelpers import assert_no_exception, errors, texts
from streamlit.testing.v1 import AppTest

from dinodiag import runs
from dinodiag.runs import checkpoint_curve as curve
from tests.facts import assert_mentions
from tests.runs.dinov2_fakes import write_run


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("your_run")
    return {
        "healthy": write_run(root / "healthy", "healthy", patch=16),
        "uniform": write_run(root / "uniform", "uniform", iterations=(), patch=16),
    }


@pytest.fixture
def page(app: Callable[..., AppTest], tmp_path: Path, monkeypatch) -> Callable[..., AppTest]:
    """``page(path, tab)``: the page with a run directory typed in, on one tab."""
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "runs"))

    def open_page(path: str = "", tab: str = "Curves", **state: Any) -> AppTest:
        at = app(**state)
        at.switch_page("pages/your_run.py").run()
        assert_no_exception(at)
        if path:
            at.text_input(key="yr_path").set_value(path).run()
            at.session_state["yr_tab"] = tab
            at.run()
        assert_no_exception(at)
        return at

    return open_page


def test_without_a_path_the_page_says_what_to_type(page) -> None:
    at = page()
    assert at.title[0].value == "Your run"
    assert "path of a run directory" in texts(at)
    assert "python -m dinodiag open-run DIR" in texts(at)  # wording is the feature: copied


def test_a_wrong_path_is_named(page, tmp_path: Path) -> None:
    at = page(str(tmp_path / "nowhere"))
    assert any("nowhere does not exist" in e for e in errors(at))


def test_a_collapsed_run_leads_with_its_failure(page, fake_runs) -> None:
    at = page(str(fake_runs["uniform"]))
    assert at.subheader[0].value == "Diagnosis from the log"
    first = at.markdown[1].value
    assert first.startswith(":red-badge[FAIL] ") and "**Uniform collapse" in first  # first
    assert "ln K = ln 4096" in first
    assert any(c.value.startswith("Try: The teacher gives") for c in at.caption)
    assert "DINOv2 output directory" in at.code[0].value
    assert at.expander[0].label == "6 rule(s) find nothing wrong"


def chart_titles(at) -> list[str | None]:
    """The title of each chart on the page (None: a panel titled by the page's Markdown; a
    metric chart of a separate panel carries its metric's label)."""
    titles = [json.loads(c.proto.spec).get("title") for c in at.get("vega_lite_chart")]
    return [t.get("text") if isinstance(t, dict) else t for t in titles]  # {"text", "limit"}


def test_the_curves_draw_with_the_config_schedules_and_an_overlaid_dinodiag_run(
    page, fake_runs, tmp_path: Path
) -> None:
    from dinodiag.recipe.presets import get_train_preset
    from dinodiag.train.engine import run_training

    config = get_train_preset("tiny-test").config.with_overrides({"run.max_steps": 2})
    run_training(config, tmp_path / "runs" / "mine", progress=None)
    at = page(str(fake_runs["healthy"]), "Curves")
    titles = chart_titles(at)
    assert titles[:2] == [None, None]  # loss, timing (titled by the page's Markdown)
    assert titles[2:] == [
        "learning rate",
        "weight decay",
        "teacher momentum",
        "teacher temperature",
    ]
    assert "recomputed from config.yaml" in texts(at)
    at.multiselect(key="yr_overlay").set_value(["mine"]).run()
    assert_no_exception(at)
    assert len(chart_titles(at)) == 6  # the same charts, the dinodiag run overlaid on them


def test_the_crop_config_is_checked(page, fake_runs) -> None:
    at = page(str(fake_runs["healthy"]), "Crop config")
    text = texts(at)
    assert "crops from config.yaml" in text and "**Verdict:**" in text
    assert "checks pass" in text


def test_checkpoints_evaluate_curve_and_look_inside(page, fake_runs) -> None:
    at = page(str(fake_runs["healthy"]), "Checkpoints")
    choice = at.selectbox(key="yr_checkpoint")
    # each teacher checkpoint by its iteration, the latest first
    assert all(option.startswith("teacher checkpoint") for option in choice.options)
    assert [option.split()[-1] for option in choice.options] == ["199", "99"]
    chosen = Path(choice.value)
    assert (chosen.parent.name, chosen.name) == ("training_199", "teacher_checkpoint.pth")
    assert "ViT 384 wide, 2 blocks" in texts(at)
    assert len(at.image) >= 3  # input, mean attention, PCA (+ one per head)
    at.button(key="yr_eval").click().run()
    assert_no_exception(at)
    assert any("k-NN top-1" in m.value for m in at.markdown)
    at.button(key="yr_curve").click().run()
    assert_no_exception(at)
    # the curve is evaluated in a process of its own, never on the script thread: the page
    # shows its progress, and the curve once the process has answered
    (job,) = [Path(found["job"]) for found in at.session_state["yr_curves"].values()]
    assert job.is_dir() and at.get("progress")
    deadline = time.time() + 240
    while curve.read_curve(job).state == "running" and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    assert_no_exception(at)
    assert not job.exists()  # read, then discarded
    table = at.dataframe[0].value
    assert list(table["label"]) == choice.options[::-1]  # the curve in training order
    assert table["knn_top1"].notna().all()


def test_a_damaged_checkpoint_is_named_and_the_rest_still_shows(page, tmp_path: Path) -> None:
    root = write_run(tmp_path / "damaged", "healthy", iterations=(99,), patch=16)
    checkpoint = root / "eval" / "training_99" / "teacher_checkpoint.pth"
    checkpoint.write_bytes(b"\x00 truncated")
    at = page(str(root), "Checkpoints")
    assert any(str(checkpoint) in e for e in errors(at))
    assert at.subheader[0].value == "Diagnosis from the log"  # the log is still diagnosed


def test_a_dinodiag_run_opens_with_its_knn_curve(page, tmp_path: Path) -> None:
    from dinodiag.recipe.presets import get_train_preset
    from dinodiag.train.engine import run_training

    config = get_train_preset("tiny-test").config.with_overrides(
        {"run.max_steps": 2, "run.eval_every": 1}
    )
    run_training(config, tmp_path / "mine", progress=None)
    at = page(str(tmp_path / "mine"), "Curves")
    assert "(dinodiag run directory)" in at.code[0].value
    titles = chart_titles(at)  # loss, speed (one chart per metric), schedules, k-NN
    assert titles[0] is None and titles[-1] is None
    assert {"images / s", "learning rate", "teacher temperature"} <= set(titles)
    assert_mentions(texts(at), "k-NN accuracy", "held-out images")


def test_an_appended_log_offers_its_launches_and_diagnoses_the_chosen_one(page, tmp_path) -> None:
    from tests.runs.dinov2_fakes import write_console
    from tests.runs.test_dinov2_logs import row

    first = [row(it, 7.0) for it in range(0, 50, 10)]
    second = [row(it, 7.0 - it / 1000) for it in range(0, 300, 10)]
    write_console(
        tmp_path / "appended" / "logs" / "log.txt",
        [{"rows": first, "planned": 1000, "end": "nan"}, {"rows": second, "planned": 1000}],
    )
    at = page(str(tmp_path / "appended"))
    assert at.selectbox(key="yr_launch").value == 1  # the last launch by default
    shown = texts(at)
    assert_mentions(shown, "2 launches", "one log", "launch 2 is diagnosed")
    at.selectbox(key="yr_launch").set_value(0).run()
    assert_no_exception(at)
    shown = texts(at)
    assert_mentions(shown, "launch 1 is diagnosed", "stopped early", "iteration 40")
