"""Progress of work that calls a pipeline many times (a 256-image validation takes about a
minute): the pipeline is wrapped so that each call reports, and the page draws a bar.

    counted = CountingPipeline(pipeline, total=samples + 1, report=bar_update)
    run_checks(counted, dataset, ...)          # bar_update(done, total, seconds) as it goes
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from dinodiag.printable import duration


class CountingPipeline:
    """``pipeline`` that calls ``report(done, total, elapsed seconds)`` after each call (at
    most ``updates`` times in all, so that drawing the bar costs nothing). Every other
    attribute is the wrapped pipeline's (``config``, ``notes`` ...)."""

    def __init__(
        self,
        pipeline: Any,
        total: int,
        report: Callable[[int, int, float], None],
        updates: int = 50,
    ) -> None:
        self._pipeline = pipeline
        self._total = max(1, total)
        self._report = report
        self._every = max(1, self._total // max(1, updates))
        self._done = 0
        self._start = time.monotonic()

    def __call__(self, image: Any, seed: int | None = None) -> Any:
        sample = self._pipeline(image, seed=seed)
        self._done += 1
        if self._done % self._every == 0 or self._done >= self._total:
            self._report(min(self._done, self._total), self._total, time.monotonic() - self._start)
        return sample

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)


def progress_text(done: int, total: int, elapsed: float, what: str = "Checking") -> str:
    """``Checking: 40 / 256 images · about 1 min 05 s left`` (no estimate before the
    first few calls)."""
    text = f"{what}: {done} / {total} images"
    if done >= 3 and done < total:
        text += f" · about {duration(elapsed / done * (total - done))} left"
    return text
