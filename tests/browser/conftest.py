"""One Streamlit server and one Chromium for all browser tests (session scope).

The tests need the python package ``playwright`` and the system Chromium. When either
is missing they skip with the reason, except when ``CI=true``: then they fail.

``tests/browser`` is a package, so this conftest does not replace ``tests/conftest.py``
as the module other tests import helpers from; this folder is put on ``sys.path`` so
that test files here can ``from streamlit_server import ...``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dinodiag import runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import (  # noqa: E402
    ROOT,
    free_port,
    launch_browser,
    missing_browser,
    start_server,
    stop_server,
)

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser_ready() -> None:
    reason = missing_browser()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests must run in CI: {reason}")
    pytest.skip(f"browser tests need a browser: {reason}")


@pytest.fixture(scope="session")
def server_url(browser_ready: None) -> Iterator[str]:
    port = free_port()
    process = start_server(port, ROOT / "artifacts" / "streamlit_server.log")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def module_server(
    browser_ready: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """``(url, runs directory)`` of a server for one test module, whose runs directory
    (``DINODIAG_RUNS_DIR``) is a fresh temporary folder: the module's ``write_runs(root)``,
    when it has one, fills it before the server starts. Stopped after the module's tests."""
    root = tmp_path_factory.mktemp(f"runs-{request.module.__name__.rsplit('.', 1)[-1]}")
    write_runs = getattr(request.module, "write_runs", None)
    if write_runs is not None:
        write_runs(root)
    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(runs.RUNS_ENV, str(root))  # inherited by the server process
        process = start_server(port, root / "streamlit.log")
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def browser(browser_ready: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server_url: str) -> Iterator[Any]:
    """A fresh browser tab (its own Streamlit session) with a 1400 x 900 viewport."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
