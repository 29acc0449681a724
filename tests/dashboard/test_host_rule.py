"""The Host rule keeps DNS-rebinding pages out of the loopback dashboard, and the launcher
never leaves its server behind: unit rules, then the real server ``python -m dinodiag app``
starts, probed with hand-made HTTP requests and websocket handshakes."""

from __future__ import annotations

import asyncio
import base64
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dashboard.real_server import free_port, serve, stop
from dinodiag.dashboard.host_rule import HostGuard, allowed_hosts, host_allowed, host_name

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ the rule
def test_allowed_hosts_are_loopback_the_address_and_the_listed_names() -> None:
    assert allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "::1")
    assert allowed_hosts("0.0.0.0", ["Box.LAN."]) == ("localhost", "127.0.0.1", "::1", "box.lan")
    assert allowed_hosts("192.168.1.5")[-1] == "192.168.1.5"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8501", "localhost"),
        ("[::1]:8501", "::1"),
        ("LOCALHOST.", "localhost"),
        ("attacker.example:8501", "attacker.example"),
        ("user@localhost", None),
        ("localhost:port", None),
        ("localhost/x", None),
        ("", None),
        (None, None),
    ],
)
def test_host_name_reads_the_header_and_refuses_malformed_ones(
    header: str | None, name: str | None
) -> None:
    assert host_name(header) == name


def test_the_guard_answers_403_to_foreign_hosts_and_passes_the_others() -> None:
    reached: list[str] = []

    async def inner(scope, receive, send) -> None:
        reached.append(scope["type"])

    guard = HostGuard(inner, allowed_hosts("127.0.0.1"))
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def call(kind: str, host: bytes) -> None:
        await guard({"type": kind, "headers": [(b"host", host)]}, None, send)

    run(call("http", b"127.0.0.1:8501"))
    run(call("websocket", b"localhost:8501"))
    run(guard({"type": "lifespan"}, None, send))
    assert reached == ["http", "websocket", "lifespan"] and not sent
    run(call("http", b"attacker.example:8501"))
    run(call("websocket", b"attacker.example:8501"))
    assert reached == ["http", "websocket", "lifespan"]
    assert sent[0]["status"] == 403 and b"--allow-host attacker.example" in sent[1]["body"]
    assert sent[2] == {"type": "websocket.close", "code": 1008}
    assert host_allowed("box.lan:80", allowed_hosts("127.0.0.1", ["box.lan"]))


def run(coroutine) -> None:
    """``asyncio.run`` in a thread of its own: an earlier test (Playwright's sync API) may
    leave an event loop running in the main thread, where asyncio.run refuses to start."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


# ------------------------------------------------------------------------ a real server
def launch(port: int, tmp_path: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``python -m dinodiag app`` (what ``make run`` runs), healthy, in its own session."""
    command = [sys.executable, "-m", "dinodiag", "app", "--port", str(port), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DINODIAG_ALLOWED_HOSTS", None)
    return serve(command, tmp_path, port, env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real dashboard on 127.0.0.1 that also answers to ``box.lan``; yields its port."""
    port = free_port()
    process = launch(port, tmp_path_factory.mktemp("server"), "--allow-host", "box.lan")
    yield port
    stop(process)


def get(port: int, host: str, path: str = "/_stcore/health") -> tuple[int, bytes]:
    """GET ``path`` from 127.0.0.1 with the Host header a rebinding page would send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def websocket_status(port: int, host: str, origin: str) -> int:
    """The HTTP status of a websocket upgrade of Streamlit's stream, written by hand."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\nOrigin: {origin}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(1024)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


@pytest.mark.slow
def test_a_real_server_refuses_a_foreign_host_on_http(server: int) -> None:
    for host in (f"127.0.0.1:{server}", f"localhost:{server}", f"[::1]:{server}", "box.lan"):
        assert get(server, host) == (200, b"ok"), host
    status, body = get(server, f"attacker.example:{server}")
    assert status == 403 and b"--allow-host attacker.example" in body
    assert get(server, f"attacker.example:{server}", "/")[0] == 403  # the page itself too
    assert get(server, "localhost@attacker.example")[0] == 403  # no user part smuggled in


@pytest.mark.slow
def test_a_real_server_refuses_a_foreign_host_on_the_websocket(server: int) -> None:
    here = f"127.0.0.1:{server}"
    assert websocket_status(server, here, f"http://{here}") == 101
    evil = f"attacker.example:{server}"
    assert websocket_status(server, evil, f"http://{evil}") == 403  # Host and Origin agree
    assert websocket_status(server, f"box.lan:{server}", f"http://box.lan:{server}") == 101


# -------------------------------------------------------------------- a stopped launcher
@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stopped_launcher_stops_its_server(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    launcher = launch(port, tmp_path)
    try:
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert children, "the launcher runs the server as a child"
        launcher.send_signal(stop_signal)  # the launcher only, as `kill PID` does
        launcher.wait(timeout=90)  # it waited for its server, then ended (slow under load)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.cmdline() for p in alive]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
    finally:
        stop(launcher)
