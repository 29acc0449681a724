"""The training page in a real browser: start a tiny run from the form, watch the curves
update without reloading (the live fragment), stop it and see "stopped".

Run: ``.venv/bin/python -m pytest tests/browser/test_training_browser.py``. The server gets
its own runs directory (``DINODIAG_RUNS_DIR``); the screenshot lands in
``artifacts/screenshots/training_live_test.png``. Without playwright / Chromium the test skips,
except under ``CI=true`` where it fails (see ``conftest.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from streamlit_server import free_port, full_screenshot, start_server, stop_server, wait_idle

from dinodiag import runs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def training_server(
    browser_ready: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """A server of its own whose runs directory is a fresh temporary folder."""
    root = tmp_path_factory.mktemp("browser-runs")
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runs.RUNS_ENV, str(root))  # inherited by the server process
        process = start_server(port, Path(root) / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        stop_server(process)
        for info in runs.list_runs(root):  # never leave a training process behind
            if info.active:
                runs.stop_run(info.path)


def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` (a prefix of its text) in the Streamlit selectbox called ``label``."""
    page.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(option)}")).click()
    wait_idle(page)


def set_number(page: Any, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_idle(page)


def test_start_watch_live_and_stop_a_tiny_run(page, training_server, screenshots):
    url, root = training_server
    page.goto(f"{url}/training")
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main.locator("h1").first).to_have_text("Training")
    expect(main).to_contain_text("No run yet")
    page.get_by_role("tab", name="New run").click()
    wait_idle(page)
    choose(page, "Training preset", "tiny-test")
    # the pipeline radio (its label's words are in the "what this run trains" line too)
    page.get_by_test_id("stRadio").get_by_text("tiny-test's own crops").click()
    wait_idle(page)
    set_number(page, "Epochs", "10000")  # runs until stopped
    set_number(page, "Max steps", "0")
    page.get_by_role("button", name="Start training").click()
    expect(main).to_contain_text("RUNNING", timeout=60_000)
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    page.evaluate("window.__not_reloaded = true")
    progress = page.get_by_test_id("stProgress")
    expect(progress).to_contain_text("step ", timeout=60_000)
    loss_chart = page.get_by_test_id("stVegaLiteChart").first
    expect(loss_chart).to_be_visible(timeout=60_000)
    before_text = progress.inner_text()
    before_chart = loss_chart.screenshot()
    expect(progress).not_to_have_text(before_text, timeout=30_000)  # the fragment refreshed
    page.wait_for_timeout(2500)  # one more refresh: the chart has new points
    assert loss_chart.screenshot() != before_chart
    assert page.evaluate("window.__not_reloaded") is True  # updated in place, no reload
    assert page.get_by_test_id("stException").count() == 0
    full_screenshot(page, screenshots / "training_live_test.png")
    page.get_by_role("button", name="Stop").click()
    expect(main).to_contain_text("STOPPED", timeout=60_000)
    expect(main).to_contain_text("stopped at step")
    assert runs.read_run(run_dir).state == "stopped"
    assert (run_dir / "checkpoint.pt").is_file()


@pytest.mark.slow  # two queued runs (~25 s): tests/app/test_training_page.py's twin checks more
def test_yours_vs_the_reference_from_one_click(page, training_server, screenshots):
    """A tiny comparison: the sidebar's seed-broken recipe against the reference, tiny-test
    preset, 4 steps each; both runs finish in the queue and the verdict and the overlaid
    curves appear without a reload."""
    url, root = training_server
    page.goto(f"{url}/training")
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_test_id("stSelectbox").filter(has_text="Preset").click()
    page.get_by_role("option", name=re.compile("^seed-broken")).click()
    wait_idle(page)
    page.get_by_role("tab", name="Yours vs reference").click()
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    choose(page, "Training preset", "tiny-test")
    set_number(page, "Steps per run", "4")
    set_number(page, "Time budget per run (s)", "0")
    expect(main).to_contain_text("views per image: 2 × 16 px; pipeline seed-broken.")
    page.get_by_role("button", name="Train yours vs the reference").click()
    expect(main).to_contain_text("Latest comparison", timeout=60_000)
    expect(main).to_contain_text("Yours gains", timeout=240_000)  # both runs finished
    expect(main).to_contain_text("the reference +")
    expect(main.get_by_test_id("stVegaLiteChart")).to_have_count(2, timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    finished = [info for info in runs.list_runs(root) if info.story]
    assert sorted(info.role for info in finished) == ["reference", "yours"]
    assert {info.state for info in finished} == {"finished"}
    full_screenshot(page, screenshots / "training_versus_test.png")
