"""The training run, set up in named stages like DINO's ``main_dino``: run directory, data,
networks, losses, optimizer, schedules, resume, train.

    from dinodiag.train import engine

    from dinodiag.recipe import presets
    result = engine.run_training(presets.get_train_preset("cpu-demo").config, "runs/demo")
    result.state, result.step, result.knn_top1

Only rank 0 writes the run directory (see :mod:`dinodiag.rundir` for the contract), and
only after every input has been checked: it takes the directory's lock first (one trainer per
run directory), and a bad input found during set-up (dataset, pipeline, device, checkpoint,
a second trainer) ends the run "refused" with nothing written (``RunResult.refused``; the CLI
exits 2). Once started, a run ends "finished" (all steps, or the time limit), "stopped" (STOP
file, SIGTERM / SIGINT: checkpoint first) or "failed" (NaN / Inf, out of memory, a run
directory that cannot be written, a crash) with the reason in ``status.json``.

The run's clock (``time`` of every row, ``run.max_seconds``) starts at ``started`` (the CLI
passes its process start), so a time budget holds the imports, the set-up and every k-NN
evaluation. Set-up overlaps what it can: the loader's workers start and the step-0 k-NN runs
in a thread while the losses and the optimizer are built.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from dinodiag.errors import DinodiagError
from dinodiag.recipe.config import TrainConfig
from dinodiag.rundir.lock import RunDirError
from dinodiag.train.loop import save, train
from dinodiag.train.run_setup import SETUP_STAGES, stage_runtime
from dinodiag.train.run_state import RunState
from dinodiag.train.runtime import (
    out_of_memory_message,
    teardown_runtime,
)
from dinodiag.train.step import NonFiniteLossError


@dataclass
class RunResult:
    state: str  # finished | stopped | failed
    step: int  # optimisation steps done
    total_steps: int  # planned steps
    message: str  # why it ended
    run_dir: Path
    knn_top1: float | None = None  # last k-NN top-1 (%)
    knn_top1_start: float | None = None  # k-NN top-1 at step 0 (random init)
    refused: bool = False  # bad input found in set-up: nothing was written (the CLI exits 2)
    knn_test: int | None = None  # held-out images of the k-NN (its noise: binomial on them)

    def summary(self) -> str:
        """The console's last line: the outcome and, with two k-NN points, the change in
        top-1 and whether it is more than the k-NN's noise."""
        line = f"{self.state}: {self.message}"
        if self.knn_top1 is None or self.knn_top1_start is None:
            return line
        from dinodiag.train.eval.knn_noise import judge_change

        change = judge_change(self.knn_top1_start, self.knn_top1, self.knn_test)
        line += (
            f" | k-NN top-1 {self.knn_top1_start:.1f}% at step 0 -> "
            f"{self.knn_top1:.1f}% ({change.describe()}"
        )
        if change.status == "noise":
            line += ": too short to judge, train longer"
        return line + ")"


def run_training(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: Callable[[str], None] | None = print,
    on_step: Callable[[int], None] | None = None,
    started: float | None = None,
    allow_pipeline_change: bool = False,
) -> RunResult:
    """Train (or resume) a run in ``run_dir``; never raises for a failed run: the result and
    ``status.json`` say "failed" with the reason. ``on_step(step)`` is called after each step.

    ``started``: the unix time the run's clock starts from (the CLI gives its process start, so
    ``run.max_seconds`` includes the imports and the set-up); None = now.
    ``allow_pipeline_change``: resume your own pipeline whose file changed (else refused).
    """
    run = RunState(config, Path(run_dir), resume, progress, on_step, started, allow_pipeline_change)
    state, message = "failed", ""
    error: BaseException | None = None  # what ended the run early
    try:
        stage_runtime(run)
        for stage in SETUP_STAGES:
            run.setup(lambda stage=stage: stage(run))
        ended = train(run)
        save(run)  # a failure here ends the run "failed", not "finished"
        state, message = ended
    except NonFiniteLossError as exc:
        message = str(exc)
        with contextlib.suppress(DinodiagError):  # the directory may refuse this row too
            run.event("nonfinite_loss", message, level="error", term=exc.term, failed_step=exc.step)
    except torch.OutOfMemoryError as exc:
        message = out_of_memory_message(exc, run.step, config, run.rt)
        if run.writer is not None:  # an event row; the console line comes below
            with contextlib.suppress(DinodiagError):
                run.writer.log(
                    "event",
                    run.step,
                    run.epoch(),
                    level="error",
                    code="out_of_memory",
                    message=message,
                )
    except RunDirError as exc:  # not writable, disk full, in use by another trainer
        message, error = str(exc), exc
        if run.opened:
            message += run.checkpoint_kept()
    except DinodiagError as exc:
        message, error = str(exc), exc
    except KeyboardInterrupt:
        state = "stopped"
        message = f"interrupted at step {run.step} (second Ctrl-C): the last checkpoint is kept"
    except Exception as exc:  # a bug or an unexpected library error: keep the traceback
        traceback.print_exc()
        message = f"crashed at step {run.step}: {type(exc).__name__}: {exc}"
    # A DinodiagError before the run directory was written is bad input: the run is refused.
    refused = isinstance(error, DinodiagError) and not run.opened
    if run.baseline is not None:  # set-up failed while the step-0 k-NN ran: let it end
        run.baseline.finish()
    run.stream = None  # ends the loader's workers
    if run.stop is not None:
        run.stop.restore()
    if state == "failed" and not refused and run.rt is not None:
        run.say(f"[error] {message}")
    if run.opened:
        _final_status(run, state, message)
    elif run.writer is not None:
        run.writer.abandon()  # refused (or crashed) during set-up: leave no half-made run
    if run.rt is not None:
        teardown_runtime(run.rt)
    return RunResult(
        state,
        run.step,
        run.total_steps,
        message,
        run.run_dir,
        run.knn["knn_top1"],
        run.knn["knn_top1_start"],
        refused,
        run.knn_test,
    )


def _final_status(run: RunState, state: str, message: str) -> None:
    """Write the run's last status and give the directory up; when even that write fails (the
    directory is gone or read-only, the disk is full) the console says why."""
    try:
        run.update_status(message, state=state, final=True)
    except DinodiagError as exc:
        print(
            f"error: the run ended {state} ({message}), and that could not be recorded: {exc}",
            file=sys.stderr,
            flush=True,
        )
    run.writer.close()
