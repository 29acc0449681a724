"""Per-iteration schedules: start / end values, warm-ups, clamping past the end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dinodiag.errors import ConfigError
from dinodiag.train.config import OptimConfig
from dinodiag.train.schedules import (
    Schedules,
    cosine_schedule,
    linear_warmup_constant,
    scaled_lr,
    value_at,
)


def test_scaled_lr_is_sqrt_of_batch_over_1024() -> None:
    assert scaled_lr(0.004, 1024) == pytest.approx(0.004)
    assert scaled_lr(0.004, 256) == pytest.approx(0.002)
    assert scaled_lr(0.004, 64) == pytest.approx(0.001)
    with pytest.raises(ConfigError):
        scaled_lr(0.004, 0)


def test_cosine_with_warmup() -> None:
    values = cosine_schedule(1.0, 0.1, total_iters=20, warmup_iters=5)
    assert len(values) == 20
    assert values[0] == pytest.approx(0.2)  # never 0: the first step already trains
    assert values[4] == pytest.approx(1.0) and values[5] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(0.1)
    assert np.all(np.diff(values[5:]) <= 1e-12)
    assert np.all(np.diff(values[:5]) > 0)
    # warm-up longer than the run is clipped
    assert len(cosine_schedule(1.0, 0.0, total_iters=3, warmup_iters=10)) == 3


def test_linear_warmup_then_constant() -> None:
    values = linear_warmup_constant(0.04, 0.07, warmup_iters=30, total_iters=50)
    assert values[0] == pytest.approx(0.04)
    assert values[15] == pytest.approx(0.055)
    assert values[30] == pytest.approx(0.07) and values[-1] == pytest.approx(0.07)
    assert value_at(values, 10_000) == pytest.approx(0.07)


def test_schedules_object_recipe_values() -> None:
    iters_per_epoch, epochs = 10, 100
    config = OptimConfig()  # DINOv2 defaults
    sched = Schedules(epochs * iters_per_epoch, iters_per_epoch, config, batch_size=256)
    start, end = sched.at(0), sched.at(epochs * iters_per_epoch - 1)
    assert sched.peak_lr == pytest.approx(0.002)
    assert 0 < start["lr"] < 0.002 / 50
    assert sched.at(99)["lr"] == pytest.approx(0.002)  # end of the 10-epoch warm-up
    assert end["lr"] == pytest.approx(1e-6)
    assert start["wd"] == pytest.approx(0.04) and end["wd"] == pytest.approx(0.4)
    assert start["momentum"] == pytest.approx(0.992) and end["momentum"] == pytest.approx(1.0)
    assert start["teacher_temp"] == pytest.approx(0.04)
    assert sched.at(300)["teacher_temp"] == pytest.approx(0.07)
    assert start["freeze_last_layer"] is True
    assert sched.at(9)["freeze_last_layer"] is True and sched.at(10)["freeze_last_layer"] is False
    # past the end: clamped to the last values
    assert sched.at(5000) == end
    mid = sched.at(500)["momentum"]  # half-way through the cosine
    assert 0.992 < mid < 1.0 and math.isclose(mid, 0.996, abs_tol=2e-4)


def test_no_lr_scaling_and_validation() -> None:
    sched = Schedules(10, 5, OptimConfig(base_lr=0.1, lr_scaling="none", warmup_epochs=0), 8)
    assert sched.at(0)["lr"] == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="iters_per_epoch"):
        Schedules(10, 0, OptimConfig(), 8)
    with pytest.raises(ConfigError, match="iteration"):
        sched.at(-1)
