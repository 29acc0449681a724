"""The training loop of a set-up run: steps, k-NN evaluations, checkpoints, metrics rows and
status, until the steps, the time budget or a stop request end it."""

from __future__ import annotations

import time

import torch

from dinodiag.train import checkpoint as ckpt
from dinodiag.train import distributed
from dinodiag.train.diagnostics import detect_alerts
from dinodiag.train.progress import format_progress
from dinodiag.train.run_setup import start_stream
from dinodiag.train.run_state import RunState
from dinodiag.train.runtime import (
    peak_memory_mb,
)
from dinodiag.train.step import train_step


def time_up(run: RunState) -> bool:
    limit = run.config.run.max_seconds
    if limit is None or not run.rt.is_main:
        return False
    reserve = (run.step_seconds or 0.0) + 1.0  # the next step, the checkpoint
    if run.evaluator is not None:
        reserve += run.evaluator.last_seconds * 1.2  # the final evaluation
    return run.writer.elapsed() + reserve >= limit


def schedule_index(run: RunState) -> int:
    """The schedule iteration of the next step: the step count, or for a timed run the
    fraction of the time budget used times the planned steps, so that the lr decay and the
    momentum ramp end at the time limit whatever the speed (the same on every process)."""
    if not run.timed():
        return run.step
    index = 0
    if run.rt.is_main:
        limit = float(run.config.run.max_seconds or 0.0)
        eval_seconds = run.evaluator.last_seconds if run.evaluator is not None else 0.0
        budget = max(1e-6, limit - run.train_start - 1.2 * eval_seconds - 2.0)
        fraction = (run.writer.elapsed() - run.train_start) / budget
        index = max(run.step, int(fraction * run.planned_steps))  # never backwards
    if run.rt.world_size > 1:
        flag = torch.tensor([index], device=run.rt.device)
        index = int(distributed.all_reduce_max(flag).item())
    return min(index, run.planned_steps - 1)


def evaluate(run: RunState) -> None:
    """k-NN on rank 0 (the others wait); step 0 is the random-init baseline (computed in
    a thread during the set-up: :class:`BackgroundEvaluation`)."""
    if run.evaluator is not None:
        if run.baseline is not None:
            result, run.baseline = run.baseline.take(), None
        else:
            result = run.evaluator.evaluate(run.nets.teacher.backbone)
        run.knn_test = int(result["knn_test"])
        run.writer.log("eval", run.step, run.epoch(), **result)
        run.knn["knn_top1"] = result["knn_top1"]
        if run.knn["knn_top1_start"] is None and run.step == 0:
            run.knn["knn_top1_start"] = result["knn_top1"]
        run.say(
            f"step {run.step}: k-NN top-1 {result['knn_top1']:.2f}% top-5 "
            f"{result['knn_top5']:.2f}% ({result['eval_seconds']:.1f} s)"
        )
        run.update_status(f"k-NN top-1 {result['knn_top1']:.2f}% at step {run.step}")
    run.last_eval_step = run.step
    distributed.barrier()


def save(run: RunState) -> None:
    """Write the checkpoint (rank 0): :class:`RunDirError` when it cannot be written."""
    if run.rt.is_main:
        extra = {
            **run.knn,
            "last_eval_step": run.last_eval_step,
            "train_start": run.train_start,
        }
        ckpt.save_checkpoint(
            run.run_dir,
            step=run.step,
            epoch=run.epoch(),
            elapsed=run.writer.elapsed(),
            student=run.nets.student,
            teacher=run.nets.teacher,
            optimizer=run.optimizer,
            dino_loss=run.losses.dino,
            ibot_loss=run.losses.ibot,
            config=run.config.to_dict(),
            extra=extra,
        )
        run.saved_step = run.step
        run.writer.update(checkpoint_step=run.step)
    run.last_save = time.monotonic()


def checkpoint_due(run: RunState) -> bool:
    """Every ``checkpoint_every`` steps; and after this session's first step, then every
    ``checkpoint_seconds``, so that a kill (SIGKILL, out of memory) loses little work and
    a run directory that cannot take a checkpoint fails at the first step, not the last."""
    cfg = run.config.run
    if cfg.checkpoint_every and run.step % cfg.checkpoint_every == 0:
        return True
    if not cfg.checkpoint_seconds:
        return False
    return run.last_save is None or (time.monotonic() - run.last_save >= cfg.checkpoint_seconds)


def log_train(run: RunState, values: dict[str, float], images: int, seconds: float) -> None:
    values = {
        **values,
        "img_per_s": images / max(seconds, 1e-9),
        "peak_mem_mb": peak_memory_mb(run.rt.device),
    }
    run.writer.log("train", run.step, run.epoch(), **values)
    alerts = detect_alerts(values, run.config.model.num_prototypes, run.step)
    codes = {a["code"] for a in alerts}
    for alert in alerts:
        if alert["code"] not in run.active_alerts:  # new alerts only, not every row
            run.event(alert["code"], alert["message"], level=alert["level"])
    run.active_alerts = codes
    run.say(
        format_progress(
            run.config.name,
            run.step,
            run.shown_total(),
            run.epoch(),
            values,
            run.knn,
            run.writer.elapsed(),
            run.eta(),
        )
    )
    run.update_status(f"training: step {run.step} of {run.shown_total()}")


def log_due(run: RunState, step: int) -> bool:
    """A metrics row after every step up to ``log_first_steps``, then every ``log_every``
    steps, and after the last one."""
    cfg = run.config.run
    return step <= cfg.log_first_steps or step % cfg.log_every == 0 or step == run.total_steps


def train(run: RunState) -> tuple[str, str]:
    cfg = run.config.run
    if run.last_eval_step is None and run.step == 0:
        evaluate(run)
    if run.step == 0:
        run.train_start = run.writer.elapsed()
        if run.timed():
            run.event(
                "timed_schedules",
                f"the schedules follow the clock: the lr decay and "
                f"the momentum ramp end at {cfg.max_seconds:g} s, after as many of the "
                f"{run.planned_steps} planned steps as fit",
            )
    stop = run.stop
    assert stop is not None
    run.update_status(f"training: step {run.step} of {run.shown_total()}")
    if run.stream is None:
        start_stream(run)
    stream = run.stream
    assert stream is not None
    world_batch = run.config.data.batch_size * run.rt.world_size
    reason, images, t_log = None, 0, time.monotonic()
    while run.step < run.total_steps:
        reason = stop.check(time_up(run))
        if reason is not None:
            break
        t_step = time.monotonic()
        _, batch = next(stream)
        log_now = log_due(run, run.step + 1)
        schedule = run.schedules.at(schedule_index(run))
        values = train_step(run.modules, batch, schedule, run.step + 1, diagnostics=log_now)
        run.step += 1
        images += world_batch
        took = time.monotonic() - t_step
        average = run.step_seconds
        run.step_seconds = took if average is None else 0.9 * average + 0.1 * took
        if run.step == 1:  # how long the set-up took, in the run's own record
            before = run.writer.elapsed() - took
            run.event(
                "first_step",
                f"first step after {before:.1f} s of set-up (imports, data, networks, "
                f"step-0 k-NN); it took {took:.2f} s",
                setup_seconds=round(before, 3),
            )
        if log_now:
            values.update(stream.window())  # data / iter / augment time, what was sampled
            log_train(run, values, images, time.monotonic() - t_log)
        if cfg.eval_every and run.step % cfg.eval_every == 0:
            evaluate(run)
        if run.step < run.total_steps and checkpoint_due(run):
            save(run)  # the last step's checkpoint is written after the loop
        if log_now or run.last_eval_step == run.step:
            images, t_log = 0, time.monotonic()
        if run.on_step is not None:
            run.on_step(run.step)
    if reason == "stop":
        return "stopped", f"stopped at step {run.step} ({stop.local_reason() or 'requested'})"
    if cfg.eval_every and run.last_eval_step != run.step:
        evaluate(run)
    if reason == "time" and run.timed():
        run.total_steps = run.step  # the schedules ran to their end on the clock
        return "finished", (
            f"time limit of {cfg.max_seconds:g} s reached after {run.step} "
            "steps; the schedules followed the clock to their end"
        )
    if reason == "time":
        return "finished", (
            f"time limit of {cfg.max_seconds:g} s reached at step {run.step} of {run.total_steps}"
        )
    return "finished", f"finished {run.step} steps"
