"""The training run, set up in named stages like DINO's ``main_dino``: run directory, data,
networks, losses, optimizer, schedules, resume, train.

    from dinodiag.train import engine, presets
    result = engine.run_training(presets.get_train_preset("cpu-demo").config, "runs/demo")
    result.state, result.step, result.knn_top1

Only rank 0 writes the run directory (see :mod:`dinodiag.train.rundir` for the contract), and
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
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from dinodiag.augment.config import config_from_dict, to_dict
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.train import checkpoint as ckpt
from dinodiag.train import distributed
from dinodiag.train.builders import build_losses, build_networks, build_optimizer
from dinodiag.train.config import TrainConfig
from dinodiag.train.data import (
    CACHE_BYTES,
    BatchStream,
    CachedImages,
    build_run_loader,
    open_train_set,
)
from dinodiag.train.device_batches import (
    CPU_PATH_NO_CACHE,
    BatchFeed,
    augments_on_device,
    build_run_device_loader,
    describe_augmentation,
)
from dinodiag.train.diagnostics import detect_alerts
from dinodiag.train.eval.background import BackgroundEvaluation
from dinodiag.train.eval.device_eval import on_device
from dinodiag.train.eval.evaluator import build_evaluator
from dinodiag.train.pipelines import (
    BroughtSpec,
    RunPipeline,
    check_unchanged,
    resolve_run_pipeline,
)
from dinodiag.train.progress import format_progress
from dinodiag.train.run_lock import RunDirError
from dinodiag.train.run_writer import RunWriter, load_run_config
from dinodiag.train.rundir import CHECKPOINT_FILE, STATUS_FILE, clear_stop
from dinodiag.train.runtime import (
    StopControl,
    out_of_memory_message,
    peak_memory_mb,
    setup_runtime,
    teardown_runtime,
)
from dinodiag.train.schedules import Schedules
from dinodiag.train.step import NonFiniteLossError, StepModules, train_step


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


class _Run:
    """State shared by the stages of one run."""

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
        self.allow_pipeline_change = allow_pipeline_change  # resume a changed brought pipeline
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

    # ------------------------------------------------------------------ stages
    def stage_runtime(self) -> None:
        self.rt = setup_runtime(self.config.run)
        self.writer = RunWriter(self.run_dir, enabled=self.rt.is_main)
        self.writer.set_time_offset(self.setup_age())

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

    def stage_run_dir(self) -> None:
        """Take the run directory (its lock: one trainer per directory, refused naming the
        other's pid), refuse to overwrite a run; on resume read its config and checkpoint."""
        if self.rt.is_main:
            warning = self.writer.claim()
            if warning is not None:
                self.event("lock_unavailable", warning, level="warning")
            clear_stop(self.run_dir)  # a request of an earlier session
        has_run = (self.run_dir / STATUS_FILE).exists() or ckpt.checkpoint_path(
            self.run_dir
        ).exists()
        if has_run and not self.resume:
            raise TrainingError(
                f"{self.run_dir} already holds a run: continue it with --resume, or give a new "
                "--run-dir (or delete the old one)."
            )
        if self.resume:
            self.state = ckpt.load_checkpoint(self.run_dir)
            self.saved_config = load_run_config(self.run_dir)
            self.step = self.state["step"]
            self.saved_step = self.step
            self.writer.set_time_offset(self.state["elapsed"] + self.setup_age())
        self.stop = StopControl(self.run_dir, self.rt)

    def stage_open(self) -> None:
        """Every input is valid: write the run directory (status "running", config.json, the
        events held since set-up began; on resume drop the rows after the checkpoint)."""
        trimmed = self.writer.drop_metrics_after(self.step) if self.resume else None
        self.writer.open()
        self.opened = True
        self.writer.status(
            "running",
            self.step,
            "setting up",
            started=time.time(),
            device=self.rt.describe(),
            world_size=self.rt.world_size,
            preset=self.config.name,
            checkpoint_step=self.saved_step,
            **self.knn,
        )
        saved = {**self.config.to_dict(), "pipeline": to_dict(self.pipeline)}
        brought = self.run_pipeline.record()
        if brought is not None:
            saved["brought_pipeline"] = brought
        self.writer.write_config({**saved, "resolved": self.resolved})
        if self.resume:
            self.event(
                "resumed",
                f"resumed from the checkpoint at step {self.step}"
                + (trimmed.sentence() if trimmed else ""),
                level="warning" if trimmed and trimmed.unreadable else "info",
                dropped_rows=trimmed.after if trimmed else 0,
                unreadable_lines=trimmed.unreadable if trimmed else [],
            )

    def stage_data(self) -> None:
        cfg, rt = self.config, self.rt
        if cfg.optim.koleo_weight > 0 and cfg.data.batch_size < 2:
            raise TrainingError(
                f"KoLeo needs a batch of at least 2 images per process (--batch-size is "
                f"{cfg.data.batch_size}): at 1 it is inf, then NaN. Raise --batch-size or set "
                "--koleo-weight 0."
            )
        self.train_set = open_train_set(cfg)
        self.run_pipeline = self.resolve_pipeline()
        self.pipeline = self.run_pipeline.config
        device_views = augments_on_device(cfg.data.augment_device, rt.device)
        if device_views and self.run_pipeline.brought is not None:
            device_views = self.brought_on_the_cpu(cfg.data.augment_device)
        self.augment = None  # on-device augmentation (dinodiag.train.device_batches)
        if device_views:
            feed = build_run_device_loader(
                cfg, self.train_set, self.pipeline, rt.world_size, rt.rank, rt.device
            )
            self.loader, self.sampler, self.train_set = feed.loader, feed.sampler, feed.dataset
            self.augment, workers = feed.augment, feed.workers
            for note in feed.notes:
                self.event("decode_cache", note)
        else:
            self.train_set = CachedImages(self.train_set, CACHE_BYTES)
            self.loader, self.sampler, workers = build_run_loader(
                cfg,
                self.train_set,
                self.run_pipeline,
                rt.world_size,
                rt.rank,
                rt.device.type == "cuda",
            )
            if cfg.data.decode_cache_gb > 0:
                self.event("decode_cache", CPU_PATH_NO_CACHE, level="warning")
        self.steps_per_epoch = len(self.sampler)
        self.schedule_epoch = cfg.run.epoch_length or self.steps_per_epoch  # DINOv2: 1250
        full = max(1, round(cfg.run.epochs * self.schedule_epoch))
        self.total_steps = full if cfg.run.max_steps is None else min(full, cfg.run.max_steps)
        self.planned_steps = full if cfg.run.keep_full_schedules else self.total_steps
        self.evaluator = None
        if rt.is_main and cfg.run.eval_every > 0:
            self.evaluator, reason = build_evaluator(
                self.train_set,
                cfg.data,
                self.pipeline,
                seed=cfg.run.seed,
                device=rt.device,
                autocast_dtype=rt.autocast_dtype,
                workers=min(workers, 4),
            )
            if self.evaluator is None:
                self.event("knn_skipped", reason)
            elif self.augment is not None:  # the k-NN centre crops on the device too
                self.evaluator = on_device(self.evaluator, self.pipeline)

    def brought_on_the_cpu(self, requested: str) -> bool:
        """Your own code runs in the loader workers, never on the device (the device backend
        draws dinodiag's recipe): with ``auto`` the run goes on with the CPU path and says so;
        a device asked for by name is refused (False: the CPU path)."""
        if requested.strip().lower() != "auto":
            raise TrainingError(
                f"--augment-device {requested} cannot run your own pipeline "
                f"({self.run_pipeline.label}): the on-device backend makes dinodiag's recipes "
                "only. Your code runs in the DataLoader workers: use --augment-device cpu "
                "(or auto), or train a recipe (a preset or a config file) on the device."
            )
        self.event(
            "augment_device",
            f"your own pipeline ({self.run_pipeline.label}) runs in the DataLoader workers: "
            "the on-device augmentation makes dinodiag's recipes only",
        )
        return False

    def resolve_pipeline(self) -> RunPipeline:
        """The pipeline of the run: on resume the one it started with (a brought pipeline's
        file must be unchanged, unless allowed), else ``data.pipeline``."""
        saved = self.saved_config or {}
        if saved.get("brought_pipeline"):
            stored = BroughtSpec.from_dict(saved["brought_pipeline"])
            spec, changed = check_unchanged(stored, self.allow_pipeline_change)
            if changed is not None:
                self.event("pipeline_changed", changed, level="warning")
            return resolve_run_pipeline(self.config, self.train_set, spec)
        if saved.get("pipeline"):
            return RunPipeline(config_from_dict(saved["pipeline"]))
        return resolve_run_pipeline(self.config, self.train_set)

    def start_stream(self) -> None:
        """Start the loader's workers (they prefetch from now on) and, on a fresh run, the
        step-0 k-NN in a thread. Workers are forked first: never fork beside a thread."""
        batches = BatchStream(self.loader, self.sampler, self.step, self.steps_per_epoch)
        # Timed, and on the device backend augmented on the device (device_batches.BatchFeed).
        self.stream = BatchFeed(batches, self.augment)
        if self.evaluator is not None and not self.resume:
            self.baseline = BackgroundEvaluation(self.evaluator, self.nets.teacher.backbone)
            self.baseline.start()

    def stage_networks(self) -> None:
        torch.manual_seed(self.config.run.seed)  # the same initial weights on every process
        self.nets = build_networks(self.config, self.pipeline, self.rt.device)
        torch.manual_seed(self.config.run.seed + self.rt.rank)
        if self.config.optim.ibot_weight > 0 and not self.nets.ibot:
            self.event(
                "ibot_off",
                f"the iBOT loss is off: {self.config.model.arch} has no patch "
                "tokens (or the mask probability is 0); only DINO + KoLeo train it",
            )
        self.student_call: Any = self.nets.student
        self.teacher_call: Any = self.nets.teacher
        if self.rt.world_size > 1:
            ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
            self.student_call = DistributedDataParallel(self.nets.student, device_ids=ids)
        if self.config.run.compile:
            self.student_call = torch.compile(self.student_call)
            self.teacher_call = torch.compile(self.teacher_call)
        self.start_stream()

    def stage_losses_optimizer_schedules(self) -> None:
        cfg = self.config
        self.losses = build_losses(cfg, self.rt.device)
        self.optimizer = build_optimizer(cfg, self.nets.student)
        global_batch = cfg.data.batch_size * self.rt.world_size
        self.schedules = Schedules(self.planned_steps, self.schedule_epoch, cfg.optim, global_batch)
        self.modules = StepModules(
            student=self.student_call,
            student_net=self.nets.student,
            teacher=self.teacher_call,
            teacher_net=self.nets.teacher,
            losses=self.losses,
            optimizer=self.optimizer,
            optim=cfg.optim,
            ibot=self.nets.ibot,
            device=self.rt.device,
            autocast_dtype=self.rt.autocast_dtype,
        )
        self.resolved = {
            "world_size": self.rt.world_size,
            "device": self.rt.describe(),
            "global_batch_size": global_batch,
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "schedule_steps": self.planned_steps,
            "peak_lr": self.schedules.peak_lr,
            "ibot": self.nets.ibot,
            "augment_device": describe_augmentation(self.augment, self.config.data),
        }

    def stage_resume(self) -> None:
        if self.state is None:
            return
        ckpt.restore(
            self.state,
            student=self.nets.student,
            teacher=self.nets.teacher,
            optimizer=self.optimizer,
            dino_loss=self.losses.dino,
            ibot_loss=self.losses.ibot,
            path=ckpt.checkpoint_path(self.run_dir),
        )
        extra = self.state.get("extra") or {}
        self.knn["knn_top1_start"] = extra.get("knn_top1_start")
        self.knn["knn_top1"] = extra.get("knn_top1")
        self.last_eval_step = extra.get("last_eval_step")
        self.train_start = float(extra.get("train_start", 0.0))
        self.state = None  # free the memory

    # ------------------------------------------------------------------ helpers
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

    def time_up(self) -> bool:
        limit = self.config.run.max_seconds
        if limit is None or not self.rt.is_main:
            return False
        reserve = (self.step_seconds or 0.0) + 1.0  # the next step, the checkpoint
        if self.evaluator is not None:
            reserve += self.evaluator.last_seconds * 1.2  # the final evaluation
        return self.writer.elapsed() + reserve >= limit

    def timed(self) -> bool:
        """Whether the schedules follow the clock (``fit_to_time`` with ``max_seconds``)."""
        return self.config.run.fit_to_time and self.config.run.max_seconds is not None

    def schedule_index(self) -> int:
        """The schedule iteration of the next step: the step count, or for a timed run the
        fraction of the time budget used times the planned steps, so that the lr decay and the
        momentum ramp end at the time limit whatever the speed (the same on every process)."""
        if not self.timed():
            return self.step
        index = 0
        if self.rt.is_main:
            limit = float(self.config.run.max_seconds or 0.0)
            eval_seconds = self.evaluator.last_seconds if self.evaluator is not None else 0.0
            budget = max(1e-6, limit - self.train_start - 1.2 * eval_seconds - 2.0)
            fraction = (self.writer.elapsed() - self.train_start) / budget
            index = max(self.step, int(fraction * self.planned_steps))  # never backwards
        if self.rt.world_size > 1:
            flag = torch.tensor([index], device=self.rt.device)
            index = int(distributed.all_reduce_max(flag).item())
        return min(index, self.planned_steps - 1)

    def evaluate(self) -> None:
        """k-NN on rank 0 (the others wait); step 0 is the random-init baseline (computed in
        a thread during the set-up: :class:`BackgroundEvaluation`)."""
        if self.evaluator is not None:
            if self.baseline is not None:
                result, self.baseline = self.baseline.take(), None
            else:
                result = self.evaluator.evaluate(self.nets.teacher.backbone)
            self.knn_test = int(result["knn_test"])
            self.writer.log("eval", self.step, self.epoch(), **result)
            self.knn["knn_top1"] = result["knn_top1"]
            if self.knn["knn_top1_start"] is None and self.step == 0:
                self.knn["knn_top1_start"] = result["knn_top1"]
            self.say(
                f"step {self.step}: k-NN top-1 {result['knn_top1']:.2f}% top-5 "
                f"{result['knn_top5']:.2f}% ({result['eval_seconds']:.1f} s)"
            )
            self.update_status(f"k-NN top-1 {result['knn_top1']:.2f}% at step {self.step}")
        self.last_eval_step = self.step
        distributed.barrier()

    def save(self) -> None:
        """Write the checkpoint (rank 0): :class:`RunDirError` when it cannot be written."""
        if self.rt.is_main:
            extra = {
                **self.knn,
                "last_eval_step": self.last_eval_step,
                "train_start": self.train_start,
            }
            ckpt.save_checkpoint(
                self.run_dir,
                step=self.step,
                epoch=self.epoch(),
                elapsed=self.writer.elapsed(),
                student=self.nets.student,
                teacher=self.nets.teacher,
                optimizer=self.optimizer,
                dino_loss=self.losses.dino,
                ibot_loss=self.losses.ibot,
                config=self.config.to_dict(),
                extra=extra,
            )
            self.saved_step = self.step
            self.writer.update(checkpoint_step=self.step)
        self.last_save = time.monotonic()

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

    def checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps; and after this session's first step, then every
        ``checkpoint_seconds``, so that a kill (SIGKILL, out of memory) loses little work and
        a run directory that cannot take a checkpoint fails at the first step, not the last."""
        cfg = self.config.run
        if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
            return True
        if not cfg.checkpoint_seconds:
            return False
        return self.last_save is None or (
            time.monotonic() - self.last_save >= cfg.checkpoint_seconds
        )

    def log_train(self, values: dict[str, float], images: int, seconds: float) -> None:
        values = {
            **values,
            "img_per_s": images / max(seconds, 1e-9),
            "peak_mem_mb": peak_memory_mb(self.rt.device),
        }
        self.writer.log("train", self.step, self.epoch(), **values)
        alerts = detect_alerts(values, self.config.model.num_prototypes, self.step)
        codes = {a["code"] for a in alerts}
        for alert in alerts:
            if alert["code"] not in self.active_alerts:  # new alerts only, not every row
                self.event(alert["code"], alert["message"], level=alert["level"])
        self.active_alerts = codes
        self.say(
            format_progress(
                self.config.name,
                self.step,
                self.shown_total(),
                self.epoch(),
                values,
                self.knn,
                self.writer.elapsed(),
                self.eta(),
            )
        )
        self.update_status(f"training: step {self.step} of {self.shown_total()}")

    def log_due(self, step: int) -> bool:
        """A metrics row after every step up to ``log_first_steps``, then every ``log_every``
        steps, and after the last one."""
        cfg = self.config.run
        return step <= cfg.log_first_steps or step % cfg.log_every == 0 or step == self.total_steps

    # ------------------------------------------------------------------ the loop
    def train(self) -> tuple[str, str]:
        cfg = self.config.run
        if self.last_eval_step is None and self.step == 0:
            self.evaluate()
        if self.step == 0:
            self.train_start = self.writer.elapsed()
            if self.timed():
                self.event(
                    "timed_schedules",
                    f"the schedules follow the clock: the lr decay and "
                    f"the momentum ramp end at {cfg.max_seconds:g} s, after as many of the "
                    f"{self.planned_steps} planned steps as fit",
                )
        stop = self.stop
        assert stop is not None
        self.update_status(f"training: step {self.step} of {self.shown_total()}")
        if self.stream is None:
            self.start_stream()
        stream = self.stream
        assert stream is not None
        world_batch = self.config.data.batch_size * self.rt.world_size
        reason, images, t_log = None, 0, time.monotonic()
        while self.step < self.total_steps:
            reason = stop.check(self.time_up())
            if reason is not None:
                break
            t_step = time.monotonic()
            _, batch = next(stream)
            log_now = self.log_due(self.step + 1)
            schedule = self.schedules.at(self.schedule_index())
            values = train_step(self.modules, batch, schedule, self.step + 1, diagnostics=log_now)
            self.step += 1
            images += world_batch
            took = time.monotonic() - t_step
            average = self.step_seconds
            self.step_seconds = took if average is None else 0.9 * average + 0.1 * took
            if self.step == 1:  # how long the set-up took, in the run's own record
                before = self.writer.elapsed() - took
                self.event(
                    "first_step",
                    f"first step after {before:.1f} s of set-up (imports, data, networks, "
                    f"step-0 k-NN); it took {took:.2f} s",
                    setup_seconds=round(before, 3),
                )
            if log_now:
                values.update(stream.window())  # data / iter / augment time, what was sampled
                self.log_train(values, images, time.monotonic() - t_log)
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                self.evaluate()
            if self.step < self.total_steps and self.checkpoint_due():
                self.save()  # the last step's checkpoint is written after the loop
            if log_now or self.last_eval_step == self.step:
                images, t_log = 0, time.monotonic()
            if self.on_step is not None:
                self.on_step(self.step)
        if reason == "stop":
            return "stopped", f"stopped at step {self.step} ({stop.local_reason() or 'requested'})"
        if cfg.eval_every and self.last_eval_step != self.step:
            self.evaluate()
        if reason == "time" and self.timed():
            self.total_steps = self.step  # the schedules ran to their end on the clock
            return "finished", (
                f"time limit of {cfg.max_seconds:g} s reached after {self.step} "
                "steps; the schedules followed the clock to their end"
            )
        if reason == "time":
            return "finished", (
                f"time limit of {cfg.max_seconds:g} s reached at step "
                f"{self.step} of {self.total_steps}"
            )
        return "finished", f"finished {self.step} steps"


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
    ``allow_pipeline_change``: resume a brought pipeline whose file changed (else refused).
    """
    run = _Run(config, Path(run_dir), resume, progress, on_step, started, allow_pipeline_change)
    state, message = "failed", ""
    error: BaseException | None = None  # what ended the run early
    try:
        run.stage_runtime()
        for stage in (
            run.stage_run_dir,
            run.stage_data,
            run.stage_networks,
            run.stage_losses_optimizer_schedules,
            run.stage_resume,
            run.stage_open,
        ):
            run.setup(stage)
        ended = run.train()
        run.save()  # a failure here ends the run "failed", not "finished"
        state, message = ended
    except NonFiniteLossError as exc:
        message = str(exc)
        with contextlib.suppress(DinodiagError):  # the directory may refuse this row too
            run.event("nonfinite_loss", message, level="error", term=exc.term, failed_step=exc.step)
    except torch.OutOfMemoryError as exc:
        message = out_of_memory_message(exc, run.step, config, getattr(run, "rt", None))
        if hasattr(run, "writer"):  # an event row; the console line comes below
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
    if state == "failed" and not refused and hasattr(run, "rt"):
        run.say(f"[error] {message}")
    if run.opened:
        _final_status(run, state, message)
    elif hasattr(run, "writer"):
        run.writer.abandon()  # refused (or crashed) during set-up: leave no half-made run
    if hasattr(run, "rt"):
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


def _final_status(run: _Run, state: str, message: str) -> None:
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
