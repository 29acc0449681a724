""":func:`run_tasks`: the samples of a run, here or on worker processes, in sample order.

The first sample always runs here, timed; the workers start only when the samples left would
take longer than their start in one process. A pipeline that cannot travel to a worker (a
closure passed in directly, a wrapper holding a callback) runs here, in one process, with a
note.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from dinodiag.errors import ConfigError
from dinodiag.workers import pool
from dinodiag.workers.task import Note, Task, Work, print_note
from dinodiag.workers.taskset import ship
from dinodiag.workers.timeout import DEFAULT_TIMEOUT, InProcess, resolve_timeout


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset limit)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def resolve_workers(workers: int | None) -> int:
    """``workers`` checked: ``None`` means one per available core."""
    if workers is None:
        return available_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(
            f"workers = {workers!r} is invalid: give an integer >= 1 (1 = sample in this "
            "process), or None for one per available core."
        )
    return workers


def run_tasks(
    pipeline: Any,
    dataset: Any,
    tasks: Sequence[Task],
    work: Work,
    *,
    workers: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    name: str | None = None,
    on_note: Note | None = None,
) -> Iterator[Any]:
    """``work(pipeline, image, task)`` for every task, yielded in task order.

    ``workers``: processes (``None``: one per available core; 1: this process only).
    ``timeout``: seconds per sample before :class:`PipelineTimeoutError` (``None``: none).
    ``name``: the pipeline as messages name it (default its ``spec`` or ``repr``).
    ``on_note``: told when the samples run in one process although more were asked for
    (default: printed on stderr). Errors of the user's code propagate as in one process.
    """
    count = resolve_workers(workers)
    seconds = resolve_timeout(timeout)
    name = name or str(getattr(pipeline, "spec", None) or repr(pipeline))
    runner = InProcess(pipeline, dataset, work, seconds, name)
    if not tasks:
        return
    with one_torch_thread():
        start = time.monotonic()
        yield runner(tasks[0])
        first_seconds = time.monotonic() - start
        rest = tasks[1:]
        count = min(count, len(rest))
        shipped = None
        if count > 1 and first_seconds * len(rest) > pool.start_cost():
            shipped, reason = ship(pipeline, dataset)
            if shipped is None:
                (on_note or print_note)(
                    f"sampling in one process, not {count}: the pipeline {name} cannot be sent "
                    f"to worker processes ({reason}). Load it from a spec (file.py:factory) "
                    "to use every core."
                )
        if shipped is None:
            for task in rest:
                yield runner(task)
            return
        yield from pool.run_in_workers(shipped, dataset, rest, work, count, seconds, name)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
