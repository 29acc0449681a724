"""Screenshots of every page for the README, taken in the system Chromium.

Run from the repository root::

    .venv/bin/python -m tests.browser.screenshots            # -> docs/screenshots/*.png
    .venv/bin/python -m tests.browser.screenshots --out /tmp/shots

Starts its own ``streamlit run app.py`` on a free port, puts each page in a state
worth showing (a scene image in the inspector, the seed's broken pipeline in the
validation), saves full-page PNGs reduced to a 256-colour palette (small files).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

from tests.browser.streamlit_server import (
    ROOT,
    free_port,
    full_screenshot,
    launch_browser,
    missing_browser,
    start_server,
    stop_server,
    wait_idle,
)


def shrink(path: Path) -> int:
    """Re-save ``path`` as an optimised 256-colour PNG; returns its size in bytes."""
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )
    return path.stat().st_size


def choose(page: Any, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_idle(page)
    rest(page)


def rest(page: Any) -> None:
    """No focus ring on the box just used, no hover tooltip where the option list was."""
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(5, 5)


def take(page: Any, url: str, out: Path) -> list[Path]:
    shots: list[Path] = []

    def go(path: str) -> None:
        page.goto(f"{url}/{path}")
        page.get_by_test_id("stMain").locator("h1").first.wait_for()
        wait_idle(page)

    go("")
    shots.append(full_screenshot(page, out / "home.png"))

    go("inspector")
    page.get_by_role("combobox", name="Image").click()  # the picker names each file
    page.get_by_role("option").filter(has_text="scene_01").first.click()
    rest(page)
    wait_idle(page)
    page.get_by_test_id("stMain").locator("[data-testid='stImage'] img").nth(10).wait_for()
    shots.append(full_screenshot(page, out / "inspector.png"))
    choose(page, "Side by side with", "The seed's broken vs fixed pipelines")
    shots.append(full_screenshot(page, out / "inspector_compare.png"))

    go("statistics")
    choose(page, "Compare on the same images with", "seed-broken")
    page.get_by_test_id("stDataFrame").first.wait_for()
    wait_idle(page)
    shots.append(full_screenshot(page, out / "statistics.png"))

    go("validation")
    choose(page, "Preset", "seed-broken")
    page.get_by_role("button", name="Run all checks").click()
    page.get_by_text("Verdict").first.wait_for(timeout=120_000)
    wait_idle(page)
    shots.append(full_screenshot(page, out / "validation.png"))
    page.get_by_role("button", name="Apply the fixes").click()
    page.get_by_text("Load into the sidebar and re-check").wait_for()
    wait_idle(page)
    fixes = page.get_by_test_id("stMain").get_by_text("Apply the fixes", exact=True).first
    fixes.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shots.append(section_screenshot(page, fixes, out / "validation_fixes.png"))
    return shots


def section_screenshot(page: Any, start: Any, path: Path, height: int = 900) -> Path:
    """The page from ``start`` (a heading) down, ``height`` pixels of it."""
    full_screenshot(page, path)
    top = start.evaluate(
        "e => e.getBoundingClientRect().top + document.querySelector('[data-testid=stMain]')"
        ".scrollTop"
    )
    image = Image.open(path)
    box = (0, max(0, int(top) - 20), image.width, min(image.height, int(top) - 20 + height))
    image.crop(box).save(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder"
    )
    args = parser.parse_args(argv)
    reason = missing_browser()
    if reason:
        print(f"cannot take screenshots: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    port = free_port()
    server = start_server(port, ROOT / "artifacts" / "screenshots_server.log")
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            shots = take(page, f"http://127.0.0.1:{port}", args.out)
            browser.close()
    finally:
        stop_server(server)
    for path in shots:
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{shrink(path) // 1024} KiB"
        )
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
