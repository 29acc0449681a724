"""What only a browser shows of the statistics page: the histograms are live Vega-Lite charts
whose bars answer a hover with their numbers, their text is readable, and nothing on the
page raises.

Run: ``.venv/bin/python -m pytest tests/browser/test_statistics_browser.py`` (~1 min).
"""

from __future__ import annotations

import pytest
from streamlit_server import wait_idle

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_ready fixture then fails (CI=true) or skips with the reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def test_a_histogram_bar_answers_a_hover_with_its_numbers(page, server_url):
    page.goto(f"{server_url}/statistics")
    wait_idle(page)
    slider = page.get_by_test_id("stSlider").filter(has_text="Samples").get_by_role("slider")
    slider.focus()
    page.keyboard.press("Home")  # 50 images: the test's sampling stays short
    wait_idle(page)
    assert page.get_by_test_id("stException").count() == 0
    charts = page.get_by_test_id("stVegaLiteChart")
    expect(charts).to_have_count(9)  # six histograms, three rate panels
    first = charts.first
    first.scroll_into_view_if_needed()
    bars = first.locator(".histogram_bars_marks path")
    expect(bars.first).to_be_attached()
    assert bars.count() >= 5
    bars.nth(bars.count() // 2).hover(force=True)
    tooltip = page.locator("#vg-tooltip-element")
    expect(tooltip).to_be_visible()
    for field in ("pipeline", "global crops", "share (%)"):
        expect(tooltip).to_contain_text(field)
    size = (
        first.locator("text")
        .filter(has_text="share of global crops")
        .first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
    )
    assert size >= 11  # the picture's ticks were ~7 px
