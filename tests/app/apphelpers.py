"""Helpers for the AppTest tests: collect what a page wrote."""

from __future__ import annotations

from pathlib import Path

from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"  # the dashboard's entry point


def texts(at: AppTest) -> str:
    """Everything the page and sidebar wrote as text (markdown, captions, titles, alerts)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning", "info"):
        parts.extend(str(element.value) for element in getattr(at, kind))
    return "\n".join(parts)


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def assert_no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def server_address(address: str | None) -> None:
    """Set Streamlit's ``server.address`` as a server started with it has it (AppTest has no
    server; the app reads the option)."""
    streamlit_config.set_option("server.address", address)
