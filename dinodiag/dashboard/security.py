"""Who can reach the dashboard, and what a browser may make the server do.

The dashboard runs as the user who started it. Two sidebar inputs make that user's Python
run code the browser chooses:

- *My own code* (a pipeline spec ``file.py:factory`` or ``package.module:factory`` with JSON
  arguments): it imports any module and calls it, so ``subprocess:getoutput`` with
  ``{"cmd": "..."}`` is a shell;
- the dataset roots of CIFAR-10 / CIFAR-100 / STL-10: CIFAR's files are Python pickles, which
  run whatever they say when unpickled. dinodiag's reader builds only arrays and plain data
  (``dinodiag.data.torchvision_sets``), but a pickle reader pointed at any path of the server
  is still more than a browser needs by default; STL-10 (raw bytes) follows the same switch,
  so that "dataset roots" is one rule to remember.

Both are off unless the person starting the server turns them on (:data:`ALLOW_CODE_ENV`,
which ``python -m dinodiag app --allow-browser-code`` and ``make run ALLOW_CODE=1`` set). The
CLI always takes specs and roots: it runs as the user who typed them.

The *Image folder* box stays on: it reads image files (decoded by PIL, bombs refused) under a
folder the server's user can read, following no link out of it, and shows them. That reveals
images, it runs nothing; what keeps strangers from typing paths is the address the server
listens on, loopback by default (``.streamlit/config.toml`` next to ``app.py``, read whatever
the working directory; the launcher passes it as a flag too). What keeps other *web pages*
out (DNS rebinding: a page whose name points at 127.0.0.1) is the Host rule of
:mod:`dinodiag.dashboard.host_rule`, which the launcher's ``serve.py`` applies to every
request. :func:`exposure_warning` is what the page says when the server was started on
another address anyway.

    browser_code_allowed(os.environ)   # False unless DINODIAG_ALLOW_BROWSER_CODE=1
    listens_beyond_loopback("0.0.0.0")  # True
    app_command(port=8501)              # [python, -m, streamlit, run, .../serve.py, ...]
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dinodiag.dashboard.host_rule import allowed_hosts
from dinodiag.errors import DinodiagError

ALLOW_CODE_ENV = "DINODIAG_ALLOW_BROWSER_CODE"  # "1" lets the browser run code on the server
_YES = ("1", "true", "yes", "on")
CODE_PIPELINE_SOURCES = ("own",)  # sidebar pipeline sources that import and call code
CODE_DATASET_SOURCES = ("cifar10", "cifar100", "stl10")  # dataset roots (CIFAR: pickles)
DEFAULT_ADDRESS = "127.0.0.1"  # loopback: only this machine can open the dashboard
MAX_UPLOAD_MB = 50  # server.maxUploadSize: MB per uploaded file (images and configs)
APP_FILE = Path(__file__).resolve().parents[2] / "app.py"  # the dashboard, in a checkout
SERVE_FILE = APP_FILE.with_name("serve.py")  # app.py behind the Host rule (host_rule)

HOW_TO_ALLOW = (
    f"start the dashboard with `make run ALLOW_CODE=1`, `python -m dinodiag app "
    f"--allow-browser-code` or the environment variable `{ALLOW_CODE_ENV}=1`"
)


def browser_code_allowed(environ: Mapping[str, str]) -> bool:
    """Whether the person who started the server allowed code from the browser."""
    return environ.get(ALLOW_CODE_ENV, "").strip().lower() in _YES


def needs_code(pipeline_source: str | None = None, dataset_source: str | None = None) -> bool:
    """Whether a sidebar choice makes the server run code the browser chose."""
    return pipeline_source in CODE_PIPELINE_SOURCES or dataset_source in CODE_DATASET_SOURCES


def code_off_message(source: str) -> str:
    """What the sidebar says in place of an input that would run code (Markdown).

    ``source`` is a sidebar source of :data:`CODE_PIPELINE_SOURCES` or
    :data:`CODE_DATASET_SOURCES`.
    """
    if source in CODE_PIPELINE_SOURCES:
        what = (
            "**Your own pipeline code is off on this server.** A spec imports and calls any "
            "Python module with the arguments typed here (`subprocess:getoutput` is a shell)."
        )
        cli = "`python -m dinodiag check --pipeline my_augment.py:build_transform`"
    else:
        what = (
            "**Dataset roots are off on this server.** They read dataset files from any path "
            "of the server, and CIFAR's are Python pickles, a format made to run code."
        )
        cli = f"`python -m dinodiag check --data {source}:~/data`"
    return (
        f"{what} To allow it, {HOW_TO_ALLOW}. Anyone who can open this page can then run "
        "code as the user who started the server: allow it only on a server that listens on "
        f"127.0.0.1 (the default). The command line needs no switch: {cli}."
    )


def refuse_code(pipeline_source: str | None, dataset_spec: str | None, allowed: bool) -> None:
    """Raise :class:`DinodiagError` when a choice would run browser-chosen code while that is
    off. The sidebar already says so; this guards the loaders themselves, whatever reached
    them (a session state set by hand, a page that forgot the sidebar's rule)."""
    if allowed:
        return
    if pipeline_source in CODE_PIPELINE_SOURCES:
        raise DinodiagError(f"your own pipeline code is off on this server: {HOW_TO_ALLOW}.")
    kind = (dataset_spec or "").partition(":")[0].strip().lower()
    if kind in CODE_DATASET_SOURCES:
        raise DinodiagError(f"dataset roots ({kind}:ROOT) are off on this server: {HOW_TO_ALLOW}.")


def listens_beyond_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` (``server.address``) is reachable from other
    machines. Unset or empty means every interface, as Streamlit binds it."""
    text = (address or "").strip().strip("[]")
    if not text:
        return True
    if text.lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(text).is_loopback
    except ValueError:  # a host name: it resolves to whatever interface it names
        return True


def exposure_warning(address: str | None, port: int | None, code_allowed: bool) -> str | None:
    """What the page says when the server listens beyond this machine (None: loopback only)."""
    if not listens_beyond_loopback(address):
        return None
    where = f"address {address!r}" if address else "every network interface"
    text = (
        f"**This dashboard listens on {where}** (port {port}): anyone who can reach this "
        "machine can open it, read image folders the server's user can read, and start "
        "training runs. "
    )
    if code_allowed:
        text += (
            f"**Code from the browser is allowed** (`{ALLOW_CODE_ENV}`): they can also run "
            "any command as the server's user. "
        )
    return text + (
        f"Unless that is intended, restart it on `{DEFAULT_ADDRESS}` (`make run`, `python -m "
        "dinodiag app`) and reach it from elsewhere through an SSH tunnel "
        f"(`ssh -L {port}:127.0.0.1:{port} host`)."
    )


def app_command(
    port: int = 8501,
    address: str = DEFAULT_ADDRESS,
    python: str = sys.executable,
    app_file: Path = SERVE_FILE,
    hosts: Sequence[str] = (),
) -> list[str]:
    """The ``streamlit run`` command line of the dashboard with its safety settings as flags
    (flags win over every config file and environment variable of Streamlit).

    ``app_file`` is ``serve.py``: ``app.py`` behind the Host rule, which reads the names in
    ``hosts`` from the environment (``host_rule.ALLOWED_HOSTS_ENV``); the same names go to
    Streamlit's own websocket check (``server.allowedHosts``) as well.
    """
    allowed = [f for name in allowed_hosts(address, hosts) for f in ("--server.allowedHosts", name)]
    return [
        python,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        *allowed,
    ]
