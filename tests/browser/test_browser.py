"""The dashboard in a real browser (system Chromium): what AppTest cannot see.

Run: ``.venv/bin/python -m pytest tests/browser -m browser``. Screenshots of every
page land in ``artifacts/screenshots/``.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from streamlit_server import free_port, full_screenshot, start_server, stop_server, wait_idle

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_ready fixture then fails (CI=true) or skips with the reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

PAGES = {
    "": "not learning",
    "inspector": "Crop inspector",
    "statistics": "Sampled statistics",
    "validation": "Validation",
    "your_run": "Your run",
}


def open_page(page, server_url: str, path: str) -> None:
    page.goto(f"{server_url}/{path}")
    wait_idle(page)
    expect(page.get_by_test_id("stMain").locator("h1").first).to_contain_text(PAGES[path])


def assert_no_exception(page) -> None:
    assert page.get_by_test_id("stException").count() == 0


def main_image_sources(page, count: int = 11) -> list[str]:
    """The ``src`` of every image on the page, once ``count`` of them are shown."""
    images = page.get_by_test_id("stMain").locator("[data-testid='stImage'] img")
    expect(images).to_have_count(count)
    return images.evaluate_all("images => images.map(image => image.src)")


@pytest.fixture
def fresh_server(browser_ready: None, tmp_path: Path) -> Iterator[str]:
    """A server of its own: its very first request is the test's (legacy pages/ mode)."""
    port = free_port()
    process = start_server(port, tmp_path / "streamlit_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


def test_a_page_url_works_as_the_first_request_of_a_fresh_server(browser, fresh_server):
    # Streamlit runs the page file alone on this request; the page routes itself
    # through app.py (pages/_shared.ensure_routed), so the shared sidebar is there.
    tabs = [browser.new_context(viewport={"width": 1400, "height": 900}) for _ in range(2)]
    try:
        for context in tabs:  # the first request, then a second session on the same server
            page = context.new_page()
            page.set_default_timeout(60_000)
            open_page(page, fresh_server, "inspector")
            assert_no_exception(page)
            expect(page.get_by_test_id("stSidebar")).to_contain_text("1 · Images")
            expect(page.get_by_role("combobox", name="Preset")).to_be_visible()
            links = page.get_by_test_id("stSidebarNav").get_by_role("link")
            expect(links).to_have_count(6)  # the router's pages, not every file in pages/
            assert "Training" in links.all_inner_texts()[-1]
            assert len(main_image_sources(page, 11)) == 11  # source with boxes, 2 + 8 views
            assert page.title() == "dinodiag"
    finally:
        for context in tabs:
            context.close()


@pytest.mark.slow  # the statistics page samples 500 images with the full pipeline
def test_every_page_opens_from_the_navigation(page, server_url, screenshots):
    open_page(page, server_url, "")
    expect(page.get_by_test_id("stMain")).to_contain_text("Last validation")
    full_screenshot(page, screenshots / "home.png")
    for path, title in list(PAGES.items())[1:]:
        page.get_by_test_id("stSidebarNav").get_by_role(
            "link", name=re.compile(title.split()[-1], re.I)
        ).click()
        page.wait_for_url(f"**/{path}")
        wait_idle(page)
        expect(page.get_by_test_id("stMain").locator("h1").first).to_contain_text(title)
        assert_no_exception(page)
        expect(page.get_by_test_id("stSidebar")).to_contain_text(
            "2 · Pipeline"
        )  # sidebar on every page
        if path == "statistics":
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
            expect(page.get_by_test_id("stProgress")).to_have_count(0)  # sampling done
        full_screenshot(page, screenshots / f"{path}.png")


def test_resample_shows_new_crops(page, server_url, screenshots):
    open_page(page, server_url, "inspector")
    before = main_image_sources(page)
    page.get_by_role("button", name="Resample").click()
    expect(page.get_by_test_id("stMain")).to_contain_text("draw #1")
    wait_idle(page)
    after = main_image_sources(page)
    assert after[1:] != before[1:]  # every view is a new image
    assert sum(a != b for a, b in zip(after, before, strict=True)) >= 10
    assert_no_exception(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download figure (PNG)").click()
    png = Path(download.value.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(png)).size[0] > 800  # source with boxes + the views
    full_screenshot(page, screenshots / "inspector_resampled.png")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` (sidebar or page)."""
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)


def test_validation_fails_the_seed_broken_pipeline(page, server_url, screenshots):
    open_page(page, server_url, "validation")
    choose(page, "Preset", "seed-broken")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("two views only")
    page.get_by_role("button", name="Run all checks").click()
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("Verdict", timeout=120_000)
    wait_idle(page)
    assert_no_exception(page)
    table = main.locator("table").first
    expect(table).to_contain_text("view_count")
    rows = table.locator("tbody tr")
    expect(rows.first).to_contain_text("FAIL")  # failing checks first
    failing = [
        rows.nth(i).inner_text() for i in range(rows.count()) if "FAIL" in rows.nth(i).inner_text()
    ]
    assert any("view_count" in row for row in failing) and any(
        "global_scale" in row for row in failing
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report (JSON)").click()
    report = json.loads(Path(download.value.path()).read_text())
    statuses = {check["id"]: check["status"] for check in report["checks"]}
    assert (
        report["verdict"] == "fail" and statuses["view_count"] == statuses["global_scale"] == "fail"
    )
    full_screenshot(page, screenshots / "validation_seed_broken.png")
