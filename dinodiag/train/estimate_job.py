"""``python -m dinodiag.train.estimate_job PLAN [--started T] --job FOLDER``: the time estimate
of a planned run directory (:func:`dinodiag.rundir.write_plan`) in a process of its own,
as the run will start, telling its stages as it goes.

It is a job of :mod:`dinodiag.runs.jobs` (the dashboard's "Estimate the time",
:mod:`dinodiag.runs.estimates`, starts and reads it): each stage of
:func:`~dinodiag.train.warmup.estimate_training` is appended to ``FOLDER/progress.jsonl`` with
its unix ``time``, and the answer written to ``FOLDER/result.json``: ``{"result":
TimeEstimate.to_dict()}`` or ``{"error": message}``. (The job format is written here, since
``dinodiag.runs`` sits above the training loop.) ``T``: the unix time the caller started the
process, so that the set-up counts the imports as a run's time budget does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from dinodiag.errors import DinodiagError
from dinodiag.recipe.config import TrainConfig
from dinodiag.rundir import PLANNED, dumps, write_json_atomic
from dinodiag.rundir.writer import load_run_config

PROGRESS_FILE = "progress.jsonl"  # the job format of dinodiag.runs.jobs
RESULT_FILE = "result.json"


def planned_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig of a planned run directory (read strictly; :class:`DinodiagError`
    naming the file when it cannot be read)."""
    saved = load_run_config(run_dir, "estimate the planned run")
    return TrainConfig.from_dict({k: v for k, v in saved.items() if k != PLANNED})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinodiag.train.estimate_job")
    parser.add_argument("plan", type=Path, help="a planned run directory")
    parser.add_argument("--started", type=float, default=None, help="unix start time")
    parser.add_argument("--job", type=Path, required=True, help="the job folder")
    args = parser.parse_args(argv)

    def progress(event: dict[str, Any]) -> None:
        with open(args.job / PROGRESS_FILE, "a", encoding="utf-8") as lines:
            lines.write(dumps({**event, "time": time.time()}) + "\n")

    from dinodiag.train.runtime import check_fits_device
    from dinodiag.train.warmup import estimate_training

    try:
        config = planned_config(args.plan)
        check_fits_device(config)
        estimate = estimate_training(config, started=args.started, progress=progress)
    except DinodiagError as exc:
        write_json_atomic(args.job / RESULT_FILE, {"error": str(exc)})
        return 2
    write_json_atomic(args.job / RESULT_FILE, {"result": estimate.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
