"""README screenshot of the "Your run" page: a DINOv2 output directory whose run collapsed.

    .venv/bin/python tests/browser/your_run_screenshot.py              # -> docs/screenshots/
    .venv/bin/python tests/browser/your_run_screenshot.py --out /tmp/shots --kind uniform

Writes a synthetic DINOv2 output directory (``tests/runs/dinov2_fakes.py``: a config.yaml, a
training_metrics.json whose DINO loss falls to 0 within the first epoch, two ViT-S/14 teacher
checkpoints), starts the dashboard, types the directory into the page and photographs its
diagnosis and curves (``your_run.png``). Needs playwright and the system Chromium.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from screenshots import shrink  # noqa: E402
from streamlit_server import (  # noqa: E402
    ROOT,
    free_port,
    full_screenshot,
    launch_browser,
    start_server,
    stop_server,
    wait_idle,
)

from tests.runs.dinov2_fakes import write_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--kind", default="onehot", help="the fake run's log: onehot, uniform, healthy, flat ..."
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dinodiag-your-run-"))
    run_dir = write_run(work / "vits14_run", args.kind, patch=14)
    an_hour_ago = time.time() - 3600  # a run that ended, not one whose log is still growing
    for path in run_dir.rglob("*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_server(port, work / "streamlit.log")
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            page.goto(f"http://127.0.0.1:{port}/your_run")
            wait_idle(page)
            box = page.get_by_role("textbox", name="Run directory")
            box.fill(str(run_dir))
            box.press("Enter")
            wait_idle(page)
            box.blur()
            page.get_by_text("Diagnosis from the log").wait_for()
            page.locator("[data-testid='stVegaLiteChart']").nth(2).wait_for()
            page.wait_for_timeout(2000)  # let the charts finish drawing
            shot = full_screenshot(page, args.out / "your_run.png")
            print(f"{shot}: {shrink(shot)} bytes")
            browser.close()
    finally:
        stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
