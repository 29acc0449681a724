"""Training runs as the dashboard sees them: launching ``python -m dinodiag train`` as its
own process, supervising and comparing runs, the seed story, looking inside a teacher.

Modules: ``launch_spec`` (a launch form's values and the command they become),
``manager`` (start, find, stop, resume, delete), ``compare`` (runs side by side),
``look_inside`` (CLS attention and patch-feature PCA of a trained teacher). The names most
callers need are re-exported here: ``from dinodiag import runs; runs.list_runs()``.
"""

from dinodiag.runs.launch_spec import LaunchSpec
from dinodiag.runs.manager import (
    CONSOLE_FILE,
    LAUNCH_FILE,
    QUEUED_FILE,
    RUNS_ENV,
    RunInfo,
    console_tail,
    delete_run,
    elapsed_seconds,
    launch,
    launch_queue,
    list_runs,
    prepare,
    read_launch,
    read_run,
    resume_run,
    runs_root,
    stop_run,
)

__all__ = [
    "CONSOLE_FILE",
    "LAUNCH_FILE",
    "QUEUED_FILE",
    "RUNS_ENV",
    "LaunchSpec",
    "RunInfo",
    "console_tail",
    "delete_run",
    "elapsed_seconds",
    "launch",
    "launch_queue",
    "list_runs",
    "prepare",
    "read_launch",
    "read_run",
    "resume_run",
    "runs_root",
    "stop_run",
]
