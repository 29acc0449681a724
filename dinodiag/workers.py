"""Run a pipeline over many samples on every core, the results in sample order.

:func:`run_tasks` is the loop of ``check`` and ``stats`` (:func:`dinodiag.checks.run_checks`,
:func:`dinodiag.stats.sample_views`): each :class:`Task` is one image and one seed; a ``work``
function (module-level, so that it travels by name) turns the pipeline's sample into what the
caller keeps (rows, a digest of the views). The results come back in task order and are the
same whether one process or several computed them.

    for rows in run_tasks(pipeline, dataset, tasks, sample_rows_of, workers=None):
        ...

Why processes, and one torch thread each: a pipeline's small tensor operations (a blur's
``conv2d`` on one view) gain nothing from torch's intra-op threads, and on a machine that is
busy training those threads oversubscribe the cores (a check took 5x the raw pipeline's time
under two busy processes). So every process samples on one intra-op thread, and the samples are
spread over worker processes, one per available core (``workers=None``).

How the workers start (:func:`start_method`): a process that runs one thread (the command
line) forks them, in milliseconds; any other (the dashboard, a notebook: their threads could
hold a lock at the fork) starts them from a fork server that has torch preloaded (about 4 s
the first time on a busy 2-core machine, 0.1 s after). Either way the pipeline travels pickled,
as what rebuilds it: a pipeline loaded from a spec carries ``rebuild`` (the spec and its keyword
arguments: each worker imports the user's code again, closures and all); a built pipeline
pickles as its config. One that cannot travel (a closure passed in directly, a wrapper holding a
callback) runs here, in one process, with a note. The first sample always runs here, timed; the
workers start only when the samples left would take longer than their start in one process.

The watchdog (``timeout``, seconds per sample): user code that hangs ends in a
:class:`~dinodiag.errors.PipelineTimeoutError` naming the pipeline, the sample and its image.
In this process it is an alarm signal, so it needs the main thread (elsewhere, e.g. in the
dashboard's script thread, a sample here has no time limit); in a worker it is an alarm in the
worker, with the wait for the result as the backstop for code that blocks signals, and a dead
worker (a crash in native code) is reported with its sample.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, get_worker_info
from torch.utils.data import Dataset as TorchDataset

from dinodiag.errors import ConfigError, PipelineSpecError, PipelineTimeoutError

DEFAULT_TIMEOUT = 120.0  # seconds one sample may take: generous (a 896 px DINOv2 view: ~1 s)
COLD_START_SECONDS = 3.0  # starting the fork server (imports torch) on a busy 2-core machine
WARM_START_SECONDS = 0.3  # starting workers by fork, or once the fork server runs
# How workers start: None = a fork of this process when it runs one thread (the command line:
# milliseconds), else from the fork server; or "fork" / "forkserver" / "spawn".
START_METHOD: str | None = None
START_ALLOWANCE = 60.0  # extra seconds for each worker's first sample: it imports the pipeline
BACKSTOP_SECONDS = 5.0  # how much longer than the timeout the parent waits for a worker's alarm
POLL_SECONDS = 1.0  # how often the parent looks at the clock while it waits for a result

Work = Callable[[Any, Any, "Task"], Any]  # (pipeline, PIL image, task) -> what the caller keeps
Note = Callable[[str], None]

_server_started = False  # this process has started workers once: the fork server is warm


@dataclass(frozen=True)
class Task:
    """One call of the pipeline: sample ``number`` on dataset item ``image_index``."""

    number: int  # the sample's place in the run (0 ..): messages say "sample 3"
    image_index: int  # dataset index of the image
    seed: int  # the pipeline's seed for this call
    image: str  # where the image comes from (dataset.describe), for rows and messages


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


def print_note(text: str) -> None:
    """The default ``on_note``: the note on stderr (stdout may be a report or JSON)."""
    print(f"note: {text}", file=sys.stderr)


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
        method = start_method()
        warm = method == "fork" or (method == "forkserver" and _server_started)
        start_cost = WARM_START_SECONDS if warm else COLD_START_SECONDS
        shipped = None
        if count > 1 and first_seconds * len(rest) > start_cost:
            shipped, reason = _ship(pipeline, dataset)
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
        yield from _run_in_workers(shipped, dataset, rest, work, count, seconds, name)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------ the watchdog
class _Overdue(BaseException):
    """Raised by the alarm inside the user's code: a BaseException, so that the code's own
    ``except Exception`` (and the pipeline wrapper's) lets it through."""


@contextlib.contextmanager
def watchdog(seconds: float | None) -> Iterator[None]:
    """Raise :class:`_Overdue` in this thread after ``seconds`` (main thread only: elsewhere,
    or without ``setitimer``, no limit)."""
    if (
        seconds is None
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _Overdue

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


def whole_sample(pipeline: Any, image: Any, task: Task) -> Any:
    """The work that keeps the pipeline's whole sample (views and records)."""
    return pipeline(image, seed=task.seed)


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
        except _Overdue:
            assert self.seconds is not None
            raise timeout_error(self.name, task, self.seconds) from None


# ------------------------------------------------------------------------ the workers
def _ship(pipeline: Any, dataset: Any) -> tuple[bytes | None, str]:
    """``(pickled (builder, dataset), "")`` or ``(None, why not)``.

    The builder is the pipeline's own ``rebuild`` (set on the instance by the spec loader:
    a wrapper's delegated attribute does not count, the wrapper would be lost) or the
    pipeline itself.
    """
    rebuild = vars(pipeline).get("rebuild") if hasattr(pipeline, "__dict__") else None
    builder = ("rebuild", rebuild) if callable(rebuild) else ("object", pipeline)
    try:
        return pickle.dumps((builder, dataset), protocol=pickle.HIGHEST_PROTOCOL), ""
    except Exception as exc:  # pickling raises many types (PicklingError, TypeError, ...)
        return None, f"{type(exc).__name__}: {str(exc)[:200]}"


@dataclass
class _Done:
    result: Any
    problems: list[Any]  # unusable files the worker's dataset found (dinodiag.data.LoadProblem)


@dataclass
class _Failed:
    error: BaseException | None  # the exception itself when it pickles
    text: str  # its traceback, when it does not
    overdue: bool = False


class _TaskSet(TorchDataset):  # type: ignore[type-arg]
    """The tasks as a torch dataset: item ``i`` runs task ``i`` in a worker process."""

    def __init__(
        self,
        shipped: bytes,
        tasks: Sequence[Task],
        work: Work,
        seconds: float | None,
        running: Any,
    ) -> None:
        self.shipped, self.tasks, self.work, self.seconds = shipped, list(tasks), work, seconds
        self.running = running  # shared: the item each worker is on (-1: none), by worker id
        self.cwd, self.sys_path = os.getcwd(), list(sys.path)  # a relative spec resolves here
        self._opened: tuple[Any, Any] | None = None
        self._problems_sent = 0

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    def __len__(self) -> int:
        return len(self.tasks)

    def _open(self) -> tuple[Any, Any]:
        if self._opened is None:
            os.chdir(self.cwd)
            sys.path[:] = self.sys_path
            (how, builder), dataset = pickle.loads(self.shipped)
            self._opened = (builder() if how == "rebuild" else builder), dataset
        return self._opened

    def __getitem__(self, i: int) -> _Done | _Failed:
        task = self.tasks[i]
        worker = get_worker_info()
        if worker is not None:
            self.running[worker.id] = i  # what the parent names if this process dies
        try:
            pipeline, dataset = self._open()
            image, _ = dataset[task.image_index]
            with watchdog(self.seconds):
                result = self.work(pipeline, image, task)
        except _Overdue:
            return _Failed(None, "", overdue=True)
        except (Exception, SystemExit) as exc:
            return _failure(exc)
        finally:
            if worker is not None:
                self.running[worker.id] = -1
        problems = list(getattr(dataset, "problems", None) or [])
        new, self._problems_sent = problems[self._problems_sent :], len(problems)
        return _Done(result, new)


def _failure(exc: BaseException) -> _Failed:
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.dumps(exc)
    except Exception:
        return _Failed(None, text)
    return _Failed(exc, text)


def _first(item: Any) -> Any:
    """The DataLoader's collate: items come one by one, as they are (no tensor conversion)."""
    return item


def _start_worker(worker_id: int) -> None:
    torch.set_num_threads(1)  # the DataLoader does it too; said here as the reason it is fast


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


def _context(preload: list[str]) -> Any:
    """The start method's context; a fork server gets torch preloaded, so that each worker
    starts in a fraction of a second once it runs."""
    context = multiprocessing.get_context(start_method())
    if context.get_start_method() == "forkserver" and not _server_started:
        context.set_forkserver_preload(preload)
    return context


def _run_in_workers(
    shipped: bytes,
    dataset: Any,
    tasks: Sequence[Task],
    work: Work,
    count: int,
    seconds: float | None,
    name: str,
) -> Iterator[Any]:
    global _server_started
    context = _context(["torch", "torchvision", "PIL.Image", work.__module__])
    running = context.RawArray("q", [-1] * count)
    loader = DataLoader(
        _TaskSet(shipped, tasks, work, seconds, running),
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
            if isinstance(item, _Failed):
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
