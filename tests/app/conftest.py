"""AppTest fixtures: the dashboard run headless from ``app.py``, sidebar included.

``tests/app`` is a package, so this conftest is imported as ``app.conftest`` and does
not replace ``tests/conftest.py`` as the module other tests import helpers from
(``from conftest import make_image``). Test files here import their helpers with
``from apphelpers import ...``: this folder is put on ``sys.path`` for that.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apphelpers import APP, assert_no_exception  # noqa: E402
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402


@pytest.fixture
def served_app_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every AppTest run behave like a server past its first run.

    AppTest resets ``PagesManager.uses_pages_directory`` before each run, so each
    run would start in Streamlit's legacy ``pages/`` mode, which runs the page
    file alone; the pages then rerun through ``app.py`` (``ensure_routed``) and a
    button click of that run would be lost. A real server is in that mode only
    for its very first run (tested in ``test_app_routing.py``).
    """
    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture
def app(served_app_flags: None) -> Callable[..., AppTest]:
    """``app(**session_state)``: a fresh AppTest of app.py, run once, no exception."""

    def make(**state: object) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=90)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        assert_no_exception(at)
        return at

    return make
