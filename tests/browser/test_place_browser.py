"""The dashboard keeps your place (issue 23), in a real browser: what a reload, a copied link
opened in a fresh browser, and the page's own drawing show (the AppTest side is
``tests/app/test_app_place.py``).

- the Training page's tab and selected run come back after a reload and in a copied link;
- Your run's directory stays in its box after a reload;
- Home's last validation is still there after a reload (saved under the runs directory);
- the inspector's side by side mode comes from the link, and its 224 px and 96 px views are
  drawn to one scale;
- a pasted config with an error greys the page and keeps the last valid results under it.

Run: ``.venv/bin/python -m pytest tests/browser/test_place_browser.py``. One server for the
module (``module_server``), its runs directory a temporary folder of two hand-written
finished runs (nothing trains); the tabs need no other server. Without playwright / Chromium
the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from streamlit_server import wait_idle

from dinodiag.dashboard import saved_validations
from tests.knn_runs import fake_run

try:
    from playwright.sync_api import expect
except ImportError:  # the browser_ready fixture then fails (CI=true) or skips with the reason
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

OLDER, NEWER = "20260101-000000-older", "20260102-000000-newer"  # the page opens the newer
# Its third line opens a `[` never closed: the pasted config is not usable.
OPEN_BRACKET = "local_crops_number: 6\nglobal_crops_size: 96\nglobal_crops_scale: [0.4, 1.0\n"


def write_runs(root: Path) -> None:
    """The runs directory of this module's server (``module_server``): two finished runs."""
    fake_run(root, OLDER, [14.0, 20.0])
    fake_run(root, NEWER, [14.0, 26.0])


@contextmanager
def new_tab(browser: Any) -> Iterator[Any]:
    """A tab in a browser context of its own (no cookies, no storage: another browser)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
    finally:
        context.close()


@pytest.fixture
def page(browser: Any, module_server: tuple[str, Path]) -> Iterator[Any]:
    """A fresh tab; unlike conftest's ``page``, it starts no session-wide server."""
    with new_tab(browser) as tab:
        yield tab


def drawn(page: Any) -> Any:
    """The main area once the page is drawn (its title: a first load is idle before its
    script starts) and the app's run is over; an exception instead fails with its text."""
    main = page.get_by_test_id("stMain")
    title_or_error = main.locator("h1").first.or_(page.get_by_test_id("stException").first)
    expect(title_or_error).to_be_visible(timeout=120_000)  # a cold first run: imports
    wait_idle(page)
    no_exception(page)
    return main


def opened(page: Any, url: str) -> Any:
    """``page`` at ``url``, drawn; returns the main area."""
    page.goto(url)
    return drawn(page)


def reloaded(page: Any) -> Any:
    """``page`` reloaded (a new Streamlit session, only the URL kept); returns the main area."""
    page.reload()
    return drawn(page)


def no_exception(page: Any) -> None:
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, errors.all_inner_texts()


def test_training_tab_and_run_come_back_after_a_reload_and_in_a_link(page, browser, module_server):
    url, _ = module_server
    main = opened(page, f"{url}/training")
    picker = main.get_by_role("combobox", name="Run")
    expect(picker).to_have_value(re.compile(f"^{NEWER}"))  # a fresh tab shows the newest
    picker.click()
    page.get_by_role("option", name=re.compile(f"^{OLDER}")).click()
    wait_idle(page)
    page.get_by_role("tab", name="Compare runs").click()
    wait_idle(page)
    expect(page).to_have_url(re.compile(rf"[?&]run={OLDER}(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]tab=Compare(\+|%20)runs(&|$)"))

    def lands_on_the_same_place(tab: Any) -> None:
        expect(tab.get_by_role("tab", name="Compare runs")).to_have_attribute(
            "aria-selected", "true"
        )
        tab.get_by_role("tab", name="Live").click()
        wait_idle(tab)
        shown = tab.get_by_test_id("stMain").get_by_role("combobox", name="Run")
        expect(shown).to_have_value(re.compile(f"^{OLDER}"))  # the chosen run, not the newest
        no_exception(tab)

    link = page.url
    reloaded(page)
    lands_on_the_same_place(page)
    with new_tab(browser) as tab:  # the copied link, opened in another browser
        opened(tab, link)
        lands_on_the_same_place(tab)


def test_your_runs_directory_survives_a_reload(page, module_server):
    url, root = module_server
    main = opened(page, f"{url}/your_run")
    directory = str(root / OLDER)
    box = main.get_by_label("Run directory", exact=True)
    box.fill(directory)
    box.press("Enter")
    wait_idle(page)
    expect(page).to_have_url(re.compile(r"[?&]dir="))
    main = reloaded(page)
    expect(main.get_by_label("Run directory", exact=True)).to_have_value(directory)
    expect(main).not_to_contain_text("Type the path of a run directory")
    no_exception(page)


def test_homes_last_validation_survives_a_reload(page, module_server):
    url, root = module_server
    main = opened(page, f"{url}/validation")
    samples = main.get_by_label("Images to sample", exact=True)
    samples.fill("4")
    samples.press("Enter")
    wait_idle(page)
    main.get_by_role("button", name="Run all checks").click()
    expect(main).to_contain_text("Verdict", timeout=120_000)
    wait_idle(page)
    assert list(saved_validations.folder(root).glob("*.json"))  # under the server's runs dir
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Home").click()
    wait_idle(page)
    line = page.get_by_test_id("stMain").locator("p").filter(has_text="Last validation:")
    expect(line).not_to_contain_text("NOT RUN")
    before = line.inner_text()
    assert re.search(r"\d+ failed, .*\d+ passed", before), before
    main = reloaded(page)
    line = main.locator("p").filter(has_text="Last validation:")
    expect(line).to_have_text(before)  # the same verdict and counts, not NOT RUN
    expect(line).not_to_contain_text("OUT OF DATE")
    no_exception(page)


def view_widths(column: Any, group: str) -> list[float]:
    """The on-screen widths (px) of the views under ``group``'s heading ("Global crops" /
    "Local crops") in one pipeline's column."""
    return column.locator("[data-testid=stImage] img").evaluate_all(
        """(imgs, group) => imgs
            .filter(img => {  // the views after the group's heading, before the next one
                const headings = [...img.closest('[data-testid="stColumn"]')
                    .querySelectorAll('[data-testid="stMarkdownContainer"] strong')];
                const before = headings.filter(h =>
                    h.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING);
                return before.length && before[before.length - 1].textContent === group;
            })
            .map(img => img.getBoundingClientRect().width)""",
        group,
    )


def test_side_by_side_comes_from_the_link_and_is_drawn_to_one_scale(page, module_server):
    url, _ = module_server
    # seed-broken: 96 px globals, 32 px locals; the reference (dinov2): 224 px and 96 px.
    main = opened(page, f"{url}/inspector?preset=seed-broken&compare=reference")
    expect(main.get_by_role("combobox", name="Side by side with")).to_have_value(
        re.compile("^Reference")
    )
    columns = main.get_by_test_id("stColumn")
    yours = columns.filter(has=page.get_by_role("heading", name="seed-broken"))
    reference = columns.filter(has=page.get_by_role("heading", name="reference: dinov2"))
    expect(reference.locator("img").last).to_be_visible()
    page.wait_for_function(  # every view loaded and laid out
        "() => [...document.querySelectorAll('[data-testid=stImage] img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    small = view_widths(yours.last, "Global crops")  # 96 px
    large = view_widths(reference.last, "Global crops")  # 224 px
    local = view_widths(reference.last, "Local crops")  # 96 px
    assert len(small) == len(large) == 2 and len(local) == 8, (small, large, local)
    assert len(set(small)) == len(set(large)) == len(set(local)) == 1, (small, large, local)
    # The 224 px views drawn 224 / 96 as wide as the 96 px ones (were the same size; the
    # views' white margins, drawn at the same scale, take the ratio a little under)...
    assert 0.9 < (large[0] / small[0]) / (224 / 96) < 1.0, (large, small)
    # ... and the seed-broken column's 96 px views as wide as the reference's own 96 px
    # locals: one scale for the two columns.
    assert abs(small[0] - local[0]) <= 1, (small, local)
    no_exception(page)


def test_a_pasted_config_with_an_error_greys_the_page_and_keeps_the_results(page, module_server):
    url, _ = module_server
    main = opened(page, f"{url}/inspector")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("YAML / JSON / DINOv2 config").click()
    wait_idle(page)
    text = sidebar.get_by_label("…or paste YAML / JSON", exact=True)
    text.fill("local_crops_number: 4\n")
    text.press("Control+Enter")
    wait_idle(page)
    results = main.get_by_text(re.compile(r"Local crops · 4 × 96 px"))
    expect(results).to_be_visible()
    assert page.locator(".st-key-stale_banner").count() == 0
    text.fill(OPEN_BRACKET)
    text.press("Control+Enter")
    wait_idle(page)
    banner = page.locator(".st-key-stale_banner")
    expect(banner).to_contain_text("line 3")  # the line where the `[` was opened
    expect(banner).to_contain_text("still shows the last valid pipeline")
    expect(results).to_be_visible()  # the last valid results kept, not "not usable"
    expect(main).not_to_contain_text("not usable: the message in the sidebar")

    def look(locator: Any) -> tuple[float, bool]:
        """(the product of the opacities from ``locator`` up to the page: what one sees,
        whether an element on the way is drawn in grey)."""
        return tuple(
            locator.evaluate(
                """el => { let opacity = 1, grey = false;
                    for (; el; el = el.parentElement) {
                        const style = getComputedStyle(el);
                        opacity *= +style.opacity;
                        grey ||= style.filter.includes('grayscale');
                    }
                    return [opacity, grey]; }"""
            )
        )

    opacity, grey = look(results)
    assert opacity < 0.6 and grey  # greyed
    assert look(banner) == (1.0, False)  # the error itself is not
    text.fill("local_crops_number: 6\n")
    text.press("Control+Enter")
    wait_idle(page)
    expect(banner).to_have_count(0)
    fixed = main.get_by_text(re.compile(r"Local crops · 6 × 96 px"))
    expect(fixed).to_be_visible()
    assert look(fixed) == (1.0, False)  # fixed: no longer greyed
    no_exception(page)
