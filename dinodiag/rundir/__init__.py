"""The run directory: what a training run writes and how it is read, as its own lower layer
(the trainer writes it; the dashboard, the run manager and the readers of ``runs/`` read it).

Modules: ``layout`` (file names, states, run ids, which folders are runs, the STOP request, the
one atomic JSON write), ``liveness`` (is its trainer alive: the lock, or the pid with its start
time), ``lock`` (the trainer's exclusive lock, :class:`RunDirError`), ``writer`` (the trainer's
writer, a plan's config.json, strict reads for a resume) and ``reader`` (status, config,
metrics and events, read while they are written; the runs of a folder).

    from dinodiag import rundir
    rundir.read_status("runs/demo")["state"]
    rundir.read_metrics("runs/demo", kind="eval")
"""

from dinodiag.lazy import lazy_attributes

# name -> module, imported on first use (the readers need pandas; the command line's argument
# parsing needs none of it).
_LAZY = {
    **dict.fromkeys(
        (
            "ACTIVE_STATES",
            "CHECKPOINT_FILE",
            "CONFIG_FILE",
            "CONSOLE_FILE",
            "DEFAULT_RUNS_DIR",
            "LAUNCH_FILE",
            "LISTED_MARKERS",
            "QUEUED_FILE",
            "RUNS_ENV",
            "STARTING_FILE",
            "runs_root",
            "LOCK_FILE",
            "METRICS_FILE",
            "PID_FILE",
            "PLANNED",
            "RUN_MARKERS",
            "STATES",
            "STATUS_FILE",
            "STOP_FILE",
            "RunLinkSkipped",
            "clear_stop",
            "dumps",
            "find_run_dirs",
            "is_run_dir",
            "json_lines",
            "new_run_id",
            "read_json",
            "request_stop",
            "scan_run_dirs",
            "stop_requested",
            "write_json_atomic",
        ),
        "dinodiag.rundir.layout",
    ),
    **dict.fromkeys(
        (
            "is_alive",
            "live_process",
            "lock_held",
            "process_alive",
            "process_record",
            "process_start_ticks",
            "read_pid_file",
            "write_pid_file",
        ),
        "dinodiag.rundir.liveness",
    ),
    **dict.fromkeys(
        (
            "RunInfo",
            "console_tail",
            "is_listed_run_dir",
            "is_planned",
            "list_runs",
            "read_config",
            "read_events",
            "read_metrics",
            "read_run",
            "read_status",
        ),
        "dinodiag.rundir.reader",
    ),
    **dict.fromkeys(("RunDirError", "RunLock", "os_error_message"), "dinodiag.rundir.lock"),
    **dict.fromkeys(
        ("RunWriter", "Trimmed", "UNREADABLE_FILE", "load_run_config", "write_plan"),
        "dinodiag.rundir.writer",
    ),
}

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
