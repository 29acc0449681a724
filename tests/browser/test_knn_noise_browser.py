"""The training page's k-NN against its noise in a real browser: the noise band drawn under
the k-NN curve, a change within the noise shown grey (a clear one keeps its colour), and a
y axis never narrower than the noise (the issue saw 14.00-14.20 and, for one point,
14.00000000-14.00000006).

The runs are faked: run directories written here (status, config, metrics), nothing trains.
Run: ``.venv/bin/python -m pytest tests/browser/test_knn_noise_browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from streamlit_server import free_port, start_server, stop_server, wait_idle

from dinodiag import runs
from dinodiag.train.eval.knn_noise import axis_span
from tests.knn_runs import LEARNING, NOISE, SINGLE, fake_runs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def fake_server(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose runs directory holds the fake runs."""
    root = tmp_path_factory.mktemp("knn-runs")
    fake_runs(root)
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runs.RUNS_ENV, str(root))
        process = start_server(port, Path(root) / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def show_run(page: Any, url: str, run_id: str) -> Any:
    """The Live tab with ``run_id`` selected; returns the main area."""
    page.goto(f"{url}/training")
    wait_idle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Run").first.click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(run_id)}")).click()
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text(run_id)
    return main


def knn_chart(main: Any) -> Any:
    """The Live tab's k-NN chart (the one that draws a noise band)."""
    chart = main.get_by_test_id("stVegaLiteChart").filter(
        has=main.page.locator("g.knn_noise_band_marks")
    )
    expect(chart).to_have_count(1, timeout=30_000)
    return chart


def y_domain(chart: Any) -> tuple[float, float]:
    """The y range the chart shows, read from the Vega axis' description (SVG renderer):
    "Y-axis for a linear scale with values from 11.85 to 16.29"."""
    label = chart.locator("g[aria-label^='Y-axis']").first.get_attribute("aria-label")
    match = re.search(r"values from (-?[\d.]+) to (-?[\d.]+)", label or "")
    assert match, label
    return float(match.group(1)), float(match.group(2))


def rgb(text: str) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in re.findall(r"\d+", text)[:3])
    return red, green, blue


def delta_colour(main: Any) -> tuple[int, int, int]:
    delta = main.get_by_test_id("stMetricDelta").first
    expect(delta).to_be_visible()
    return rgb(delta.evaluate("el => getComputedStyle(el).color"))


def test_noise_is_grey_banded_and_never_zoomed_into(page, fake_server):
    main = show_run(page, fake_server, NOISE)
    delta = main.get_by_test_id("stMetricDelta").first
    expect(delta).to_contain_text("+0.2 vs step 0, within noise ±3.1 on 1000 images")
    red, green, blue = delta_colour(main)
    assert max(red, green, blue) - min(red, green, blue) < 40  # grey, not green
    expect(main).to_contain_text("too short to judge")
    chart = knn_chart(main)
    assert chart.locator("g.knn_noise_band_marks path").count() >= 1  # the band is drawn
    low, high = y_domain(chart)
    want_low, want_high = axis_span([14.0, 14.1, 14.2], 1000)
    assert high - low >= (want_high - want_low) - 0.01  # not the 14.00-14.20
    assert low <= 14.0 and high >= 14.2
    assert page.get_by_test_id("stException").count() == 0


def test_a_clear_change_keeps_its_colour(page, fake_server):
    main = show_run(page, fake_server, LEARNING)
    expect(main.get_by_test_id("stMetricDelta").first).to_contain_text("beyond noise")
    red, green, blue = delta_colour(main)
    assert green > red + 40 and green > blue + 20  # green: a result
    expect(main).to_contain_text("learning:")


def test_one_evaluation_gets_an_axis_as_wide_as_its_noise(page, fake_server):
    main = show_run(page, fake_server, SINGLE)
    low, high = y_domain(knn_chart(main))
    want_low, want_high = axis_span([14.0], 1000)
    assert high - low >= (want_high - want_low) - 0.01 > 4.0  # not 14.00000000-14.00000006
    assert low < 14.0 < high
