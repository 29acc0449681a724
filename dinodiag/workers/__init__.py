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

The modules, lowest first: ``task`` (a sample, the work, notes), ``timeout`` (the watchdog:
``timeout`` seconds per sample, here and in a worker), ``taskset`` (what travels to a worker
and runs there), ``pool`` (how the workers start, the parent's wait for their results; its
knobs such as ``START_METHOD`` are set there) and ``loop`` (:func:`run_tasks`).
"""

from dinodiag.workers.loop import available_cores, one_torch_thread, resolve_workers, run_tasks
from dinodiag.workers.pool import start_method
from dinodiag.workers.task import Note, Task, Work, print_note, whole_sample
from dinodiag.workers.timeout import (
    DEFAULT_TIMEOUT,
    InProcess,
    resolve_timeout,
    timeout_error,
    watchdog,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "InProcess",
    "Note",
    "Task",
    "Work",
    "available_cores",
    "one_torch_thread",
    "print_note",
    "resolve_timeout",
    "resolve_workers",
    "run_tasks",
    "start_method",
    "timeout_error",
    "watchdog",
    "whole_sample",
]
