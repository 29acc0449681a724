"""The training page in AppTest: the form's validation, a real tiny run started from the page
(state and curves), your own code trained from the sidebar, stop, a dead process shown as
failed, delete, compare, yours vs the reference from one click (and the seed story), and the
look inside a checkpoint.

Every test has its own runs directory (``DINODIAG_RUNS_DIR``); runs are ``tiny-test`` (16 px,
one block, seconds long).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apphelpers import assert_no_exception, errors, texts
from streamlit.testing.v1 import AppTest

from dinodiag import rundir, runs
from dinodiag.dashboard.run_names import run_colors
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs import manager
from dinodiag.runs.devices import has_gpu
from dinodiag.train.engine import run_training
from tests.estimate_jobs import patch_estimates
from tests.facts import assert_mentions, missing_facts

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


def _names(text: str, *facts: str) -> bool:
    return not missing_facts(text, *facts)


def _line(text: str, fact: str, among: bool = False) -> str:
    """The first line of text that starts with fact (or, with among, that contains it)."""
    return next(
        line for line in text.splitlines() if (fact in line if among else line.startswith(fact))
    )


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
    assert_mentions(text, "**Run the seed story**", "**Yours vs reference**")  # where it is
    assert "Device:" in text and "core" in text
    assert [t.label for t in at.tabs] == [
        "Live",
        "New run",
        "Yours vs reference",
        "Compare runs",
        "Look inside",
    ]


def test_the_form_validates_knobs_with_messages(page):
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    assert not errors(at)
    assert_mentions(texts(at), "4 steps", "4 images", "64 training images")
    assert at.button(key="tr_start").proto.disabled is False
    widget(at.number_input, "Global crop (px)").set_value(18).run()
    assert any(_names(e, "18 px", "multiple", "patch size 4") for e in errors(at)), errors(at)
    # the fix named by the form's widgets, not by the command line's flags
    assert any("**Patch size**" in e and "--patch-size" not in e for e in errors(at)), errors(at)
    assert not [b for b in at.button if b.key == "tr_start"]  # nothing to start
    widget(at.number_input, "Global crop (px)").set_value(16).run()
    widget(at.number_input, "Batch size").set_value(100).run()
    assert any(_names(e, "100", "training set", "64 images") for e in errors(at)), errors(at)
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


SEED_CODE = f"{ROOT / 'examples/seed_pipeline.py'}:build_two_view_augment"


def test_your_code_needs_the_servers_opt_in_or_a_confirmation_to_train_the_preset(page):
    at = page("New run", pl_source="own", pl_spec=SEED_CODE)  # code from the browser is off
    text = texts(at)
    assert_mentions(text, "code from the browser", "allowed", "--allow-browser")
    assert at.button(key="tr_start").proto.disabled is True
    at.checkbox(key="tr_pipe_ok").check().run()
    assert at.button(key="tr_start").proto.disabled is False
    assert "pipeline `small-images`" in texts(at)  # the preset's, as the box says


def test_the_form_trains_your_code_from_the_sidebar_by_default(page, runs_dir, allow_code):
    at = page("New run", pl_source="own", pl_spec=SEED_CODE, pl_kwargs='{"img_size": 16}')
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    assert_no_exception(at)
    text = texts(at)
    assert at.radio(key="tr_pipe").value == "sidebar"
    assert "This run trains **your code**" in text
    # the plan's summary names the file and the function, and the crops it measured
    assert_mentions(text, "your code", "seed_pipeline.py", "build_two_view_augment")
    assert_mentions(_line(text, "Crops:"), "measured", "2 × 16 px")
    assert not [w for w in at.number_input if w.label == "Local crops"]  # the code's crops
    at.button(key="tr_start").click().run()
    assert_no_exception(at)
    (run_dir,) = list(runs_dir.iterdir())
    assert runs.read_launch(run_dir)["command"][-2:] == ["--run-dir", str(run_dir)]
    planned = rundir.read_config(run_dir)["data"]  # the plan: the config is the message
    assert planned["pipeline"] == SEED_CODE and planned["pipeline_kwargs"] == '{"img_size": 16}'
    wait_for(lambda: runs.read_run(run_dir).state == "finished", timeout=120)
    own = rundir.read_config(run_dir)["own_pipeline"]
    assert own["spec"] == SEED_CODE and own["global_crops"]["size"] == [16, 16]
    assert runs.read_run(run_dir).pipeline == f"yours: {Path(SEED_CODE).name}"  # file:factory


MEASURED = {"setup_s": 5.0, "first_step_s": 0.5, "step_s": 0.25, "eval_s": 1.0, "eval_every": 2}
MEASURED |= {"planned_steps": 4, "budget_s": 90.0, "steps": 4, "evaluations": 3, "total_s": 8.0}


def test_the_estimate_shows_its_stage_and_time_left_then_what_it_measured(
    page, monkeypatch, tmp_path
):
    from dinodiag.runs import jobs

    job = tmp_path / "job"
    stages = [
        {"stage": "data", "steps_done": 0},
        {"stage": "steps", "steps_done": 2, "steps": 4, "knn_s": 1.5},
    ]
    seen = patch_estimates(monkeypatch, job, stages, None)
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    assert_mentions(texts(at), "counts from the start", "training process")
    at.button(key="tr_estimate").click().run()
    assert_no_exception(at)
    assert seen and seen[0].config.name == "tiny-test"
    (bar,) = at.get("progress")
    assert "timing the steps (2 of 4)" in bar.proto.text and "s left" in bar.proto.text
    assert at.button(key="tr_estimate").proto.disabled is True  # one estimate at a time
    rundir.write_json_atomic(job / jobs.RESULT_FILE, {"result": MEASURED})
    at.run()
    assert_no_exception(at)
    assert any("set-up 5.0 s" in i.value and "All 4 steps" in i.value for i in at.info)
    assert not at.get("progress") and not job.exists()  # the answer kept, the folder gone


def test_an_estimate_whose_process_died_says_so(page, monkeypatch, tmp_path):
    from dinodiag.runs import jobs

    job = tmp_path / "job"
    job.mkdir()
    (job / jobs.LOG_FILE).write_text("MemoryError: out of memory\n")
    patch_estimates(monkeypatch, job, [{"stage": "data", "steps_done": 0}], None, alive=False)
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("tiny-test").run()
    at.button(key="tr_estimate").click().run()
    assert_no_exception(at)
    assert any("estimate failed" in e and "MemoryError" in e for e in errors(at)), errors(at)


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
    started: list[list[runs.RunPlan]] = []

    def fake_queue(plans, root=None, extra=None):  # prepare the runs, start nothing
        started.append(plans)
        dirs = [runs.prepare(p, root, e) for p, e in zip(plans, extra, strict=True)]
        for d in dirs:
            rundir.write_json_atomic(d / runs.QUEUED_FILE, {"queued": 0})
        return dirs

    monkeypatch.setattr(manager, "launch_queue", fake_queue)  # what runs/story.py calls
    at = page("Yours vs reference")
    text = texts(at)
    assert "no local crops" in text and "seed's researcher" in text
    at.number_input(key="story_steps").set_value(60).run()
    at.button(key="story_start").click().run()
    assert_no_exception(at)
    (plans,) = started
    assert [p.pipeline.local_crops_number for p in plans] == [0, 8]
    assert {p.config.run.max_steps for p in plans} == {60}
    made = runs.list_runs(runs_dir)
    assert (
        sorted(r.role for r in made) == ["reference", "yours"] and len({r.story for r in made}) == 1
    )
    assert {r.story_kind for r in made} == {"seed"}
    text = texts(at)
    assert text.count("QUEUED") == 2 and "broken (seed-broken)" in text
    # the warning under Schedule names the runs it means (here the two just queued)
    warning = next(w.value for w in at.warning if w.value.startswith("Active now:"))
    assert all(f"`{info.run_id}`" in warning for info in made)
    assert_mentions(warning, "comparison started now", "shares the machine")
    for info in made:
        runs.stop_run(info.path)  # cancels the queued runs


def test_yours_vs_the_reference_from_one_click(page, runs_dir):
    at = page("Yours vs reference", pl_preset="seed-broken", reference="dinov2")
    at.selectbox(key="vs_preset").set_value("tiny-test").run()
    at.number_input(key="vs_steps").set_value(4).run()
    at.number_input(key="vs_seconds").set_value(0).run()
    assert_no_exception(at)
    text = texts(at)
    # each run's views next to its pipeline: the sidebar's, then the reference at the same sizes
    assert _line(text, "pipeline `seed-broken`", among=True).count("px") == 1
    assert_mentions(_line(text, "pipeline `seed-broken`", among=True), "2 × 16 px")
    assert_mentions(_line(text, "pipeline `dinov2@16px`", among=True), "2 × 16 px + 8 × 8 px")
    at.button(key="versus_start").click().run()
    assert_no_exception(at)
    made = runs.list_runs(runs_dir)
    assert sorted(r.role for r in made) == ["reference", "yours"]
    for info in made:
        wait_for(lambda info=info: runs.read_run(info.path).state == "finished", timeout=180)
    at.run()
    assert_no_exception(at)
    boxes = [*at.info, *at.success, *at.warning]
    verdict = next(b.value for b in boxes if "Yours gains" in b.value)
    assert "k-NN points in 4 steps" in verdict and "the reference +" in verdict
    assert "Too few test images to judge" in verdict  # 32 held-out images: under the 200
    assert len(at.get("vega_lite_chart")) == 2  # k-NN and entropy, both runs overlaid
    # each run in the colour it has in the Live and Compare tabs (by run id), not one by role
    every = run_colors([info.run_id for info in made])
    by_role = {info.role: every[info.run_id] for info in made}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        scales = [
            layer["encoding"]["color"]["scale"]
            for layer in spec["layer"]
            if "color" in layer.get("encoding", {}) and "scale" in layer["encoding"]["color"]
        ]
        assert scales and all(
            dict(zip(sc["domain"], sc["range"], strict=True))
            == {"yours": by_role["yours"], "the reference": by_role["reference"]}
            for sc in scales
        )
    configs = [rundir.read_config(i.path) for i in runs.list_runs(runs_dir)]
    assert {c["run"]["max_steps"] for c in configs} == {4}
    assert {c["run"]["seed"] for c in configs} == {0} and len(
        {c["data"]["data"] for c in configs}
    ) == 1


def test_look_inside_shows_attention_and_pca_of_a_checkpoint(page, runs_dir: Path):
    finished_run(runs_dir, "20260101-000001-look")
    at = page("Look inside", ds_source="generated")
    facts = ("Teacher", "`20260101-000001-look`", "step 2")
    assert any(_names(c.value, *facts) for c in at.caption)
    captions = [caption for element in at.image for caption in element.captions]
    assert captions[0] == "input (centre square)"
    assert_mentions(captions[1], "CLS attention", "mean", "heads")
    assert_mentions(captions[2], "patch features", "3 PCA components", "RGB")
    assert captions[3:] == ["head 0", "head 1"]  # tiny-test: 2 heads
    at.slider(key="look_threshold").set_value(0.5).run()
    assert_no_exception(at)


def test_the_versus_chart_draws_the_noise_band_of_its_verdict(page, runs_dir: Path, monkeypatch):
    from dinodiag.dashboard import curve_charts
    from tests.knn_runs import fake_run

    drawn: list[Any] = []  # the grey zones each chart is drawn with
    chart = curve_charts.curve_chart
    monkeypatch.setattr(
        curve_charts,
        "curve_chart",
        lambda long, **kw: drawn.append(kw.get("zone")) or chart(long, **kw),
    )
    for role, values in (("yours", [14.0, 30.0, 40.0]), ("reference", [14.0, 20.0, 25.0])):
        run_dir = fake_run(runs_dir, f"20260101-00000{len(role)}-{role}", values)
        extra = {"story": "20260101-000000", "role": role, "story_kind": "versus"}
        rundir.write_json_atomic(run_dir / runs.LAUNCH_FILE, {"command": ["x"], **extra})
    at = page("Yours vs reference")
    verdict = next(b.value for b in at.success if "Yours gains" in b.value)
    assert "learns clearly more" in verdict
    zones = [z for z in drawn if z is not None][-1].to_dict("records")  # the k-NN chart's
    band = next(z for z in zones if "the verdict's noise" in z["label"])
    assert band["value"] == pytest.approx(25.0)  # yours' end for the reference's +11 points
    assert band["low"] < 25.0 < band["high"] < 40.0  # yours' 40% above it: clearly more
    assert any("noise of a change from step 0" in z["label"] for z in zones)  # both zones
    assert any("Grey band from" in c.value for c in at.caption)
