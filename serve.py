"""The dashboard as served by ``python -m dinodiag app`` and ``make run``: ``app.py`` behind
the Host rule (``dinodiag.dashboard.host_rule``: loopback names, the ``--address`` given
and the names listed in ``DINODIAG_ALLOWED_HOSTS``; any other Host gets 403, on HTTP and on
the websocket, which keeps DNS-rebinding pages out).

    python -m streamlit run serve.py --server.address 127.0.0.1   # what the launcher runs
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from dinodiag.dashboard.host_rule import ALLOWED_HOSTS_ENV, HostGuard, allowed_hosts, listed_hosts

ALLOWED = allowed_hosts(
    st.get_option("server.address"), listed_hosts(os.environ.get(ALLOWED_HOSTS_ENV))
)
app = st.App(
    Path(__file__).resolve().parent / "app.py",
    middleware=[Middleware(HostGuard, allowed=ALLOWED)],
)
