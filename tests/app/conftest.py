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
from streamlit.testing.v1 import AppTest  # noqa: E402


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
