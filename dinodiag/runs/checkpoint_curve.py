"""The k-NN of every checkpoint of a run, as a curve over iterations, in a process of its own
(the Your run page follows it; loading and evaluating a dozen ViT checkpoints takes minutes,
and long work never runs on the page's script thread).

    job = start_curve(run_dir, data="cifar10:~/data", seed=0, launch=None)
    status = read_curve(job)          # state, "checkpoint 3 of 12 (training_2499)", frame
    discard_job(job)

The process is ``python -m dinodiag.runs.checkpoint_curve RUN_DIR --data SPEC --seed N --job
FOLDER``: it opens the run as the page does (:func:`dinodiag.runs.dinov2_run.open_run`),
evaluates its checkpoints oldest first (:func:`dinodiag.runs.checkpoint_eval.evaluate_checkpoints`
on the same bank and test images for each) and writes the rows of
:func:`~dinodiag.runs.checkpoint_eval.knn_frame`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dinodiag.errors import DinodiagError
from dinodiag.printable import duration
from dinodiag.runs.jobs import JobState, discard_job, finish, read_job, report, start_job

TIMEOUT_S = 3600.0  # a curve still running after an hour is stopped
# k-NN bank / test images at most per checkpoint; the page's single evaluation uses the same
# (200 test images resolve a 10-point change: dinodiag.train.eval.knn_noise)
EVAL_IMAGES = (500, 200)

__all__ = ["EVAL_IMAGES", "CurveStatus", "discard_job", "read_curve", "start_curve"]


@dataclass(frozen=True)
class CurveStatus:
    """Where a checkpoint curve stands."""

    state: str  # "running" | "done" | "failed"
    done: int  # checkpoints evaluated
    total: int | None  # checkpoints in all (None until the process has opened the run)
    current: str  # the label of the checkpoint being evaluated ("" before the first)
    elapsed_s: float
    frame: pd.DataFrame | None = None  # the curve's rows, when done
    error: str | None = None

    @property
    def fraction(self) -> float:
        return 1.0 if self.state != "running" or not self.total else self.done / self.total

    def line(self) -> str:
        """``checkpoint 3 of 12 (training_2499) · 41 s so far · about 3 min 05 s left``."""
        if self.total is None:
            return f"opening the run and the k-NN images · {duration(self.elapsed_s)} so far"
        words = f"checkpoint {self.done + 1} of {self.total}"
        words += f" ({self.current})" if self.current else ""
        left = ""
        if self.done:  # at the pace of the checkpoints done
            left = (
                f" · about {duration(self.elapsed_s / self.done * (self.total - self.done))} left"
            )
        return f"{words} · {duration(self.elapsed_s)} so far{left}"


def start_curve(
    run_dir: str | Path, data: str, seed: int, launch: int | None = None, python: str | None = None
) -> Path:
    """Start the curve of ``run_dir``'s checkpoints on the dataset ``data``; returns the job."""
    command = [python or sys.executable, "-m", "dinodiag.runs.checkpoint_curve", str(run_dir)]
    command += ["--data", data, "--seed", str(seed)]
    if launch is not None:
        command += ["--launch", str(launch)]
    return start_job("dinodiag-curve-", command)


def read_curve(job: Path, now: float | None = None) -> CurveStatus:
    state: JobState = read_job(job, timeout=TIMEOUT_S, now=now)
    last = state.last
    total = next((int(e["total"]) for e in state.events if "total" in e), None)
    frame = pd.DataFrame(state.result) if state.state == "done" else None
    return CurveStatus(
        state.state,
        int(last.get("done") or 0),
        total,
        str(last.get("label") or ""),
        state.elapsed_s,
        frame=frame,
        error=state.error,
    )


def main(argv: list[str] | None = None) -> int:
    from dinodiag.runs import checkpoint_eval as ce
    from dinodiag.runs.dinov2_run import open_run

    parser = argparse.ArgumentParser(prog="python -m dinodiag.runs.checkpoint_curve")
    parser.add_argument("run_dir")
    parser.add_argument("--data", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--launch", type=int, default=None)
    parser.add_argument("--job", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        run = open_run(args.run_dir, launch=args.launch)
        bank, test = EVAL_IMAGES
        data = ce.open_eval_data(args.data, bank_max=bank, test_max=test, seed=args.seed)
        report(args.job, "opened", total=len(run.checkpoints), done=0)

        def progress(i: int, n: int, checkpoint: ce.CheckpointFile) -> None:
            report(args.job, "checkpoint", total=n, done=i, label=checkpoint.label)

        results = ce.evaluate_checkpoints(run.checkpoints, data, progress=progress)
    except DinodiagError as exc:
        finish(args.job, error=str(exc))
        return 2
    frame = ce.knn_frame(results)
    finish(args.job, result=frame.to_dict(orient="records"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
