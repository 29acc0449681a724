"""Training runs as the dashboard sees them: launching ``python -m dinodiag train`` as its
own process, supervising and comparing runs, the seed story, looking inside a teacher.

Modules: ``run_plan`` (what a run trains: a TrainConfig with the form's changes, validated),
``manager`` (write the plan, start ``train --run-dir D``, find, stop, resume, delete),
``story`` (yours vs the reference, the seed story, the verdict), ``estimates`` (the time
estimate in a process of its own, with its stages), ``compare`` (runs side by side),
``look_inside`` (CLS attention and patch-feature PCA of a trained teacher). The names most
callers need are re-exported here: ``from dinodiag import runs; runs.list_runs()``.
"""

from dinodiag.recipe.plan import RunPlan
from dinodiag.rundir.layout import CONSOLE_FILE, LAUNCH_FILE, QUEUED_FILE, RUNS_ENV, runs_root
from dinodiag.rundir.reader import RunInfo, console_tail, list_runs, read_run
from dinodiag.runs.manager import (
    delete_run,
    elapsed_seconds,
    launch,
    launch_queue,
    prepare,
    read_launch,
    resume_run,
    stop_run,
)
from dinodiag.runs.run_plan import plan_run

__all__ = [
    "CONSOLE_FILE",
    "LAUNCH_FILE",
    "QUEUED_FILE",
    "RUNS_ENV",
    "RunInfo",
    "RunPlan",
    "console_tail",
    "delete_run",
    "elapsed_seconds",
    "launch",
    "launch_queue",
    "list_runs",
    "plan_run",
    "prepare",
    "read_launch",
    "read_run",
    "resume_run",
    "runs_root",
    "stop_run",
]
