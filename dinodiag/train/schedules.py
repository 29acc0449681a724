"""Per-iteration schedules (DINOv2 recipe): pure functions returning numpy arrays.

Every schedule is an array with one value per iteration; :func:`value_at` (and
:meth:`Schedules.at`) clamp an iteration past the end to the last value, so a run that goes
on longer than planned (or is resumed with more steps) keeps the final values.

Recipe defaults (REFERENCE.md): lr = 0.004 * sqrt(batch / 1024), linear warm-up 10 epochs then
cosine to 1e-6; weight decay cosine 0.04 -> 0.4; teacher momentum cosine 0.992 -> 1; teacher
temperature linear 0.04 -> 0.07 over 30 epochs then constant; last layer frozen 1 epoch (its
lr is 0 then, DINOv2's ``last_layer_lr``).

Against DINOv2's ``CosineScheduler`` (``np.linspace(start, peak, warmup)`` then
``end + (peak - end) / 2 * (1 + cos(pi * i / n))``): the warm-up here is one step ahead (step 0
trains at peak / warmup instead of 0; both reach the peak at step warmup - 1), the cosine
reaches ``end`` exactly at the last step (DINOv2 one step later), and the teacher temperature
reaches its end value at the end of its warm-up (DINOv2 one step earlier). Each difference is
one step's increment, 1 / (that schedule's length) of its range.
"""

from __future__ import annotations

import math

import numpy as np

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import OptimConfig

#: Batch size at which ``base_lr`` is defined (DINOv2 scales by sqrt(batch / 1024)).
REFERENCE_BATCH = 1024


def scaled_lr(base_lr: float, batch_size: int, reference_batch: int = REFERENCE_BATCH) -> float:
    """Square-root lr scaling: ``base_lr * sqrt(batch_size / reference_batch)``."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1 to scale the lr, got {batch_size}.")
    return base_lr * math.sqrt(batch_size / reference_batch)


LAYOUTS = ("dinodiag", "dinov2")  # cosine_schedule(layout=...)


def cosine_schedule(
    start: float,
    end: float,
    total_iters: int,
    warmup_iters: int = 0,
    warmup_start: float = 0.0,
    *,
    freeze_iters: int = 0,
    layout: str = "dinodiag",
) -> np.ndarray:
    """Linear warm-up ``warmup_start -> start`` over ``warmup_iters``, then cosine ``start -> end``.

    Returns (total_iters,) float64; the one implementation of the warm-up + cosine curve, in
    two layouts one step apart:

    - ``"dinodiag"`` (the trainer's): warm-up step ``i`` has
      ``warmup_start + (start - warmup_start) * (i + 1) / warmup_iters`` (so step 0 already
      updates the model, and the warm-up ends at ``start``); the cosine part starts at
      ``start`` and reaches ``end`` exactly at the last iteration. ``total_iters`` >= 1.
    - ``"dinov2"`` (DINOv2's ``CosineScheduler``, to hold a DINOv2 log against):
      ``freeze_iters`` zeros, ``np.linspace(warmup_start, start, warmup_iters)`` (its last
      step at the peak), then ``end + (start - end) / 2 * (1 + cos(pi * i / n))`` for
      i = 0 .. n - 1 (``end`` one step after the last); ``total_iters`` may be 0.

    The warm-up (and the freeze) are clipped to ``total_iters``.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"schedule layout {layout!r} is unknown: use one of {LAYOUTS}.")
    if layout == "dinov2":
        warmup_iters = max(0, min(warmup_iters, total_iters))
        freeze_iters = max(0, min(freeze_iters, total_iters - warmup_iters))
        n = max(0, total_iters - warmup_iters - freeze_iters)
        cosine = end + 0.5 * (start - end) * (1.0 + np.cos(math.pi * np.arange(n) / max(n, 1)))
        warmup = np.linspace(warmup_start, start, warmup_iters)
        return np.concatenate([np.zeros(freeze_iters), warmup, cosine])
    if total_iters < 1:
        raise ConfigError(f"a schedule needs total_iters >= 1, got {total_iters}.")
    if freeze_iters:
        raise ConfigError("freeze_iters is DINOv2's layout: the trainer freezes the last layer.")
    warmup_iters = max(0, min(warmup_iters, total_iters))
    warmup = np.linspace(warmup_start, start, warmup_iters + 1)[1:]
    n = total_iters - warmup_iters
    if n == 0:
        return warmup
    if n == 1:
        return np.concatenate([warmup, [start]])
    steps = np.arange(n) / (n - 1)
    cosine = end + 0.5 * (start - end) * (1.0 + np.cos(math.pi * steps))
    return np.concatenate([warmup, cosine])


def linear_warmup_constant(
    start: float, end: float, warmup_iters: int, total_iters: int
) -> np.ndarray:
    """Linear ``start -> end`` over ``warmup_iters`` (``end`` reached there), then flat."""
    if total_iters < 1:
        raise ConfigError(f"a schedule needs total_iters >= 1, got {total_iters}.")
    warmup_iters = max(0, warmup_iters)
    values = np.full(total_iters, end, dtype=np.float64)
    n = min(warmup_iters, total_iters)
    values[:n] = np.linspace(start, end, warmup_iters, endpoint=False)[:n]
    return values


def value_at(schedule: np.ndarray, it: int) -> float:
    """``schedule[it]``, clamped to the last value past the end."""
    if it < 0:
        raise ConfigError(f"iteration must be >= 0, got {it}.")
    return float(schedule[min(it, len(schedule) - 1)])


class Schedules:
    """All per-iteration schedules of a run.

    Args:
        total_iters: planned number of optimisation steps.
        iters_per_epoch: steps per epoch (converts the ``*_epochs`` fields).
        config: the run's optimisation section (validated when it was made): lr, weight
            decay, teacher momentum / temperature and last-layer freeze knobs.
        batch_size: global batch size (all processes), for the lr scaling.

    ``at(it)`` returns ``{"lr", "wd", "momentum", "teacher_temp", "freeze_last_layer",
    "last_layer_lr"}`` (``last_layer_lr`` is 0 while the last layer is frozen, else ``lr``).
    """

    def __init__(
        self, total_iters: int, iters_per_epoch: int, config: OptimConfig, batch_size: int
    ) -> None:
        if iters_per_epoch < 1:
            raise ConfigError(f"iters_per_epoch must be >= 1, got {iters_per_epoch}.")
        self.config = config
        self.total_iters = total_iters
        self.iters_per_epoch = iters_per_epoch
        peak = (
            scaled_lr(config.base_lr, batch_size) if config.lr_scaling == "sqrt" else config.base_lr
        )
        self.peak_lr = peak
        self.lr = cosine_schedule(
            peak, config.min_lr, total_iters, self._iters(config.warmup_epochs)
        )
        self.wd = cosine_schedule(config.weight_decay_start, config.weight_decay_end, total_iters)
        self.momentum = cosine_schedule(config.momentum_start, config.momentum_end, total_iters)
        self.teacher_temp = linear_warmup_constant(
            config.teacher_temp_start,
            config.teacher_temp_end,
            self._iters(config.teacher_temp_warmup_epochs),
            total_iters,
        )
        self.freeze_last_layer_iters = self._iters(config.freeze_last_layer_epochs)

    def _iters(self, epochs: float) -> int:
        return int(round(epochs * self.iters_per_epoch))

    def at(self, it: int) -> dict[str, float | bool]:
        """Values at iteration ``it`` (clamped past the end)."""
        lr = value_at(self.lr, it)
        frozen = it < self.freeze_last_layer_iters
        return {
            "lr": lr,
            "wd": value_at(self.wd, it),
            "momentum": value_at(self.momentum, it),
            "teacher_temp": value_at(self.teacher_temp, it),
            "freeze_last_layer": frozen,
            "last_layer_lr": 0.0 if frozen else lr,
        }
