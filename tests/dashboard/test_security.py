"""dinodiag.dashboard.security: the opt-in for code from the browser, loopback, the launcher."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from dashboard.real_server import free_port, serve, stop
from dinodiag.dashboard import security
from dinodiag.errors import DinodiagError
from tests.facts import assert_mentions


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("1", True), ("true", True), (" YES ", True), ("on", True), ("0", False), ("", False)]
    + [("false", False), ("no", False), ("2", False), ("please", False)],
)
def test_code_from_the_browser_needs_an_explicit_yes(value: str, allowed: bool) -> None:
    assert security.browser_code_allowed({security.ALLOW_CODE_ENV: value}) is allowed
    assert security.browser_code_allowed({}) is False


def test_which_sidebar_choices_run_code() -> None:
    assert security.needs_code(pipeline_source="own")
    assert not security.needs_code(pipeline_source="preset")
    assert not security.needs_code(pipeline_source="config")
    for source in ("cifar10", "cifar100", "stl10"):
        assert security.needs_code(dataset_source=source)
    for source in ("sample", "generated", "folder", "upload"):
        assert not security.needs_code(dataset_source=source)


def test_the_off_message_says_how_to_turn_it_on_and_what_it_means() -> None:
    for source in ("own", "cifar10"):
        text = security.code_off_message(source)
        assert "off on this server" in text
        assert "make run ALLOW_CODE=1" in text and "--allow-browser-code" in text
        assert "DINODIAG_ALLOW_BROWSER_CODE=1" in text
        # what allowing it means, said plainly
        assert "run code as the user who started the server" in text  # wording is the feature
        assert "python -m dinodiag check" in text  # the CLI needs no switch
    assert "subprocess:getoutput" in security.code_off_message("own")
    assert "pickles" in security.code_off_message("cifar100")
    assert "--data cifar100:~/data" in security.code_off_message("cifar100")


def test_loaders_refuse_code_while_it_is_off() -> None:
    with pytest.raises(DinodiagError) as info:
        security.refuse_code("own", None, allowed=False)
    assert_mentions(str(info.value), "own pipeline code", "off on this server")
    roots = [(None, "CIFAR10:/data/c", "cifar10"), ("preset", "stl10:/s", "stl10")]
    for source, spec, root in roots:
        with pytest.raises(DinodiagError) as info:
            security.refuse_code(source, spec, allowed=False)
        assert_mentions(str(info.value), "dataset roots", f"({root}:ROOT)", "are off")
    security.refuse_code("own", "cifar10:/data", allowed=True)
    for spec in ("sample", "folder:/data/cifar10:x", "generated:n=10", "/data/images"):
        security.refuse_code("preset", spec, allowed=False)


@pytest.mark.parametrize(
    ("address", "beyond"),
    [
        ("127.0.0.1", False),
        ("127.0.0.5", False),
        ("localhost", False),
        ("::1", False),
        ("[::1]", False),
        (None, True),  # unset: Streamlit binds every interface
        ("", True),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("myhost.example", True),
    ],
)
def test_listens_beyond_loopback(address: str | None, beyond: bool) -> None:
    assert security.listens_beyond_loopback(address) is beyond


def test_exposure_warning() -> None:
    assert security.exposure_warning("127.0.0.1", 8501, code_allowed=True) is None
    text = security.exposure_warning(None, 8501, code_allowed=False)
    assert text is not None and "every network interface" in text and "port 8501" in text
    assert "ssh -L 8501:127.0.0.1:8501" in text and "Code from the browser" not in text
    loud = security.exposure_warning("0.0.0.0", 9000, code_allowed=True)
    assert loud is not None and "'0.0.0.0'" in loud
    assert_mentions(loud, "Code from the browser", "allowed", "any command")


def test_app_command_passes_the_safety_settings_as_flags() -> None:
    command = security.app_command(port=8600, python="py")
    assert command[:5] == ["py", "-m", "streamlit", "run", str(security.SERVE_FILE)]
    flags = dict(zip(command[5::2], command[6::2], strict=False))  # allowedHosts: the last
    assert flags["--server.address"] == "127.0.0.1"
    assert flags["--server.port"] == "8600"
    assert flags["--server.maxUploadSize"] == "50"
    assert security.APP_FILE.is_file() and security.SERVE_FILE.is_file()  # a checkout has both


# ------------------------------------------------------------------------ a real server
def _listening(root_pid: int, port: int) -> list[str]:
    """The addresses the process tree of ``root_pid`` listens on at ``port``."""
    root = psutil.Process(root_pid)
    found = []
    for process in [root, *root.children(recursive=True)]:
        try:
            connections = process.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [
            c.laddr.ip
            for c in connections
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
    return found


def _other_addresses() -> list[str]:
    """This machine's IPv4 addresses that are not loopback (where a stranger would connect)."""
    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback
    ]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["python -m dinodiag app", "streamlit run app.py elsewhere"])
def test_a_real_dashboard_listens_on_loopback_only(tmp_path: Path, how: str) -> None:
    port = free_port()
    if how == "python -m dinodiag app":  # what `make run` runs
        command = [sys.executable, "-m", "dinodiag", "app", "--port", str(port)]
    else:  # no address flag, another working directory: .streamlit/config.toml next to app.py
        streamlit = str(Path(sys.executable).with_name("streamlit"))
        command = [streamlit, "run", str(security.APP_FILE), "--server.port", str(port)]
    process = serve(command, tmp_path, port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            assert r.read() == b"ok"
        addresses = _listening(process.pid, port)
        assert addresses and set(addresses) == {"127.0.0.1"}, addresses
        for address in _other_addresses():  # a stranger's view: nothing answers there
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=3).close()
    finally:
        stop(process)


def test_the_config_next_to_app_py_holds_the_safety_settings() -> None:
    text = (security.APP_FILE.parent / ".streamlit" / "config.toml").read_text()
    server = text.split("[server]", 1)[1].split("\n[", 1)[0]  # the [server] table's lines
    values = {
        key.strip(): value.split("#", 1)[0].strip()
        for key, _, value in (line.partition("=") for line in server.splitlines() if "=" in line)
    }
    assert values["address"] == f'"{security.DEFAULT_ADDRESS}"'
    assert values["maxUploadSize"] == str(security.MAX_UPLOAD_MB)


def test_make_run_uses_the_launcher_and_passes_the_opt_in_only_when_asked() -> None:
    def dry_run(*variables: str) -> str:
        result = subprocess.run(
            ["make", "-n", "run", f"VENV={Path(sys.executable).parents[1]}"] + list(variables),
            cwd=security.APP_FILE.parent,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    plain = dry_run()
    [words] = [line.split() for line in plain.splitlines() if "-m dinodiag app" in line]
    assert words[words.index("--port") + 1] == "8501"
    assert words[words.index("--address") + 1] == "127.0.0.1"
    assert "--allow-browser-code" not in plain
    assert "--allow-browser-code" in dry_run("ALLOW_CODE=1")
    assert "--allow-browser-code" not in dry_run("ALLOW_CODE=0")
