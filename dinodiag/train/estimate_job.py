"""``python -m dinodiag.train.estimate_job RUN_DIR --progress P --out O [--started T]``: the
time estimate of a planned run directory (:func:`dinodiag.train.rundir.write_plan`) in a
process of its own, as the run will start, telling its stages as it goes.

Each stage of :func:`~dinodiag.train.warmup.estimate_training` is appended to ``P`` as a JSON
line (with the unix ``time`` it began); the answer is written to ``O``:
``{"estimate": TimeEstimate.to_dict()}`` or ``{"error": message}``. The dashboard's
"Estimate the time" starts it and reads both files (:mod:`dinodiag.runs.estimates`); nothing
else is written. ``T``: the unix time the caller started the process (the set-up then counts
the imports, as a run's time budget does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from dinodiag.errors import DinodiagError
from dinodiag.train.config import TrainConfig
from dinodiag.train.run_writer import load_run_config
from dinodiag.train.rundir import PLANNED, write_json_atomic


def planned_config(run_dir: Path) -> TrainConfig:
    """The TrainConfig of a planned run directory (read strictly; :class:`DinodiagError`
    naming the file when it cannot be read)."""
    saved = load_run_config(run_dir, "estimate the planned run")
    return TrainConfig.from_dict({k: v for k, v in saved.items() if k != PLANNED})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dinodiag.train.estimate_job")
    parser.add_argument("run_dir", type=Path, help="a planned run directory")
    parser.add_argument("--progress", type=Path, required=True, help="JSON lines: the stages")
    parser.add_argument("--out", type=Path, required=True, help="JSON: the estimate or error")
    parser.add_argument("--started", type=float, default=None, help="unix start time")
    args = parser.parse_args(argv)

    def progress(event: dict[str, Any]) -> None:
        with open(args.progress, "a", encoding="utf-8") as lines:
            lines.write(json.dumps({**event, "time": time.time()}) + "\n")

    from dinodiag.train.dinov2_recipe import check_fits_device
    from dinodiag.train.warmup import estimate_training

    try:
        config = planned_config(args.run_dir)
        check_fits_device(config)
        estimate = estimate_training(config, started=args.started, progress=progress)
    except DinodiagError as exc:
        write_json_atomic(args.out, {"error": str(exc)})
        return 2
    write_json_atomic(args.out, {"estimate": estimate.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
