"""What only a browser shows of the curve charts' shared state: a legend click in one chart
picks the run in every chart of the page, clicking the picked run again or a double click
in a plot shows every run again in every chart, and the view (smoothing, x axis, the
legend's selection) comes back from the URL on a reload or a shared link.

Run: ``.venv/bin/python -m pytest tests/browser/test_chart_state_browser.py`` (~1 min).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from streamlit_server import free_port, start_server, stop_server, wait_idle
from test_dashboard_browser import colour_pixels, write_run

from dinodiag import runs
from dinodiag.dashboard.run_names import run_colors

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_ready fixture then fails (CI=true) or skips with the reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

A, B = "20260509-220101-cpu-demo", "20260509-221500-cpu-demo"


@pytest.fixture(scope="module")
def two_runs(browser_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("chart-state")
    write_run(root, A, 200)
    write_run(root, B, 300)
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runs.RUNS_ENV, str(root))
        process = start_server(port, root / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def compare_charts(page: Any, url: str) -> Any:
    """The Compare tab (both runs overlaid by default: k-NN and total loss)."""
    page.goto(url)
    wait_idle(page)
    page.get_by_role("tab", name="Compare runs").click()
    wait_idle(page)
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(2)
    charts.first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # let Vega draw
    return charts


def pixels(charts: Any, colour: str) -> list[int]:
    return [colour_pixels(charts.nth(i).screenshot(), colour) for i in range(charts.count())]


def test_a_legend_click_picks_the_run_in_every_chart_and_the_url(page, two_runs):
    colours = run_colors([A, B])
    charts = compare_charts(page, f"{two_runs}/training")
    assert all(n > 100 for n in pixels(charts, colours[A]))  # both runs drawn in both charts
    charts.nth(1).get_by_text("cpu-demo 22:15").first.click()  # the loss chart's legend
    page.mouse.move(5, 5)
    page.wait_for_url(f"**show={B}**")
    wait_idle(page)
    page.wait_for_timeout(1500)
    assert pixels(charts, colours[A]) == [0, 0]  # run A hidden in the k-NN chart too
    assert all(n > 100 for n in pixels(charts, colours[B]))
    assert page.evaluate("window.getSelection().toString()") == ""


def test_a_link_restores_smoothing_x_axis_and_the_runs_shown(page, two_runs):
    colours = run_colors([A, B])
    charts = compare_charts(page, f"{two_runs}/training?smooth=0.8&x=relative&show={A}")
    assert "0.80" in page.get_by_test_id("stSlider").filter(has_text="Smoothing").inner_text()
    expect(page.get_by_role("radio", name="relative time")).to_be_checked()  # the x axis
    assert pixels(charts, colours[B]) == [0, 0]  # only A, in both charts
    assert all(n > 100 for n in pixels(charts, colours[A]))
    assert "smooth=0.8" in page.url and "x=relative" in page.url  # still there for a reload


def plot_centre(chart: Any) -> tuple[float, float]:
    """A point inside the plot of a chart (above its legend, right of its y axis)."""
    box = chart.bounding_box()
    return box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.35


@pytest.mark.parametrize("where", ["plot", "legend"])
def test_a_double_click_shows_every_run_in_every_chart(page, two_runs, where):
    colours = run_colors([A, B])
    charts = compare_charts(page, f"{two_runs}/training?show={A}")
    assert pixels(charts, colours[B]) == [0, 0]  # only A, as the link says
    if where == "plot":
        page.mouse.dblclick(*plot_centre(charts.nth(0)))  # the k-NN chart's plot
    else:
        charts.nth(0).get_by_text("cpu-demo 22:15").first.dblclick()  # a faded legend entry
    page.wait_for_function("() => !window.location.search.includes('show=')")
    wait_idle(page)
    page.wait_for_timeout(1500)
    assert all(n > 100 for n in pixels(charts, colours[B]))  # B back in both charts
    assert all(n > 100 for n in pixels(charts, colours[A]))


def test_clicking_the_picked_run_again_shows_every_run_in_every_chart(page, two_runs):
    colours = run_colors([A, B])
    charts = compare_charts(page, f"{two_runs}/training?show={B}")
    assert pixels(charts, colours[A]) == [0, 0]
    charts.nth(1).get_by_text("cpu-demo 22:15").first.click()  # B again: nothing picked
    page.mouse.move(5, 5)
    page.wait_for_function("() => !window.location.search.includes('show=')")
    wait_idle(page)
    page.wait_for_timeout(1500)
    assert all(n > 100 for n in pixels(charts, colours[A]))  # in the other chart too
