"""The worker processes: how they start, and the parent's side of a run on them.

How the workers start (:func:`start_method`): a process that runs one thread (the command
line) forks them, in milliseconds; any other (the dashboard, a notebook: their threads could
hold a lock at the fork) starts them from a fork server that has torch preloaded (about 4 s
the first time on a busy 2-core machine, 0.1 s after). :func:`run_in_workers` hands the tasks
to a torch ``DataLoader`` over :class:`~dinodiag.workers.taskset.TaskSet` and yields the
results in task order; it waits for each at most the timeout plus :data:`BACKSTOP_SECONDS`
(code that blocks the worker's alarm), and a dead worker (a crash in native code) is reported
with its sample.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from dinodiag.errors import PipelineSpecError
from dinodiag.workers.task import Task, Work
from dinodiag.workers.taskset import Failed, TaskSet
from dinodiag.workers.timeout import timeout_error

COLD_START_SECONDS = 3.0  # starting the fork server (imports torch) on a busy 2-core machine
WARM_START_SECONDS = 0.3  # starting workers by fork, or once the fork server runs
# How workers start: None = a fork of this process when it runs one thread (the command line:
# milliseconds), else from the fork server; or "fork" / "forkserver" / "spawn".
START_METHOD: str | None = None
START_ALLOWANCE = 60.0  # extra seconds for each worker's first sample: it imports the pipeline
BACKSTOP_SECONDS = 5.0  # how much longer than the timeout the parent waits for a worker's alarm
POLL_SECONDS = 1.0  # how often the parent looks at the clock while it waits for a result

_server_started = False  # this process has started workers once: the fork server is warm


def start_method() -> str:
    """How workers start (:data:`START_METHOD`): a fork only of a process that runs one
    thread, whose state a child can safely copy (the command line); otherwise a fork server
    (a notebook, the dashboard's script thread: their threads could hold a lock at the fork),
    or spawn where there is none."""
    if START_METHOD is not None:
        return START_METHOD
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and sys.platform == "linux" and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def start_cost() -> float:
    """Seconds that starting the workers would take now: little by fork or once the fork
    server runs, more for the fork server's first start."""
    method = start_method()
    warm = method == "fork" or (method == "forkserver" and _server_started)
    return WARM_START_SECONDS if warm else COLD_START_SECONDS


def _context(preload: list[str]) -> Any:
    """The start method's context; a fork server gets torch preloaded, so that each worker
    starts in a fraction of a second once it runs."""
    context = multiprocessing.get_context(start_method())
    if context.get_start_method() == "forkserver" and not _server_started:
        context.set_forkserver_preload(preload)
    return context


def _first(item: Any) -> Any:
    """The DataLoader's collate: items come one by one, as they are (no tensor conversion)."""
    return item


def _start_worker(worker_id: int) -> None:
    torch.set_num_threads(1)  # the DataLoader does it too; said here as the reason it is fast


def run_in_workers(
    shipped: bytes,
    dataset: Any,
    tasks: Sequence[Task],
    work: Work,
    count: int,
    seconds: float | None,
    name: str,
) -> Iterator[Any]:
    """``work`` for every task on ``count`` worker processes, yielded in task order
    (``shipped``: :func:`dinodiag.workers.taskset.ship`'s pipeline and dataset)."""
    global _server_started
    context = _context(["torch", "torchvision", "PIL.Image", work.__module__])
    running = context.RawArray("q", [-1] * count)
    loader = DataLoader(
        TaskSet(shipped, tasks, work, seconds, running),
        batch_size=None,
        num_workers=count,
        collate_fn=_first,
        multiprocessing_context=context,
        worker_init_fn=_start_worker,
        timeout=POLL_SECONDS,
        generator=torch.Generator(),  # the loader's seed draw leaves the caller's RNG alone
    )
    iterator = iter(loader)
    _server_started = _server_started or context.get_start_method() == "forkserver"
    finished = False
    try:
        for position, task in enumerate(tasks):
            item = _next_result(iterator, tasks, position, position < count, seconds, name)
            if isinstance(item, _Died):
                dead = _dead_task(iterator, tasks, running) or task
                raise PipelineSpecError(
                    f"a worker process died while running pipeline {name!r} on sample "
                    f"{dead.number} (image {dead.image}): the code crashed the interpreter "
                    "(native code) or ran out of memory. Run with --workers 1 (workers=1) to "
                    "see the error in this process."
                )
            if isinstance(item, Failed):
                if item.overdue:
                    assert seconds is not None
                    raise timeout_error(name, task, seconds)
                if item.error is not None:
                    raise item.error
                raise RuntimeError(f"sample {task.number} failed in a worker process:\n{item.text}")
            _record_problems(dataset, item.problems)
            yield item.result
        finished = True
    finally:
        if not finished:  # an error, a timeout or a caller that stopped: no worker is needed
            for process in getattr(iterator, "_workers", ()):
                process.terminate()  # a hung one would hold the shutdown's join 5 s each
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def _next_result(
    iterator: Any,
    tasks: Sequence[Task],
    position: int,
    first_round: bool,
    seconds: float | None,
    name: str,
) -> Any:
    """The result of ``tasks[position]``, waiting at most the timeout (plus the start
    allowance for a worker's first sample)."""
    task = tasks[position]
    limit = None if seconds is None else seconds + BACKSTOP_SECONDS
    if limit is not None and first_round:
        limit += START_ALLOWANCE
    start = time.monotonic()
    while True:
        try:
            return next(iterator)
        except RuntimeError as exc:
            text = str(exc)
            if text.startswith("DataLoader timed out"):
                if limit is not None and time.monotonic() - start > limit:
                    assert seconds is not None
                    raise timeout_error(name, task, seconds) from None
                continue
            if "exited unexpectedly" in text:
                return _Died()
            raise


class _Died:
    """A worker process ended without a result (the DataLoader noticed)."""


def _dead_task(iterator: Any, tasks: Sequence[Task], running: Any) -> Task | None:
    """The task a dead worker was on (its slot of ``running``); None where that cannot be
    told (the DataLoader iterator's list of worker processes is not public)."""
    for worker_id, process in enumerate(getattr(iterator, "_workers", ())):
        if not process.is_alive() and 0 <= running[worker_id] < len(tasks):
            return tasks[running[worker_id]]
    return None


def _record_problems(dataset: Any, problems: list[Any]) -> None:
    """Unusable files a worker found, into this process's dataset (as a load here would)."""
    record = getattr(dataset, "_record", None)
    if record is not None:
        for problem in problems:
            record(problem)
