"""AppTest fixtures: the dashboard run headless from ``app.py``, sidebar included.

``tests/app`` is a package, so this conftest is imported as ``app.conftest`` and does
not replace ``tests/conftest.py`` as the module other tests import helpers from
(``from conftest import make_image``). Test files here import their helpers with
``from apphelpers import ...``: this folder is put on ``sys.path`` for that.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit import config as streamlit_config  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apphelpers import APP, assert_no_exception, server_address  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture(autouse=True)
def server_as_make_run_starts_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every AppTest sees the server ``make run`` starts: bound to 127.0.0.1, code from the
    browser off (whatever the working directory's config or the caller's environment say),
    and a runs directory of its own (the app saves validation reports there).
    Tests that need otherwise set ``server_address`` / DINODIAG_ALLOW_BROWSER_CODE."""
    monkeypatch.delenv("DINODIAG_ALLOW_BROWSER_CODE", raising=False)
    monkeypatch.setenv("DINODIAG_RUNS_DIR", str(tmp_path / "runs"))
    before = streamlit_config.get_option("server.address")
    server_address("127.0.0.1")
    yield
    server_address(before)


@pytest.fixture
def allow_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server was started with ``make run ALLOW_CODE=1``."""
    monkeypatch.setenv("DINODIAG_ALLOW_BROWSER_CODE", "1")


@pytest.fixture
def app() -> Callable[..., AppTest]:
    """``app(**session_state)``: a fresh AppTest of app.py, run once, no exception.

    Nothing is patched: AppTest starts every run in Streamlit's legacy ``pages/`` mode,
    and the pages route themselves through ``app.py`` (``pages/_shared.ensure_routed``).
    """

    def make(**state: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=90)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        assert_no_exception(at)
        return at

    return make
