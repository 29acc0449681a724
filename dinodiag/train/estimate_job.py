"""``python -m dinodiag.train.estimate_job PLAN [--started T] --job FOLDER``: the time estimate
of a planned run directory (:func:`dinodiag.rundir.write_plan`) in a process of its own,
as the run will start, telling its stages as it goes.

It is a job of :mod:`dinodiag.runs.jobs` (the dashboard's "Estimate the time",
:mod:`dinodiag.runs.estimates`, starts and reads it): each stage of
:func:`~dinodiag.train.warmup.estimate_training` is appended to ``FOLDER/progress.jsonl`` with
its unix ``time``, and the answer written to ``FOLDER/result.json``: ``{"result":
TimeEstimate.to_dict()}`` or ``{"error": message}`` (the job format of
:mod:`dinodiag.rundir.job`). ``T``: the unix time the caller started the process, so that the
set-up counts the imports as a run's time budget does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dinodiag.errors import DinodiagError
from dinodiag.recipe.config import TrainConfig
from dinodiag.rundir.job import finish, report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinodiag.train.estimate_job")
    parser.add_argument("plan", type=Path, help="a planned run directory")
    parser.add_argument("--started", type=float, default=None, help="unix start time")
    parser.add_argument("--job", type=Path, required=True, help="the job folder")
    args = parser.parse_args(argv)

    def progress(event: dict[str, Any]) -> None:
        report(args.job, **event)

    from dinodiag.recipe.plan import check_device
    from dinodiag.train.training_data import gpu_count
    from dinodiag.train.warmup import estimate_training

    try:
        config = TrainConfig.from_run_dir(args.plan, "estimate the planned run")
        check_device(config, gpu_count())
        estimate = estimate_training(config, started=args.started, progress=progress)
    except DinodiagError as exc:
        finish(args.job, error=str(exc))
        return 2
    finish(args.job, result=estimate.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
