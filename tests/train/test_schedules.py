"""Per-iteration schedules: start / end values, warm-ups, clamping past the end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import OptimConfig
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


def dinov2_cosine(base: float, final: float, total: int, warmup: int = 0, start: float = 0.0):
    """DINOv2's CosineScheduler as its utils.py documents it: linspace(start, base, warmup),
    then final + (base - final) / 2 * (1 + cos(pi * i / n)) for i < n; past the end: final."""
    n = total - warmup
    cosine = [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / n)) for i in range(n)]
    return list(np.linspace(start, base, warmup)) + cosine


@pytest.mark.parametrize("total,warmup", [(100, 10), (40, 0), (1000, 100)])
def test_boundaries_against_dinov2s_scheduler(total: int, warmup: int) -> None:
    """Both reach the peak at the last warm-up step; every value is within one step's increment
    of DINOv2's (see the module docstring), and the end values agree."""
    ours = cosine_schedule(1.0, 0.01, total, warmup)
    ref = dinov2_cosine(1.0, 0.01, total, warmup)
    assert len(ours) == len(ref) == total
    if warmup:
        assert ours[warmup - 1] == pytest.approx(ref[warmup - 1]) == pytest.approx(1.0)
        assert ref[0] == 0.0 and ours[0] == pytest.approx(1.0 / warmup)  # one step ahead
    assert ours[warmup] == pytest.approx(ref[warmup]) == pytest.approx(1.0)
    step = max(1.0 / max(warmup, 1), math.pi / (total - warmup))
    assert np.max(np.abs(ours - np.array(ref))) <= step
    assert ours[-1] == pytest.approx(0.01) and ref[-1] == pytest.approx(0.01, abs=step)
    # teacher temperature: DINOv2 warms up over the same iterations and ends at the same value
    temp = linear_warmup_constant(0.04, 0.07, warmup_iters=30, total_iters=total)
    ref_temp = list(np.linspace(0.04, 0.07, 30)) + [0.07] * (total - 30)
    assert temp[0] == ref_temp[0] == 0.04 and temp[30] == ref_temp[30] == 0.07
    assert np.max(np.abs(temp - np.array(ref_temp))) <= 0.03 / 29 + 1e-12


def test_last_layer_lr_is_zero_while_frozen() -> None:
    sched = Schedules(100, 10, OptimConfig(freeze_last_layer_epochs=1.0), batch_size=64)
    assert [sched.at(i)["last_layer_lr"] for i in (0, 9)] == [0.0, 0.0]
    assert sched.at(10)["last_layer_lr"] == sched.at(10)["lr"] > 0
    free = Schedules(100, 10, OptimConfig(freeze_last_layer_epochs=0.0), batch_size=64)
    assert free.at(0)["last_layer_lr"] == free.at(0)["lr"] > 0


def test_the_two_layouts_are_one_implementation_one_step_apart() -> None:
    """The trainer's layout and DINOv2's (held against a DINOv2 log) come from one function:
    the trainer's warm-up is DINOv2's shifted one step earlier, and both cosines span the
    same range, DINOv2's reaching the end one step after the last iteration."""
    ours = cosine_schedule(1.0, 0.1, 20, 5, layout="dinodiag")
    theirs = cosine_schedule(1.0, 0.1, 21, 6, layout="dinov2")
    np.testing.assert_allclose(ours[:5], theirs[1:6])  # warm-up: one step ahead
    assert ours[-1] == pytest.approx(0.1) and theirs[-1] > 0.1  # the end: one step later
    assert cosine_schedule(1.0, 0.1, 0, layout="dinov2").size == 0
    with pytest.raises(ConfigError, match="layout"):
        cosine_schedule(1.0, 0.1, 10, layout="dino")
