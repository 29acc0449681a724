"""README screenshots of the training page: the live view and the seed story's result.

    .venv/bin/python tests/browser/training_screenshots.py                  # ~8 min on 2 free cores
    .venv/bin/python tests/browser/training_screenshots.py --steps 60 --out /tmp/shots
    .venv/bin/python tests/browser/training_screenshots.py --runs-dir runs-story --reuse \
        --resume-steps 40

Starts the dashboard with a fresh runs directory, presses **Run the seed story** (the seed's
broken and fixed pipelines, one after the other, ``--steps`` each, on the cpu-demo preset),
photographs the live view of the second run half-way (``training_live.png``), the "Yours vs
reference" tab once both ended (``seed_story.png``) and the two runs in "Compare runs"
(``compare_runs.png``). ``--reuse`` photographs a runs directory that already holds a finished
story instead of training again (``--resume-steps``: then resumes its fixed
run and photographs it live). Needs playwright and the system Chromium.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import (  # noqa: E402
    ROOT,
    free_port,
    full_screenshot,
    launch_browser,
    start_server,
    stop_server,
    wait_idle,
)

from dinodiag import runs  # noqa: E402
from dinodiag.runs import story  # noqa: E402


def story_runs(root: Path) -> dict[str, runs.RunInfo]:
    """The story's runs by the seed's names: "broken" is "yours", "fixed" the reference."""
    found = story.latest_story(runs.list_runs(root))
    names = {"yours": "broken", "reference": "fixed"}
    return {names[role]: info for role, info in found.items()}


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1.0)


def live_screenshot(page: Any, path: Path) -> Path:
    """A full-page screenshot of a page whose fragment reruns every few seconds.

    Streamlit greys an element out while its fragment reruns, and on a busy machine a rerun
    takes longer than the interval, so some panel is always grey: the picture is taken with the
    grey turned off, each element showing what it last drew (at most one refresh old).
    """
    page.add_style_tag(content="[data-stale='true'] { opacity: 1 !important; }")
    return full_screenshot(page, path)


def open_tab(page: Any, url: str, tab: str) -> None:
    page.goto(f"{url}/training")
    wait_idle(page)
    page.get_by_role("tab", name=tab).click()
    wait_idle(page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="length of each run")
    parser.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: a temporary one")
    parser.add_argument(
        "--reuse", action="store_true", help="photograph the finished story already in --runs-dir"
    )
    parser.add_argument(
        "--resume-steps",
        type=int,
        default=0,
        help="with --reuse: then resume the fixed run for this many steps and photograph it live",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    root = args.runs_dir or Path(tempfile.mkdtemp(prefix="dinodiag-story-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ[runs.RUNS_ENV] = str(root.resolve())
    port = free_port()
    server = start_server(port, root / "streamlit.log")
    url = f"http://127.0.0.1:{port}"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.set_default_timeout(120_000)
            if not args.reuse:
                open_tab(page, url, "Yours vs reference")
                page.get_by_text(
                    "The seed story: the seed's broken pipeline against its fix"
                ).click()
                box = page.get_by_role("spinbutton", name="Steps per seed-story run")
                box.fill(str(args.steps))
                box.press("Enter")
                wait_idle(page)
                page.get_by_role("button", name="Run the seed story").click()
                wait_idle(page)
                print(f"story started in {root}; waiting for the fixed run to be half-way")
                wait_until(
                    lambda: (
                        story_runs(root).get("fixed") is not None
                        and story_runs(root)["fixed"].state == "running"
                        and story_runs(root)["fixed"].step >= 0.6 * args.steps
                    ),
                    args.timeout,
                    "the fixed run",
                )
                open_tab(page, url, "Live")
                page.wait_for_timeout(3000)
                print("live:", live_screenshot(page, args.out / "training_live.png"))
            wait_until(
                lambda: (
                    len(story_runs(root)) == 2
                    and not any(r.active for r in story_runs(root).values())
                ),
                args.timeout,
                "both runs to end",
            )
            open_tab(page, url, "Yours vs reference")
            page.get_by_text("The broken pipeline gains").wait_for()  # the verdict: both ended
            page.wait_for_timeout(1500)
            print("story:", full_screenshot(page, args.out / "seed_story.png"))
            open_tab(page, url, "Compare runs")
            page.get_by_test_id("stVegaLiteChart").nth(1).wait_for()
            page.wait_for_timeout(1500)
            print("compare:", full_screenshot(page, args.out / "compare_runs.png"))
            if args.reuse and args.resume_steps:
                fixed = story_runs(root)["fixed"]
                runs.resume_run(fixed.path, more_steps=args.resume_steps)
                target = fixed.step + args.resume_steps // 2
                wait_until(
                    lambda: runs.read_run(fixed.path).step >= target,
                    args.timeout,
                    "the resumed run",
                )
                open_tab(page, url, "Live")
                page.wait_for_timeout(3000)
                print("live:", live_screenshot(page, args.out / "training_live.png"))
                wait_until(lambda: not runs.read_run(fixed.path).active, args.timeout, "its end")
            browser.close()
    finally:
        stop_server(server)
    for role, info in story_runs(root).items():
        print(f"{role}: {info.run_id} {info.state} step {info.step}: {info.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
