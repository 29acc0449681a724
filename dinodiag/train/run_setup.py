"""The set-up of a training run in named stages, like DINO's ``main_dino``: runtime, run
directory, data, networks, losses / optimizer / schedules, resume, open. Each stage reads and
sets attributes of the :class:`~dinodiag.train.run_state.RunState`; a bad input raises
(:class:`~dinodiag.errors.DinodiagError`) before :func:`stage_open` writes anything. Set-up
overlaps what it can: the loader's workers start and the step-0 k-NN runs in a thread while
the losses and the optimizer are built."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from dinodiag.augment.config import config_from_dict, to_dict
from dinodiag.errors import TrainingError
from dinodiag.rundir import STATUS_FILE, clear_stop
from dinodiag.rundir.writer import RunWriter, load_run_config
from dinodiag.train import checkpoint as ckpt
from dinodiag.train.augment_backend import (
    CPU_PATH_NO_CACHE,
    augments_on_device,
    describe_augmentation,
)
from dinodiag.train.batch_feed import BatchFeed
from dinodiag.train.builders import build_losses, build_networks, build_optimizer
from dinodiag.train.data import (
    CACHE_BYTES,
    BatchStream,
    CachedImages,
    build_run_loader,
)
from dinodiag.train.device_batches import build_run_device_loader
from dinodiag.train.eval.background import BackgroundEvaluation
from dinodiag.train.eval.device_eval import on_device
from dinodiag.train.eval.evaluator import build_evaluator
from dinodiag.train.pipelines import (
    OwnSpec,
    RunPipeline,
    check_unchanged,
    resolve_run_pipeline,
)
from dinodiag.train.run_state import RunState
from dinodiag.train.runtime import (
    StopControl,
    setup_runtime,
)
from dinodiag.train.schedules import Schedules
from dinodiag.train.step import StepModules
from dinodiag.train.training_data import open_train_set


def stage_runtime(run: RunState) -> None:
    run.rt = setup_runtime(run.config.run)
    run.writer = RunWriter(run.run_dir, enabled=run.rt.is_main)
    run.writer.set_time_offset(run.setup_age())


def stage_run_dir(run: RunState) -> None:
    """Take the run directory (its lock: one trainer per directory, refused naming the
    other's pid), refuse to overwrite a run; on resume read its config and checkpoint."""
    if run.rt.is_main:
        warning = run.writer.claim()
        if warning is not None:
            run.event("lock_unavailable", warning, level="warning")
        clear_stop(run.run_dir)  # a request of an earlier session
    has_run = (run.run_dir / STATUS_FILE).exists() or ckpt.checkpoint_path(run.run_dir).exists()
    if has_run and not run.resume:
        raise TrainingError(
            f"{run.run_dir} already holds a run: continue it with --resume, or give a new "
            "--run-dir (or delete the old one)."
        )
    if run.resume:
        run.state = ckpt.load_checkpoint(run.run_dir)
        run.saved_config = load_run_config(run.run_dir)
        run.step = run.state["step"]
        run.saved_step = run.step
        run.writer.set_time_offset(run.state["elapsed"] + run.setup_age())
    run.stop = StopControl(run.run_dir, run.rt)


def stage_open(run: RunState) -> None:
    """Every input is valid: write the run directory (status "running", config.json, the
    events held since set-up began; on resume drop the rows after the checkpoint)."""
    trimmed = run.writer.drop_metrics_after(run.step) if run.resume else None
    run.writer.open()
    run.opened = True
    run.writer.status(
        "running",
        run.step,
        "setting up",
        started=time.time(),
        device=run.rt.describe(),
        world_size=run.rt.world_size,
        preset=run.config.name,
        checkpoint_step=run.saved_step,
        **run.knn,
    )
    saved = {**run.config.to_dict(), "pipeline": to_dict(run.pipeline)}
    own = run.run_pipeline.record()
    if own is not None:
        saved["own_pipeline"] = own
    run.writer.write_config({**saved, "resolved": run.resolved})
    if run.resume:
        run.event(
            "resumed",
            f"resumed from the checkpoint at step {run.step}"
            + (trimmed.sentence() if trimmed else ""),
            level="warning" if trimmed and trimmed.unreadable else "info",
            dropped_rows=trimmed.after if trimmed else 0,
            unreadable_lines=trimmed.unreadable if trimmed else [],
        )


def stage_data(run: RunState) -> None:
    cfg, rt = run.config, run.rt
    run.train_set = open_train_set(cfg)
    run.run_pipeline = resolve_pipeline(run)
    run.pipeline = run.run_pipeline.config
    device_views = augments_on_device(cfg.data.augment_device, rt.device)
    if device_views and run.run_pipeline.own is not None:
        device_views = own_on_the_cpu(run, cfg.data.augment_device)
    run.augment = None  # on-device augmentation (dinodiag.train.device_augment)
    if device_views:
        feed = build_run_device_loader(
            cfg, run.train_set, run.pipeline, rt.world_size, rt.rank, rt.device
        )
        run.loader, run.sampler, run.train_set = feed.loader, feed.sampler, feed.dataset
        run.augment, workers = feed.augment, feed.workers
        for note in feed.notes:
            run.event("decode_cache", note)
    else:
        run.train_set = CachedImages(run.train_set, CACHE_BYTES)
        run.loader, run.sampler, workers = build_run_loader(
            cfg,
            run.train_set,
            run.run_pipeline,
            rt.world_size,
            rt.rank,
            rt.device.type == "cuda",
        )
        if cfg.data.decode_cache_gb > 0:
            run.event("decode_cache", CPU_PATH_NO_CACHE, level="warning")
    run.steps_per_epoch = len(run.sampler)
    run.schedule_epoch = cfg.run.epoch_length or run.steps_per_epoch  # DINOv2: 1250
    full = max(1, round(cfg.run.epochs * run.schedule_epoch))
    run.total_steps = full if cfg.run.max_steps is None else min(full, cfg.run.max_steps)
    run.planned_steps = full if cfg.run.keep_full_schedules else run.total_steps
    run.evaluator = None
    if rt.is_main and cfg.run.eval_every > 0:
        run.evaluator, reason = build_evaluator(
            run.train_set,
            cfg.data,
            run.pipeline,
            seed=cfg.run.seed,
            device=rt.device,
            autocast_dtype=rt.autocast_dtype,
            workers=min(workers, 4),
        )
        if run.evaluator is None:
            run.event("knn_skipped", reason)
        elif run.augment is not None:  # the k-NN centre crops on the device too
            run.evaluator = on_device(run.evaluator, run.pipeline)


def own_on_the_cpu(run: RunState, requested: str) -> bool:
    """Your own code runs in the loader workers, never on the device (the device backend
    draws dinodiag's recipe): with ``auto`` the run goes on with the CPU path and says so;
    a device asked for by name is refused (False: the CPU path)."""
    if requested.strip().lower() != "auto":
        raise TrainingError(
            f"--augment-device {requested} cannot run your own pipeline "
            f"({run.run_pipeline.label}): the on-device backend makes dinodiag's recipes "
            "only. Your code runs in the DataLoader workers: use --augment-device cpu "
            "(or auto), or train a recipe (a preset or a config file) on the device."
        )
    run.event(
        "augment_device",
        f"your own pipeline ({run.run_pipeline.label}) runs in the DataLoader workers: "
        "the on-device augmentation makes dinodiag's recipes only",
    )
    return False


def resolve_pipeline(run: RunState) -> RunPipeline:
    """The pipeline of the run: on resume the one it started with (your own pipeline's
    file must be unchanged, unless allowed), else ``data.pipeline``."""
    saved = run.saved_config or {}
    own = saved.get("own_pipeline") or saved.get("brought_pipeline")  # the key before 0.2
    if own:
        stored = OwnSpec.from_dict(own)
        spec, changed = check_unchanged(stored, run.allow_pipeline_change)
        if changed is not None:
            run.event("pipeline_changed", changed, level="warning")
        return resolve_run_pipeline(run.config, run.train_set, spec)
    if saved.get("pipeline"):
        return RunPipeline(config_from_dict(saved["pipeline"]))
    return resolve_run_pipeline(run.config, run.train_set)


def start_stream(run: RunState) -> None:
    """Start the loader's workers (they prefetch from now on) and, on a fresh run, the
    step-0 k-NN in a thread. Workers are forked first: never fork beside a thread."""
    batches = BatchStream(run.loader, run.sampler, run.step, run.steps_per_epoch)
    # Timed, and on the device backend augmented on the device (batch_feed.BatchFeed).
    run.stream = BatchFeed(batches, run.augment)
    if run.evaluator is not None and not run.resume:
        run.baseline = BackgroundEvaluation(run.evaluator, run.nets.teacher.backbone)
        run.baseline.start()


def stage_networks(run: RunState) -> None:
    torch.manual_seed(run.config.run.seed)  # the same initial weights on every process
    run.nets = build_networks(run.config, run.pipeline, run.rt.device)
    torch.manual_seed(run.config.run.seed + run.rt.rank)
    if run.config.optim.ibot_weight > 0 and not run.nets.ibot:
        run.event(
            "ibot_off",
            f"the iBOT loss is off: {run.config.model.arch} has no patch "
            "tokens (or the mask probability is 0); only DINO + KoLeo train it",
        )
    run.student_call: Any = run.nets.student
    run.teacher_call: Any = run.nets.teacher
    if run.rt.world_size > 1:
        ids = [run.rt.device.index] if run.rt.device.type == "cuda" else None
        run.student_call = DistributedDataParallel(run.nets.student, device_ids=ids)
    if run.config.run.compile:
        run.student_call = torch.compile(run.student_call)
        run.teacher_call = torch.compile(run.teacher_call)
    start_stream(run)


def stage_losses_optimizer_schedules(run: RunState) -> None:
    cfg = run.config
    run.losses = build_losses(cfg, run.rt.device)
    run.optimizer = build_optimizer(cfg, run.nets.student)
    global_batch = cfg.data.batch_size * run.rt.world_size
    run.schedules = Schedules(run.planned_steps, run.schedule_epoch, cfg.optim, global_batch)
    run.modules = StepModules(
        student=run.student_call,
        student_net=run.nets.student,
        teacher=run.teacher_call,
        teacher_net=run.nets.teacher,
        losses=run.losses,
        optimizer=run.optimizer,
        optim=cfg.optim,
        ibot=run.nets.ibot,
        device=run.rt.device,
        autocast_dtype=run.rt.autocast_dtype,
    )
    run.resolved = {
        "world_size": run.rt.world_size,
        "device": run.rt.describe(),
        "global_batch_size": global_batch,
        "steps_per_epoch": run.steps_per_epoch,
        "total_steps": run.total_steps,
        "schedule_steps": run.planned_steps,
        "peak_lr": run.schedules.peak_lr,
        "ibot": run.nets.ibot,
        "augment_device": describe_augmentation(run.augment, run.config.data),
    }


def stage_resume(run: RunState) -> None:
    if run.state is None:
        return
    ckpt.restore(
        run.state,
        student=run.nets.student,
        teacher=run.nets.teacher,
        optimizer=run.optimizer,
        dino_loss=run.losses.dino,
        ibot_loss=run.losses.ibot,
        path=ckpt.checkpoint_path(run.run_dir),
    )
    extra = run.state.get("extra") or {}
    run.knn["knn_top1_start"] = extra.get("knn_top1_start")
    run.knn["knn_top1"] = extra.get("knn_top1")
    run.last_eval_step = extra.get("last_eval_step")
    run.train_start = float(extra.get("train_start", 0.0))
    run.state = None  # free the memory


# The stages after stage_runtime, in order; each is agreed on by every process (RunState.setup).
SETUP_STAGES = (
    stage_run_dir,
    stage_data,
    stage_networks,
    stage_losses_optimizer_schedules,
    stage_resume,
    stage_open,
)
