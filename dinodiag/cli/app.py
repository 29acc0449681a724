"""``python -m dinodiag app``: the dashboard on this machine, bound to loopback unless told
otherwise, answering only the hosts it knows (``dinodiag.dashboard.host_rule``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dinodiag.errors import DinodiagError


def add_app_parser(sub: Any) -> None:
    app = sub.add_parser("app", help="start the dashboard on this machine (127.0.0.1)")
    app.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    app.add_argument(
        "--address",
        default="127.0.0.1",
        help="address to listen on; the default 127.0.0.1 lets only this machine in (use an "
        "SSH tunnel from elsewhere); 0.0.0.0 opens it to the network",
    )
    app.add_argument(
        "--allow-browser-code",
        action="store_true",
        help="let the sidebar run your own pipeline code and read CIFAR / STL-10 roots: anyone "
        "who can open the page can then run commands as you (same as "
        "DINODIAG_ALLOW_BROWSER_CODE=1)",
    )
    app.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the dashboard also answers to (repeat for more; also "
        "DINODIAG_ALLOWED_HOSTS=a,b): requests whose Host is not a loopback name, --address or "
        "one of these get 403, which keeps DNS-rebinding web pages out",
    )
    app.set_defaults(func=cmd_app)


def cmd_app(args: argparse.Namespace) -> int:
    """Start the dashboard (``streamlit run serve.py``: app.py behind the Host rule) bound to
    ``--address`` (loopback); SIGTERM / SIGHUP stop it too (``dashboard.launch``)."""
    from dinodiag.dashboard import host_rule, launch, security

    for needed in (security.APP_FILE, security.SERVE_FILE):
        if not needed.is_file():
            raise DinodiagError(
                f"the dashboard's {needed.name} is not at {needed}: it ships with a checkout of "
                "the repository, not with the installed package; run `make run` in a checkout."
            )
    env = dict(os.environ)
    hosts = host_rule.listed_hosts(env.get(host_rule.ALLOWED_HOSTS_ENV)) + args.allow_host
    env[host_rule.ALLOWED_HOSTS_ENV] = ",".join(hosts)
    if args.allow_browser_code:
        env[security.ALLOW_CODE_ENV] = "1"
        print(
            "warning: code from the browser is allowed: anyone who can open the dashboard can "
            "run commands as you.",
            file=sys.stderr,
        )
    if security.listens_beyond_loopback(args.address):
        print(
            f"warning: listening on {args.address}: other machines can open the dashboard.",
            file=sys.stderr,
        )
    command = security.app_command(port=args.port, address=args.address, hosts=hosts)
    return launch.run_forwarding_signals(command, env)
