"""The first run of a server process serves a page file on its own (legacy ``pages/`` mode).

The pages hand over to ``app.py`` (``pages/_shared.ensure_routed``), so even that
run shows the sidebar and the page's content instead of a KeyError.
"""

from __future__ import annotations

from apphelpers import APP, assert_no_exception
from streamlit.testing.v1 import AppTest


def test_a_page_served_without_the_router_reruns_through_app_py():
    at = AppTest.from_file(
        str(APP), default_timeout=90
    )  # no served_app_flags: legacy mode each run
    at.run()
    at.switch_page("pages/inspector.py").run()
    assert_no_exception(at)
    assert at.title[0].value == "Crop inspector"
    assert {"ds_source", "pl_preset"} <= {s.key for s in at.selectbox}  # the sidebar is there
    at.run()  # a plain rerun: again through the router, sidebar kept
    assert_no_exception(at)
    assert at.selectbox(key="pl_preset").value == "dinov2"
    assert len(at.image) == 3
