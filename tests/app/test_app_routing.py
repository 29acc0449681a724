"""Routing without Streamlit internals: a page run without ``app.py`` routes itself.

A ``pages/`` folder next to ``app.py`` makes Streamlit run a requested page file on its
own on the first request of a server and on every AppTest run (its legacy multipage
mode). The pages then run ``app.py`` in place (``pages/_shared.ensure_routed``), whose
``st.navigation`` call switches Streamlit to explicit routing, as its docs describe.
The first request of a real server is tested in a browser (tests/browser).
"""

from __future__ import annotations

import re
from pathlib import Path

from apphelpers import APP, ROOT, assert_no_exception, texts
from streamlit.testing.v1 import AppTest

from tests.facts import assert_mentions


def test_a_page_run_without_the_router_draws_the_sidebar_and_keeps_clicks():
    at = AppTest.from_file(str(APP), default_timeout=90)  # nothing patched
    at.run()
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert at.title[0].value == "Crop inspector"
    assert {"ds_source", "pl_preset"} <= {s.key for s in at.selectbox}  # the sidebar is there
    assert len(at.image) == 3
    at.button(key="insp_resample").click().run()  # the run the click is in is not lost
    assert_no_exception(at)
    assert "draw #1" in texts(at)
    assert at.selectbox(key="pl_preset").value == "dinov2"


def test_sidebar_widgets_keep_their_values_across_pages():
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.run()
    at.selectbox(key="pl_preset").set_value("seed-broken").run()
    at.switch_page("pages/validation.py").run()
    assert_no_exception(at)
    assert at.selectbox(key="pl_preset").value == "seed-broken"
    assert_mentions(texts(at), "`seed-broken`", "**dinov2**")  # the pipeline and its reference


def test_no_code_touches_streamlit_internals():
    """Only documented Streamlit API: no ``streamlit.runtime`` in the app, tests or benches."""
    files = [APP, *ROOT.glob("pages/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]
    this_file = Path(__file__).resolve()
    private = re.compile(r"streamlit\.runtime|PagesManager|uses_pages_directory")
    offenders = [
        str(path.relative_to(ROOT))
        for path in files
        if path.resolve() != this_file and private.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders
