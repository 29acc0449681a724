"""DINOv2's schedules recomputed from a run's resolved config, to hold its log against.

DINOv2's trainer builds every schedule as a ``CosineScheduler`` laid out over
``optim.epochs x train.OFFICIAL_EPOCH_LENGTH`` iterations: ``freeze_iters`` zeros, then a
linear warm-up ``np.linspace(start_warmup_value, base_value, warmup_iters)`` (its last step
at the peak), then ``final + (base - final) / 2 * (1 + cos(pi * i / n))`` over the n remaining
iterations (i = 0 .. n - 1, so the end value is reached one step after the last); past the end
it gives ``final_value``. The run uses:

- lr: peak ``optim.lr`` (= base_lr x sqrt(batch x processes / 1024), written by the trainer),
  warm-up from 0 over ``optim.warmup_epochs``, cosine to ``optim.min_lr``;
- wd: cosine ``optim.weight_decay`` -> ``optim.weight_decay_end``;
- momentum: cosine ``teacher.momentum_teacher`` -> ``teacher.final_momentum_teacher``;
- teacher temperature: warm-up ``teacher.warmup_teacher_temp`` -> ``teacher.teacher_temp``
  over ``teacher.warmup_teacher_temp_epochs``, then constant (not logged by DINOv2);
- last-layer lr: the lr schedule with its first ``optim.freeze_last_layer_epochs`` epochs at 0.

(The curve is :func:`dinodiag.train.schedules.cosine_schedule` in its ``"dinov2"`` layout;
the trainer's own layout is one step apart.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dinodiag.augment.dinov2_config import ResolvedDinov2Config
from dinodiag.train.schedules import cosine_schedule, scaled_lr

SCHEDULE_COLUMNS = ("lr", "wd", "momentum", "teacher_temp", "last_layer_lr")


def _dinov2_curve(
    base: float, final: float, total: int, warmup: int = 0, start_warmup: float = 0.0
) -> np.ndarray:
    return cosine_schedule(base, final, total, warmup, start_warmup, layout="dinov2")


def at(schedule: np.ndarray, final: float, iterations: np.ndarray) -> np.ndarray:
    """``schedule[it]`` for each iteration, ``final`` past the end (as DINOv2 indexes it)."""
    its = np.asarray(iterations, dtype=np.int64)
    out = np.full(its.shape, float(final))
    inside = (its >= 0) & (its < len(schedule))
    out[inside] = schedule[its[inside]]
    return out


def peak_lr(resolved: ResolvedDinov2Config, world_size: int | None = None) -> float:
    """The lr the warm-up climbs to: ``optim.lr`` as the trainer wrote it, or (a config that
    no run wrote) base_lr x sqrt(batch x processes / 1024), one process unless told."""
    lr = float(resolved.get("optim.lr") or 0.0)
    if lr > 0:
        return lr
    batch = int(resolved.get("train.batch_size_per_gpu")) * (world_size or 1)
    return scaled_lr(float(resolved.get("optim.base_lr")), batch)


def total_iterations(resolved: ResolvedDinov2Config) -> int:
    """``optim.epochs x train.OFFICIAL_EPOCH_LENGTH``: the length of every schedule."""
    return int(resolved.get("optim.epochs")) * epoch_length(resolved)


def epoch_length(resolved: ResolvedDinov2Config) -> int:
    return int(resolved.get("train.OFFICIAL_EPOCH_LENGTH"))


def expected_schedules(
    resolved: ResolvedDinov2Config, iterations: np.ndarray, world_size: int | None = None
) -> pd.DataFrame:
    """The value of each schedule (:data:`SCHEDULE_COLUMNS`) at each of ``iterations``, as
    the run's config makes DINOv2 compute it: a train-rows frame (``kind``, ``step``,
    ``epoch``, ``time`` NaN) that the schedule panel draws beside the logged values."""
    ep = epoch_length(resolved)
    total = total_iterations(resolved)
    lr = peak_lr(resolved, world_size)
    min_lr = float(resolved.get("optim.min_lr"))
    warmup = int(float(resolved.get("optim.warmup_epochs")) * ep)
    freeze = int(float(resolved.get("optim.freeze_last_layer_epochs")) * ep)
    lr_schedule = _dinov2_curve(lr, min_lr, total, warmup)
    last_layer = lr_schedule.copy()
    last_layer[:freeze] = 0.0
    wd = (float(resolved.get("optim.weight_decay")), float(resolved.get("optim.weight_decay_end")))
    mom = (
        float(resolved.get("teacher.momentum_teacher")),
        float(resolved.get("teacher.final_momentum_teacher")),
    )
    temp_warmup = int(float(resolved.get("teacher.warmup_teacher_temp_epochs")) * ep)
    temp_end = float(resolved.get("teacher.teacher_temp"))
    temp = _dinov2_curve(
        temp_end,
        temp_end,
        temp_warmup,
        temp_warmup,
        float(resolved.get("teacher.warmup_teacher_temp")),
    )
    its = np.asarray(iterations, dtype=np.int64)
    return pd.DataFrame(
        {
            "kind": "train",
            "step": its,
            "epoch": its / ep,
            "time": np.nan,
            "lr": at(lr_schedule, min_lr, its),
            "wd": at(_dinov2_curve(*wd, total), wd[1], its),
            "momentum": at(_dinov2_curve(*mom, total), mom[1], its),
            "teacher_temp": at(temp, temp_end, its),
            "last_layer_lr": at(last_layer, min_lr, its),
        }
    )


def window_range(
    resolved: ResolvedDinov2Config,
    iterations: np.ndarray,
    window: int,
    world_size: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lowest, highest) value of each schedule over the ``window`` iterations that end at each
    of ``iterations``: DINOv2 logs the median of its last ``window`` values, which lies in that
    range. Frames indexed like ``iterations``, one column per schedule."""
    its = np.asarray(iterations, dtype=np.int64)
    offsets = np.arange(-(window - 1), 1)
    grid = np.clip(its[:, None] + offsets[None, :], 0, None)  # (rows, window)
    flat = expected_schedules(resolved, grid.ravel(), world_size)
    lows, highs = {}, {}
    for column in SCHEDULE_COLUMNS:
        values = flat[column].to_numpy().reshape(grid.shape)
        lows[column], highs[column] = values.min(axis=1), values.max(axis=1)
    return pd.DataFrame(lows), pd.DataFrame(highs)


def schedule_frames(
    name: str,
    metrics: pd.DataFrame,
    train_rows: pd.DataFrame,
    resolved: ResolvedDinov2Config | None,
    world_size: int | None = None,
) -> dict[str, pd.DataFrame]:
    """What the schedule panel of an opened run draws: the logged values, and beside them
    (when the run has a DINOv2 config and train rows) DINOv2's schedules recomputed from the
    config at the logged iterations: ``{"<name> (logged)": ..., "config.yaml": ...}``."""
    if resolved is None or train_rows.empty:
        return {name: metrics}
    steps = pd.to_numeric(train_rows["step"], errors="coerce").dropna().astype(int)
    expected = expected_schedules(resolved, steps.to_numpy(), world_size)
    return {f"{name} (logged)": metrics, "config.yaml": expected}
