"""The Host rule: the dashboard answers only under the names it was started for.

Binding to 127.0.0.1 keeps other machines out, not other *web pages*: with DNS rebinding a
page the user visits (``attacker.example``) re-points its own name at 127.0.0.1 and its
scripts then talk to the dashboard as same-origin: they read image folders, start runs and,
with the own-code opt-in, run commands. What such a request cannot hide is its ``Host``
header, which names the attacker's domain. So every request, HTTP and the websocket upgrade
alike, must carry a Host of :func:`allowed_hosts`: the loopback names, the ``--address`` the
server listens on, and the names its owner lists (``--allow-host``, or
:data:`ALLOWED_HOSTS_ENV`, comma-separated). Anything else gets 403 before Streamlit sees it.

:class:`HostGuard` is a plain ASGI middleware (no Streamlit or Starlette import): ``serve.py``
next to ``app.py`` hands it to ``st.App``, and ``python -m dinodiag app`` starts that.

    allowed_hosts("127.0.0.1", ["box.lan"])   # ('localhost', '127.0.0.1', '::1', 'box.lan')
    host_allowed("attacker.example:8501", allowed_hosts("127.0.0.1"))   # False
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

ALLOWED_HOSTS_ENV = "DINODIAG_ALLOWED_HOSTS"  # more names the server answers to: "a,b"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")  # this machine, whatever the address
_ANY_INTERFACE = ("", "0.0.0.0", "::")  # a bind address, not a name a browser uses

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def _normalise(name: str) -> str:
    return name.strip().strip("[]").lower().rstrip(".")


def listed_hosts(text: str | None) -> list[str]:
    """The names of a comma- or space-separated list (``DINODIAG_ALLOWED_HOSTS``)."""
    return [name for name in (text or "").replace(",", " ").split() if name]


def allowed_hosts(address: str | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Host names a server bound to ``address`` answers to: loopback, the address
    itself (unless it is 0.0.0.0 / ::, which no browser types) and ``extra``."""
    names = list(LOOPBACK_NAMES)
    for name in [address or "", *extra]:
        name = _normalise(name)
        if name not in _ANY_INTERFACE and name not in names:
            names.append(name)
    return tuple(names)


def host_name(header: str | None) -> str | None:
    """The name of a ``Host`` header (``name``, ``name:port``, ``[v6]:port``); None when it
    is missing or malformed (a user, a path, a port that is not a number)."""
    if not header:
        return None
    try:
        parts = urlsplit(f"//{header.strip()}")
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        return None
    if parts.hostname is None or parts.username or parts.password or parts.path:
        return None
    if parts.query or parts.fragment:
        return None
    return _normalise(parts.hostname)


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a request whose ``Host`` header is ``header`` may reach the dashboard."""
    name = host_name(header)
    return name is not None and name in {_normalise(a) for a in allowed}


def refusal(header: str | None, allowed: Iterable[str]) -> str:
    """What a refused request is told: the Host, the names served, how to add one."""
    wanted = host_name(header) or "NAME"
    return (
        f"dinodiag refused this request: its Host {header!r} is not a name this dashboard "
        f"was started for ({', '.join(allowed)}); a web page may be trying to reach it through "
        f"DNS rebinding. To open the dashboard under that name, restart it with "
        f"`python -m dinodiag app --allow-host {wanted}` (or {ALLOWED_HOSTS_ENV}={wanted}).\n"
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class HostGuard:
    """ASGI middleware: HTTP requests and websocket upgrades whose ``Host`` is not one of
    ``allowed`` get 403 (HTTP with :func:`refusal` as the body; a websocket is closed before
    it is accepted, which the server answers with 403). Lifespan events pass through."""

    def __init__(self, app: Callable[..., Awaitable[None]], allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = tuple(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"host")
        if host_allowed(header, self.allowed):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        body = refusal(header, self.allowed).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
