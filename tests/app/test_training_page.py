"""The training page in AppTest: the form's validation, a real tiny run started from the page
(state and curves), stop, a dead process shown as failed, delete, compare, the seed story's
wiring and the look inside a checkpoint.

Every test has its own runs directory (``DINODIAG_RUNS_DIR``); runs are ``tiny-test`` (16 px,
one block, seconds long).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apphelpers import assert_no_exception, errors, texts
from streamlit.testing.v1 import AppTest

from dinodiag import runs
from dinodiag.runs import manager
from dinodiag.runs.devices import has_gpu
from dinodiag.train import rundir
from dinodiag.train.engine import run_training
from dinodiag.train.presets import get_train_preset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv(runs.RUNS_ENV, str(root))
    return root


@pytest.fixture
def page(app: Callable[..., AppTest], runs_dir: Path) -> Callable[..., AppTest]:
    """``page(tab, **sidebar_state)``: the training page on one tab, no exception."""

    def open_page(tab: str = "Live", **state: Any) -> AppTest:
        at = app(**state)
        at.switch_page("pages/training.py").run()
        return on_tab(at, tab)

    return open_page


def on_tab(at: AppTest, tab: str) -> AppTest:
    at.session_state["tr_tab"] = tab
    at.run()
    assert_no_exception(at)
    return at


def widget(items: Any, label: str) -> Any:
    return next(w for w in items if w.label == label)


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def finished_run(root: Path, name: str, **overrides: Any) -> Path:
    """A finished tiny run trained in this process (a checkpoint, metrics, config)."""
    config = get_train_preset("tiny-test").config.with_overrides(
        {"run.max_steps": 2, "run.eval_every": 1, **overrides}
    )
    result = run_training(config, root / name, progress=None)
    assert result.state == "finished", result.message
    return root / name


def test_without_runs_the_page_says_how_to_start(page):
    at = page()
    assert at.title[0].value == "Training"
    text = texts(at)
    assert "No run yet" in text and "seed story" in text
    assert "Device:" in text and "core" in text
    assert [t.label for t in at.tabs] == [
        "Live",
        "New run",
        "Seed story",
        "Compare runs",
        "Look inside",
    ]


def test_the_form_validates_knobs_with_messages(page):
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    assert not errors(at)
    assert "About 4 steps of 4 images (64 training images)" in texts(at)
    assert at.button(key="tr_start").proto.disabled is False
    widget(at.number_input, "Global crop (px)").set_value(18).run()
    assert any("18 px is not a multiple of the ViT patch size 4" in e for e in errors(at))
    assert not [b for b in at.button if b.key == "tr_start"]  # nothing to start
    widget(at.number_input, "Global crop (px)").set_value(16).run()
    widget(at.number_input, "Batch size").set_value(100).run()
    assert any("larger than the training set (64 images" in e for e in errors(at)), errors(at)
    widget(at.number_input, "Batch size").set_value(1).run()
    assert any("KoLeo needs at least 2 images" in e for e in errors(at))


def test_every_preset_fills_the_form_with_its_own_defaults(page):
    gpu = has_gpu()
    at = page("New run")
    for preset, batch in (("gpu", 128), ("small-images", 256), ("cpu-demo", 64)):
        at.selectbox(key="tr_preset").set_value(preset).run()
        assert_no_exception(at)
        assert widget(at.number_input, "Batch size").value == batch
        assert f"steps of {batch} images" in texts(at), errors(at)
        sized_for_gpu = any("is sized for a GPU" in w.value for w in at.warning)
        assert sized_for_gpu == (preset != "cpu-demo" and not gpu)


def test_a_brought_pipeline_needs_confirmation_to_train_the_preset_instead(page, allow_code):
    spec = f"{ROOT / 'examples/seed_pipeline.py'}:build_two_view_augment"
    at = page("New run", pl_source="byo", pl_spec=spec)
    assert "cannot train your transform" in texts(at)
    assert at.button(key="tr_start").proto.disabled is True
    at.checkbox(key="tr_byo_ok").check().run()
    assert at.button(key="tr_start").proto.disabled is False


def test_start_a_tiny_run_watch_it_and_stop_it(page, runs_dir: Path):
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    at.radio(key="tr_pipe").set_value("preset").run()
    widget(at.number_input, "Epochs").set_value(10000.0).run()  # runs until stopped
    widget(at.number_input, "Max steps").set_value(0).run()
    at.button(key="tr_start").click().run()
    assert_no_exception(at)
    (run_dir,) = list(runs_dir.iterdir())
    assert (run_dir / "launch.json").is_file() and "tiny-test" in run_dir.name
    assert at.session_state["tr_tab"] == "Live" and at.session_state["tr_run"] == run_dir.name
    wait_for(lambda: runs.read_run(run_dir).step >= 3)
    at.run()
    text = texts(at)
    assert "RUNNING" in text and f"**{run_dir.name}**" in text
    assert at.get("progress")[0].proto.text.startswith("step ")
    assert widget(at.metric, "Loss").value != "–"
    assert len(at.get("vega_lite_chart")) >= 4  # loss, entropy, features, schedules, ...
    at.button(key="tr_stop").click().run()
    wait_for(lambda: not runs.read_run(run_dir).active)
    at.run()
    assert "STOPPED" in texts(at) and "stopped at step" in texts(at)
    assert (run_dir / "checkpoint.pt").is_file()
    assert at.button(key="tr_resume").proto.disabled is False


def test_a_run_whose_process_died_shows_as_failed(page, runs_dir: Path):
    run_dir = runs_dir / "20260101-000000-dead"
    run_dir.mkdir(parents=True)
    rundir.write_json_atomic(
        run_dir / "status.json",
        {
            "state": "running",
            "step": 12,
            "total_steps": 100,
            "pid": 999_999_999,
            "message": "training",
        },
    )
    at = page()
    text = texts(at)
    assert "FAILED" in text and "RUNNING" not in text
    assert any("The run failed" in e and "no longer running" in e for e in errors(at))
    assert at.button(key="tr_stop").proto.disabled is True


def test_delete_asks_for_confirmation(page, runs_dir: Path):
    run_dir = runs_dir / "20260101-000000-old"
    run_dir.mkdir(parents=True)
    rundir.write_json_atomic(run_dir / "status.json", {"state": "finished", "step": 4})
    at = page()
    at.button(key="tr_delete").click().run()
    assert any("cannot be undone" in w.value for w in at.warning)
    assert run_dir.exists()
    at.button(key="tr_delete_no").click().run()
    assert run_dir.exists() and not at.warning
    at.button(key="tr_delete").click().run()
    at.button(key="tr_delete_yes").click().run()
    assert_no_exception(at)
    assert not run_dir.exists() and "No run yet" in texts(at)


def test_compare_overlays_runs_and_diffs_their_configs(page, runs_dir: Path):
    finished_run(runs_dir, "20260101-000001-a")
    finished_run(runs_dir, "20260101-000002-b", **{"optim.base_lr": 0.001})
    at = page("Compare runs")
    table = at.dataframe[0].value
    assert list(table["run"]) == ["20260101-000002-b", "20260101-000001-a"]
    assert set(table["state"]) == {"finished"} and table["best k-NN (%)"].notna().all()
    assert at.multiselect(key="cmp_runs").value == list(table["run"])
    assert len(at.get("vega_lite_chart")) == 2  # k-NN top-1 and total loss, both runs
    diff = at.dataframe[1].value
    assert "optim.base_lr" in diff.index
    assert diff.loc["optim.base_lr"].tolist() == ["0.001", "0.004"]


def test_the_seed_story_launches_the_broken_and_the_fixed_recipe(page, runs_dir, monkeypatch):
    started: list[list[runs.LaunchSpec]] = []

    def fake_queue(specs, root=None, extra=None):  # prepare the runs, start nothing
        started.append(specs)
        dirs = [runs.prepare(s, root, e) for s, e in zip(specs, extra, strict=True)]
        for d in dirs:
            rundir.write_json_atomic(d / runs.QUEUED_FILE, {"queued": 0})
        return dirs

    monkeypatch.setattr(manager, "launch_queue", fake_queue)  # what runs/story.py calls
    at = page("Seed story")
    text = texts(at)
    assert "no local crops" in text and "8 × 32 px locals (0.05–0.4)" in text
    at.number_input(key="story_steps").set_value(60).run()
    at.button(key="story_start").click().run()
    assert_no_exception(at)
    (specs,) = started
    assert [s.pipeline.local_crops_number for s in specs] == [0, 8]
    assert {s.max_steps for s in specs} == {60}
    made = runs.list_runs(runs_dir)
    assert sorted(r.role for r in made) == ["broken", "fixed"] and len({r.story for r in made}) == 1
    assert texts(at).count("QUEUED") == 2
    for info in made:
        runs.stop_run(info.path)  # cancels the queued runs


def test_look_inside_shows_attention_and_pca_of_a_checkpoint(page, runs_dir: Path):
    finished_run(runs_dir, "20260101-000001-look")
    at = page("Look inside", ds_source="generated")
    assert any("Teacher of `20260101-000001-look` at step 2" in c.value for c in at.caption)
    captions = [caption for element in at.image for caption in element.captions]
    assert captions[:3] == [
        "input (centre square)",
        "CLS attention, mean of the heads",
        "patch features: first 3 PCA components as RGB",
    ]
    assert captions[3:] == ["head 0", "head 1"]  # tiny-test: 2 heads
    at.slider(key="look_threshold").set_value(0.5).run()
    assert_no_exception(at)
