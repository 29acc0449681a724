"""A real dashboard server for the security tests: start a command, wait for health, stop
its whole process group (``from dashboard.real_server import serve, stop``). Any command,
not only ``streamlit run app.py`` (``tests/browser/streamlit_server.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from browser.streamlit_server import free_port, stop_server

__all__ = ["free_port", "serve", "stop"]
stop = stop_server  # SIGTERM to the process group, SIGKILL after 10 s


def serve(
    command: list[str], cwd: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``command`` in its own session, logging to ``cwd/server.log``; returns once
    ``/_stcore/health`` answers on 127.0.0.1:``port``."""
    log = open(cwd / "server.log", "wb")  # noqa: SIM115 (closed when the test's tmp goes)
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, (cwd / "server.log").read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return process
        except OSError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError("the dashboard did not start: " + (cwd / "server.log").read_text())
