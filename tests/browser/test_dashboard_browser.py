"""What only a browser shows: the run picker following a run that ends (a fragment tick),
the curves' hover tooltip and legend, 1 and 100k points drawn, layouts that fit, links.

Run: ``.venv/bin/python -m pytest tests/browser/test_dashboard_browser.py``. The module's
server has its own runs directory of hand-written runs (no training). Without playwright /
Chromium the tests skip, except under ``CI=true`` (see ``conftest.py``).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit_server import free_port, start_server, stop_server, wait_idle

from dinodiag import rundir
from dinodiag.dashboard.run_names import run_colors

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_ready fixture then fails (CI=true) or skips with the reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

SHORT, LONG, ONE = (
    "20260509-220101-cpu-demo",
    "20260509-221500-cpu-demo",
    "20260509-223000-seed-fixed",
)


def write_run(root: Path, run_id: str, steps: int, state: str = "finished") -> Path:
    """A run directory as the trainer leaves it: status, config, ``steps`` train rows."""
    folder = root / run_id
    folder.mkdir(parents=True)
    status = {"state": state, "step": steps, "total_steps": steps, "started": 1.7e9}
    (folder / rundir.STATUS_FILE).write_text(json.dumps({**status, "message": state}))
    config = {"name": "cpu-demo", "pipeline": {"name": "dinov2"}, "model": {"num_prototypes": 256}}
    (folder / rundir.CONFIG_FILE).write_text(json.dumps(config))
    rng = np.random.default_rng(steps)
    x = np.arange(1, steps + 1)
    loss = 8 * np.exp(-x / (steps / 4 + 1)) + 3 + rng.normal(0, 0.3, steps)
    with open(folder / rundir.METRICS_FILE, "w") as out:
        out.write(json.dumps({"kind": "eval", "step": 0, "time": 0.0, "knn_top1": 10.0}) + "\n")
        for s, value in zip(x, loss, strict=True):
            row = {"kind": "train", "step": int(s), "epoch": s / 500, "time": 0.05 * s}
            lr = (
                1e-3 * min(1.0, s / 50) * (0.5 + 0.5 * np.cos(np.pi * s / steps))
            )  # warm-up, cosine
            out.write(json.dumps({**row, "loss": float(value), "lr": float(lr)}) + "\n")
        end = {"kind": "eval", "step": steps, "time": 0.05 * steps, "knn_top1": 30.0}
        out.write(json.dumps(end) + "\n")
    return folder


def write_runs(root: Path) -> None:
    """The runs of this module's server (conftest's ``module_server``): a 300-step, a
    100k-step and a 1-step run."""
    write_run(root, SHORT, 300)
    write_run(root, LONG, 100_000)
    write_run(root, ONE, 1)


@pytest.fixture(scope="module")
def runs_server(module_server: tuple[str, Path]) -> tuple[str, Path]:
    """``(url, runs directory)`` of the module's own server, holding :func:`write_runs`' runs."""
    return module_server


def open_tab(page: Any, url: str, tab: str) -> None:
    page.goto(f"{url}/training")
    wait_idle(page)
    page.get_by_role("tab", name=tab).click()
    wait_idle(page)


def colour_pixels(png: bytes, colour: str, tolerance: int = 40) -> int:
    """How many pixels of a screenshot are close to ``colour`` (#rrggbb)."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(pixels - target).sum(axis=2) < tolerance).sum())


def colour_rows(png: bytes, colour: str, tolerance: int = 40) -> int:
    """How many pixel rows of a screenshot hold ``colour``: the height a line spans."""
    target = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(pixels - target).sum(axis=2) < tolerance).any(axis=1).sum())


def test_the_run_picker_follows_a_run_that_ends(page, runs_server, tmp_path):
    url, root = runs_server
    folder = write_run(root, "20260509-235900-live", 5, state="running")
    sleeper = subprocess.Popen(["sleep", "300"])  # the run's "trainer": alive until killed
    try:
        rundir.write_pid_file(folder, sleeper.pid)
        open_tab(page, url, "Live")
        picker = page.get_by_test_id("stMain").get_by_role("combobox", name="Run")
        expect(picker).to_have_value(re.compile(r"^20260509-235900-live\s+·\s+running"))
        status = {"state": "finished", "step": 5, "total_steps": 5, "message": "done"}
        (folder / rundir.STATUS_FILE).write_text(json.dumps({**status, "started": 1.7e9}))
        sleeper.kill()
        sleeper.wait(timeout=10)
        (folder / rundir.PID_FILE).unlink()
        # No reload: the live fragment's next tick sees the end and reruns the page.
        expect(picker).to_have_value(re.compile(r"·\s+finished\s+·"), timeout=30_000)
        expect(page.get_by_test_id("stMain")).to_contain_text("FINISHED")
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=10)
        shutil.rmtree(folder)  # the other tests overlay the three runs of the fixture


def overlay_all(page: Any, url: str) -> Any:
    """The comparison with the three runs overlaid; returns the charts' locator."""
    open_tab(page, url, "Compare runs")
    box = page.get_by_role("combobox", name="Runs to overlay")
    box.click()
    page.get_by_role("option", name=re.compile("^cpu-demo 22:01")).click()
    page.keyboard.press("Escape")
    wait_idle(page)
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(2)
    page.wait_for_timeout(1500)  # let Vega draw
    return charts


def test_hover_shows_every_run_at_the_step_and_a_legend_click_picks_a_run(page, runs_server):
    url, _ = runs_server
    loss = overlay_all(page, url).nth(1)  # total loss: 300, 100k and 1 point
    loss.scroll_into_view_if_needed()
    box = loss.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.12)  # above
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_be_visible()
    text = tooltip.inner_text()
    assert re.search(r"at\s+step \d+", text)
    assert re.search(r"cpu-demo 22:15\s+[\d.]+ \(raw [\d.]+\)", text)  # smoothed and raw
    assert re.search(r"cpu-demo 22:01\s+ended at step 300", text)
    assert "seed-fixed 22:30" in text
    on_line = []  # down the chart until the pointer is on the 100k run's line: its full id
    for step in range(20, 75):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * step / 100)
        page.wait_for_timeout(60)
        if tooltip.is_visible() and LONG in tooltip.inner_text():
            on_line.append(tooltip.inner_text())
            break
    assert on_line and "total loss" in on_line[0]
    colours = run_colors([SHORT, LONG, ONE])
    page.mouse.move(5, 5)
    page.wait_for_timeout(500)
    before = loss.screenshot()
    assert colour_pixels(before, colours[ONE]) > 10  # the 1-point run is a dot, not nothing
    assert colour_pixels(before, colours[LONG]) > 200  # the 100k-point run, drawn thinned
    loss.get_by_text("cpu-demo 22:01").first.click()  # legend: show only that run
    page.mouse.move(5, 5)
    wait_idle(page)  # the pick is shared by every chart: the page reruns and redraws them
    page.wait_for_timeout(1500)  # let Vega draw
    after = page.get_by_test_id("stVegaLiteChart").nth(1).screenshot()
    assert colour_pixels(after, colours[LONG]) < colour_pixels(before, colours[LONG]) / 3


def test_the_curve_controls_fit_their_columns(page, runs_server):
    url, _ = runs_server
    overlay_all(page, url)
    control = page.get_by_test_id("stButtonGroup").filter(has_text="wall time").first
    wall = control.get_by_text("wall time", exact=True)
    expect(wall).to_be_visible()
    outer, inner = control.bounding_box(), wall.bounding_box()
    assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1  # not cut
    json_button = page.get_by_role("button", name="JSON").first
    assert json_button.inner_text().strip().endswith("JSON")  # not "J…"


@pytest.fixture
def plain_server(browser_ready: None, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    process = start_server(port, tmp_path / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def test_layouts_a_researcher_complained_about(page, plain_server):
    page.goto(f"{plain_server}/validation")
    wait_idle(page)
    box = page.get_by_role("spinbutton", name="Images to sample")
    box.fill("99999")
    box.press("Enter")
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("99,999 images asked: the checks sample at most 256")
    expect(main.get_by_text("Press Enter to apply")).to_have_count(0)  # applied, hint gone
    page.goto(f"{plain_server}/inspector")
    wait_idle(page)
    table = main.get_by_test_id("stDataFrame").first
    table.scroll_into_view_if_needed()
    widths = table.evaluate(
        "t => { const s = t.querySelector('.dvn-scroller'); return [s.scrollWidth, s.clientWidth] }"
    )
    assert widths[0] <= widths[1], widths  # every column in view, solarize too
    page.goto(plain_server)
    wait_idle(page)
    cards = main.get_by_test_id("stPageLink")
    expect(cards).to_have_count(5)
    cut = cards.evaluate_all(
        "links => links.filter(a => { const t = a.querySelector('p') || a;"
        " return t.scrollWidth > t.clientWidth + 1 }).map(a => a.innerText)"
    )
    assert cut == []  # "3. Sampled statistics" was shown as "3. Sampled statis"


# The statistics page samples 500 images three times (~45 s); tests/app/test_app_sidebar.py
# checks the link restoring the sidebar and the URL following its widgets.
@pytest.mark.slow
def test_a_link_restores_the_sidebar_and_the_url_follows_it(page, plain_server):
    page.goto(f"{plain_server}/statistics?preset=seed-broken&seed=3&reference=dino")
    wait_idle(page)
    sidebar = page.get_by_test_id("stSidebar")
    expect(page.get_by_role("combobox", name="Preset")).to_have_value("seed-broken")
    expect(sidebar.get_by_role("spinbutton", name="Seed")).to_have_value("3")
    expect(page.get_by_test_id("stMain")).to_contain_text("Outside dino's range")
    page.get_by_role("combobox", name="Preset").click()
    page.get_by_role("option", name="seed-fixed", exact=True).click()
    wait_idle(page)
    assert "preset=seed-fixed" in page.url and "seed=3" in page.url
    page.reload()
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Preset")).to_have_value("seed-fixed")


def test_every_panel_of_the_live_view_draws(page, runs_server):
    url, _ = runs_server
    open_tab(page, url, "Live")
    picker = page.get_by_test_id("stMain").get_by_role("combobox", name="Run")
    picker.click()
    page.get_by_role("option", name=re.compile(f"^{SHORT}")).click()
    wait_idle(page)
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(3)  # loss, k-NN, learning rate (the one schedule logged)
    page.wait_for_timeout(1500)
    schedule = charts.nth(2)
    schedule.scroll_into_view_if_needed()
    colour = run_colors([SHORT, LONG, ONE])[SHORT]
    picture = schedule.screenshot()
    assert colour_pixels(picture, colour) > 50  # drawn, not an empty frame
    # The warm-up and the cosine span the plot's height: a plot, not a squeezed strip.
    assert colour_rows(picture, colour) > 80, colour_rows(picture, colour)
