"""The per-sample watchdog (``timeout``, seconds per sample): user code that hangs ends in a
:class:`~dinodiag.errors.PipelineTimeoutError` naming the pipeline, the sample and its image.

In this process it is an alarm signal, so it needs the main thread (elsewhere, e.g. in the
dashboard's script thread, a sample here has no time limit). In a worker process it is the same
alarm, in the worker (:mod:`dinodiag.workers.taskset`), with the parent's wait for the result as
the backstop for code that blocks signals (:mod:`dinodiag.workers.pool`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from dinodiag.errors import ConfigError, PipelineTimeoutError
from dinodiag.workers.task import Task, Work

DEFAULT_TIMEOUT = 120.0  # seconds one sample may take: generous (a 896 px DINOv2 view: ~1 s)


def resolve_timeout(timeout: float | None) -> float | None:
    """``timeout`` checked: seconds > 0, or ``None`` for no watchdog."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigError(
            f"timeout = {timeout!r} is invalid: give the seconds one sample may take (> 0, "
            f"default {DEFAULT_TIMEOUT:g}), or None for no limit."
        )
    return float(timeout)


class Overdue(BaseException):
    """Raised by the alarm inside the user's code: a BaseException, so that the code's own
    ``except Exception`` (and the pipeline wrapper's) lets it through."""


@contextlib.contextmanager
def watchdog(seconds: float | None) -> Iterator[None]:
    """Raise :class:`Overdue` in this thread after ``seconds`` (main thread only: elsewhere,
    or without ``setitimer``, no limit)."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Overdue

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timeout_error(name: str, task: Task, seconds: float) -> PipelineTimeoutError:
    return PipelineTimeoutError(
        f"pipeline {name!r} took more than {seconds:g} s on sample {task.number} (image "
        f"{task.image}, dataset index {task.image_index}): it looks stuck. Run it on that "
        "image by hand to find the loop or the wait that does not end, or allow more time "
        "per sample (--timeout SECONDS; timeout= in Python)."
    )


class InProcess:
    """Tasks run in this process: the image, then the work under the watchdog."""

    def __init__(self, pipeline: Any, dataset: Any, work: Work, seconds: float | None, name: str):
        self.pipeline, self.dataset, self.work = pipeline, dataset, work
        self.seconds, self.name = seconds, name

    def __call__(self, task: Task) -> Any:
        image, _ = self.dataset[task.image_index]
        try:
            with watchdog(self.seconds):
                return self.work(self.pipeline, image, task)
        except Overdue:
            assert self.seconds is not None
            raise timeout_error(self.name, task, self.seconds) from None
