"""Run the dashboard's server as a child that never outlives its launcher.

``python -m dinodiag app`` starts ``streamlit run serve.py`` as a child process. Stopped
with SIGTERM (``kill``, systemd, a container stop) or SIGHUP (its terminal closed), a
launcher that simply dies leaves that child listening, orphaned, perhaps with the own-code
opt-in on. :func:`run_forwarding_signals` hands those signals to the child and waits for it
to stop; one that has not stopped after :data:`STOP_GRACE_S` is killed. Ctrl-C reaches the
child from the terminal by itself: the launcher then just waits for it.

    run_forwarding_signals(["python", "-m", "streamlit", "run", "serve.py"], env)  # exit code
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from types import FrameType

STOP_GRACE_S = 10.0  # seconds a signalled server has to stop before it is killed
FORWARDED = (signal.SIGTERM, signal.SIGHUP)  # SIGINT comes from the terminal to both


def exit_code(returncode: int) -> int:
    """A child's return code as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def run_forwarding_signals(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command``; forward SIGTERM / SIGHUP to it, wait for it, return its exit code.

    Must be called from the main thread (signal handlers can only be set there).
    """
    child = subprocess.Popen(list(command), env=dict(env))
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in FORWARDED}
    try:
        while True:
            try:
                child.wait(timeout=STOP_GRACE_S if received else None)
                return exit_code(child.returncode)
            except subprocess.TimeoutExpired:  # signalled, still running: stop it for good
                child.kill()
            except KeyboardInterrupt:  # Ctrl-C: the terminal sends it to the child as well;
                received.append(signal.SIGINT)  # a SIGINT sent to the launcher alone does not
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
