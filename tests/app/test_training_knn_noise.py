"""The training page's k-NN against its noise in AppTest, on faked runs (``tests/knn_runs``):
the Live tile (grey within the noise, coloured beyond it, the interval and test images), the
verdict line per run, and Compare's verdict between runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from apphelpers import assert_no_exception
from streamlit.testing.v1 import AppTest

from dinodiag import runs
from tests.knn_runs import LEARNING, NOISE, fake_runs


@pytest.fixture
def page(app: Callable[..., AppTest], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``page(tab, run)``: the training page on a tab, over the fake runs."""
    root = tmp_path / "runs"
    fake_runs(root)
    monkeypatch.setenv(runs.RUNS_ENV, str(root))

    def open_page(tab: str = "Live", run: str | None = None) -> AppTest:
        at = app()
        if run is not None:
            at.session_state["tr_run"] = run
        at.switch_page("pages/training.py").run()
        at.session_state["tr_tab"] = tab
        at.run()
        assert_no_exception(at)
        return at

    return open_page


def knn_tile(at: AppTest) -> Any:
    return next(m for m in at.metric if m.label.startswith("k-NN top-1"))


def test_live_noise_is_grey_and_says_so(page):
    at = page("Live", NOISE)
    tile = knn_tile(at)
    assert tile.value == "14.2%" and "1000 test images" in tile.label
    assert tile.delta.startswith("+0.2 vs step 0") and "within noise" in tile.delta
    assert tile.proto.color == tile.proto.MetricColor.GRAY  # delta_color="off"
    assert any(NOISE in box.value and "too short to judge" in box.value for box in at.info)
    assert not at.success


def test_live_learning_keeps_its_colour_and_verdict(page):
    at = page("Live", LEARNING)
    tile = knn_tile(at)
    assert "beyond noise" in tile.delta
    assert tile.proto.color == tile.proto.MetricColor.GREEN
    assert any(LEARNING in box.value and "learning" in box.value for box in at.success)


def test_compare_judges_each_run_and_the_difference(page):
    at = page("Compare runs")
    at.multiselect(key="cmp_runs").set_value([NOISE, LEARNING]).run()
    assert_no_exception(at)
    assert any("learning" in box.value for box in at.success)
    assert any("too short to judge" in box.value for box in at.info)
    pair = [m.value for m in at.markdown if "learns clearly more than" in m.value]
    assert len(pair) == 1 and "beyond the noise" in pair[0]


def test_the_estimate_says_when_the_plan_is_too_short_to_judge(page, monkeypatch, tmp_path):
    from dinodiag.train.estimate import TimeEstimate
    from dinodiag.train.knn_horizon import bench_evidence
    from tests.estimate_jobs import patch_estimates

    measured = TimeEstimate(5.0, 0.5, 0.4, 1.5, 100, 50, None, 50, 2, 28.0, knn_test=500)
    answer = {"result": measured.to_dict()}  # what the estimate's process leaves when done
    patch_estimates(monkeypatch, tmp_path / "job", [], answer, alive=False)
    at = page("New run")
    at.selectbox(key="tr_preset").set_value("cpu-demo").run()
    at.button(key="tr_estimate").click().run()
    assert_no_exception(at)
    (box,) = [i.value for i in at.info if "All 50 steps" in i.value]
    evidence = bench_evidence("cpu-demo", 500)
    if evidence is None:  # an installed package without bench/: no evidence, and it says so
        assert "cannot be told before the run" in box
    else:  # the checkout's benchmark: k-NN beyond the noise by step 100-200
        assert "too short to judge" in box and "50 short" in box
        assert "bench/results/cpu_demo.json" in box
