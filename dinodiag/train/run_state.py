"""The state one training run carries through its set-up stages (:mod:`dinodiag.train.run_setup`),
its loop (:mod:`dinodiag.train.loop`) and its outcome (:mod:`dinodiag.train.engine`): every
attribute declared here, None until the stage that sets it has run, and the helpers all three
use (events, status, ETA)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dinodiag.errors import TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.rundir import CHECKPOINT_FILE
from dinodiag.train import distributed
from dinodiag.train.batch_feed import BatchFeed
from dinodiag.train.eval.background import BackgroundEvaluation
from dinodiag.train.runtime import (
    StopControl,
)


class RunState:
    """State shared by the stages, the loop and the outcome of one run."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        resume: bool,
        progress: Callable[[str], None] | None,
        on_step: Callable[[int], None] | None,
        started: float | None = None,
        allow_pipeline_change: bool = False,
    ):
        self.config, self.run_dir, self.resume = config, run_dir, resume
        self.progress, self.on_step = progress, on_step
        self.started = started  # unix time the clock (and the time budget) counts from
        self.allow_pipeline_change = allow_pipeline_change  # resume a changed own pipeline
        self.stream: BatchFeed | None = None  # the training batches (workers started)
        self.baseline: BackgroundEvaluation | None = None  # the step-0 k-NN running in a thread
        self.step, self.total_steps, self.steps_per_epoch = 0, 0, 1
        self.knn: dict[str, float | None] = {"knn_top1": None, "knn_top1_start": None}
        self.last_eval_step: int | None = None
        self.knn_test: int | None = None  # held-out images of the last k-NN
        self.active_alerts: set[str] = set()
        self.step_seconds: float | None = None  # moving average of one step's wall time
        self.train_start = 0.0  # run time (s) when training started (timed schedules)
        self.state: dict[str, Any] | None = None  # the checkpoint being resumed
        self.saved_config: dict[str, Any] | None = None  # config.json of the run resumed
        self.opened = False  # set-up passed: the run directory is written (status on failure)
        self.stop: StopControl | None = None
        self.saved_step: int | None = None  # step of the latest checkpoint on disk
        self.last_save: float | None = None  # monotonic time of this session's last checkpoint
        # Set by the set-up stages (dinodiag.train.run_setup), in this order; None before.
        self.rt: Any = None  # the Runtime: device, rank, world size, precision
        self.writer: Any = None  # the RunWriter of the run directory
        self.train_set: Any = None
        self.run_pipeline: Any = None  # the RunPipeline (your own pipeline's record)
        self.pipeline: Any = None  # its PipelineConfig
        self.augment: Any = None  # on-device augmentation (dinodiag.train.device_augment)
        self.loader: Any = None
        self.sampler: Any = None
        self.schedule_epoch = 1  # steps per schedule epoch (DINOv2: OFFICIAL_EPOCH_LENGTH)
        self.planned_steps = 1  # the steps the schedules are laid out over
        self.evaluator: Any = None  # the k-NN evaluator (rank 0), None when k-NN is off
        self.nets: Any = None  # student, teacher, iBOT flag (dinodiag.train.builders)
        self.student_call: Any = None  # the student as called (DDP, compiled)
        self.teacher_call: Any = None
        self.losses: Any = None
        self.optimizer: Any = None
        self.schedules: Any = None
        self.modules: Any = None  # the StepModules of train_step
        self.resolved: dict[str, Any] = {}  # what the set-up resolved, for config.json

    def setup_age(self) -> float:
        """Seconds since :attr:`started` (the process start, from the CLI): the time budget
        and the ``time`` of every row include the imports and the set-up."""
        return max(0.0, time.time() - self.started) if self.started is not None else 0.0

    def setup(self, stage: Callable[[], None]) -> None:
        """Run one set-up stage, then agree with the other processes (under torchrun) that
        every one of them passed it: a process whose own stage passed raises too when another
        failed, instead of waiting for it forever at the next collective."""
        error: BaseException | None = None
        try:
            stage()
        except Exception as exc:
            error = exc
        if self.rt.world_size > 1:
            flag = torch.tensor([int(error is not None)], device=self.rt.device)
            if int(distributed.all_reduce_max(flag).item()) and error is None:
                error = TrainingError(
                    "another process of this run failed to set up (its message is above); "
                    "this one stops too."
                )
        if error is not None:
            raise error

    def epoch(self) -> float:
        return self.step / self.steps_per_epoch

    def event(self, code: str, message: str, level: str = "info", **extra: Any) -> None:
        self.writer.log(
            "event", self.step, self.epoch(), level=level, code=code, message=message, **extra
        )
        self.say(f"[{level}] {message}")

    def say(self, line: str) -> None:
        if self.rt.is_main and self.progress is not None:
            self.progress(line)

    def shown_total(self) -> int:
        """Planned steps, or for a timed run the steps expected to fit at the current speed."""
        if not self.timed() or self.step_seconds is None:
            return self.total_steps
        left = float(self.config.run.max_seconds or 0.0) - self.writer.elapsed()
        return min(self.total_steps, self.step + max(0, int(left / self.step_seconds)))

    def eta(self) -> float | None:
        if self.step_seconds is None:
            return None
        eta = (self.shown_total() - self.step) * self.step_seconds
        if self.config.run.max_seconds is not None:
            eta = min(eta, max(0.0, self.config.run.max_seconds - self.writer.elapsed()))
        return round(eta, 1)

    def update_status(self, message: str, state: str = "running", final: bool = False) -> None:
        self.writer.status(
            state,
            self.step,
            message,
            final=final,
            total_steps=self.shown_total(),
            epoch=round(self.epoch(), 3),
            eta_s=self.eta(),
            **self.knn,
        )

    def timed(self) -> bool:
        """Whether the schedules follow the clock (``fit_to_time`` with ``max_seconds``)."""
        return self.config.run.fit_to_time and self.config.run.max_seconds is not None

    def checkpoint_kept(self) -> str:
        """What is left to resume from, for the message of a run directory that failed."""
        if self.saved_step is None:
            return " No checkpoint of this run was written: start it again once this is fixed."
        checkpoint = self.run_dir / CHECKPOINT_FILE
        if not checkpoint.is_file():  # the directory was deleted or emptied under the run
            return (
                f" The checkpoint of step {self.saved_step} is gone too ({checkpoint} no longer "
                "exists): nothing is left to resume from; start the run again."
            )
        return (
            f" The checkpoint of step {self.saved_step} is kept: resume from it with --resume "
            "once this is fixed."
        )
