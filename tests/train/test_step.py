"""One training step on tiny tensors: updates, EMA, diagnostics, NaN detection, checkpoints."""

from __future__ import annotations

import pytest
import torch

from dinodiag.errors import TrainingError
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import checkpoint as ckpt
from dinodiag.train.builders import build_losses, build_networks, build_optimizer
from dinodiag.train.schedules import Schedules
from dinodiag.train.step import NonFiniteLossError, StepModules, train_step

CPU = torch.device("cpu")


def setup(**overrides):
    cfg = get_train_preset("tiny-test").config.with_overrides(overrides)
    pipeline = resolve_pipeline(cfg)
    torch.manual_seed(0)
    nets = build_networks(cfg, pipeline, CPU)
    losses = build_losses(cfg, CPU)
    optimizer = build_optimizer(cfg, nets.student)
    modules = StepModules(
        nets.student,
        nets.student,
        nets.teacher,
        nets.teacher,
        losses,
        optimizer,
        cfg.optim,
        nets.ibot,
        CPU,
        None,
    )
    schedules = Schedules(10, 5, cfg.optim, cfg.data.batch_size)
    return cfg, modules, schedules


def make_batch(batch=4, n_global=2, n_local=2, grid=16):
    g = torch.Generator().manual_seed(1)
    masks = torch.zeros(n_global * batch, grid, dtype=torch.bool)
    masks[::2, :5] = True
    return {
        "global_crops": torch.randn(n_global * batch, 3, 16, 16, generator=g),
        "local_crops": torch.randn(n_local * batch, 3, 8, 8, generator=g),
        "masks": masks,
        "indices": torch.arange(batch),
    }


def test_step_updates_student_and_teacher():
    _, m, schedules = setup()
    before_s = [p.detach().clone() for p in m.student_net.parameters()]
    before_t = [p.detach().clone() for p in m.teacher_net.parameters()]
    values = train_step(m, make_batch(), schedules.at(0), 1, diagnostics=True)
    for key in (
        "loss",
        "dino_loss",
        "ibot_loss",
        "koleo_loss",
        "grad_norm",
        "teacher_entropy",
        "kl_teacher_student",
        "effective_rank",
        "param_distance",
        "prototypes_used",
    ):
        assert key in values
    assert values["ibot_loss"] > 0 and values["param_distance"] > 0
    assert values["loss"] == pytest.approx(
        values["dino_loss"] + values["ibot_loss"] + 0.1 * values["koleo_loss"], rel=1e-5
    )
    changed = [
        not torch.equal(a, b) for a, b in zip(before_s, m.student_net.parameters(), strict=True)
    ]
    assert sum(changed) > len(changed) // 2
    moved = [
        not torch.equal(a, b) for a, b in zip(before_t, m.teacher_net.parameters(), strict=True)
    ]
    assert any(moved)  # EMA


def test_ibot_off_ignores_masks():
    _, m, schedules = setup(**{"optim.ibot_weight": 0.0})
    assert not m.ibot
    values = train_step(m, make_batch(), schedules.at(0), 1)
    assert values["ibot_loss"] == 0.0
    assert not m.student_net.backbone.mask_token.requires_grad


def test_frozen_last_layer_trains_at_lr_zero():
    _, m, schedules = setup(**{"optim.freeze_last_layer_epochs": 1.0})
    last = m.student_net.dino_head.last_layer.parametrizations.weight.original1
    before = last.detach().clone()
    schedule = schedules.at(0)
    assert schedule["freeze_last_layer"] and schedule["last_layer_lr"] == 0.0
    values = train_step(m, make_batch(), schedule, 1)
    assert torch.equal(before, last)
    assert values["last_layer_lr"] == 0.0 and values["lr"] > 0
    assert torch.count_nonzero(m.optimizer.state[last]["exp_avg"]) > 0  # Adam state moved
    later = schedules.at(5)
    assert not later["freeze_last_layer"] and later["last_layer_lr"] == later["lr"]
    train_step(m, make_batch(), later, 2)
    assert not torch.equal(before, last)


def test_loss_normalisations_follow_the_config():
    """Same init and batch: the old masked-crop iBOT normalisation is exactly 2x DINOv2's (4 of
    the 8 global crops carry a mask); without local crops the pair mean is 1.5x DINOv2's."""
    batch = make_batch(n_local=0)
    batch["local_crops"] = torch.zeros(0)
    runs = {}
    for name, changes in {
        "dinov2": {},
        "old": {
            "optim.ibot_normalisation": "masked_crops",
            "optim.dino_normalisation": "pair_mean",
        },
    }.items():
        _, m, schedules = setup(**{"data.local_crops": 0, **changes})
        runs[name] = train_step(m, batch, schedules.at(0), 1)
    assert runs["old"]["ibot_loss"] == pytest.approx(2.0 * runs["dinov2"]["ibot_loss"], rel=1e-5)
    assert runs["old"]["dino_loss"] == pytest.approx(1.5 * runs["dinov2"]["dino_loss"], rel=1e-5)


def test_each_network_is_clipped_on_its_own_and_the_norm_logged_before(monkeypatch):
    _, m, schedules = setup(**{"optim.clip_grad": 1e-3, "model.ibot_separate_head": True})
    seen: list[float] = []
    step = m.optimizer.step

    def record_then_step(*args, **kwargs):
        for part in m.student_net.parts():  # backbone, DINO head, iBOT head
            grads = [p.grad.norm() for p in part.parameters() if p.grad is not None]
            seen.append(float(torch.stack(grads).norm()))
        return step(*args, **kwargs)

    monkeypatch.setattr(m.optimizer, "step", record_then_step)
    values = train_step(m, make_batch(), schedules.at(0), 1)
    assert len(seen) == 3 and all(n == pytest.approx(1e-3, rel=1e-3) for n in seen)
    assert values["grad_norm"] > 10 * 1e-3  # all parts together, before clipping


def test_nonfinite_loss_names_the_term(monkeypatch):
    _, m, schedules = setup()
    monkeypatch.setattr(
        m.losses.dino,
        "cross_entropy",
        lambda *a, **k: torch.tensor(float("inf"), requires_grad=True),
    )
    before = [p.detach().clone() for p in m.student_net.parameters()]
    with pytest.raises(NonFiniteLossError) as info:
        train_step(m, make_batch(), schedules.at(0), 5)
    assert info.value.term == "dino_loss" and info.value.step == 5
    assert "step 5" in str(info.value) and isinstance(info.value, TrainingError)
    assert all(torch.equal(a, b) for a, b in zip(before, m.student_net.parameters(), strict=True))


def test_checkpoint_round_trip_and_atomic(tmp_path):
    cfg, m, schedules = setup()
    train_step(m, make_batch(), schedules.at(0), 1)
    path = ckpt.save_checkpoint(
        tmp_path,
        step=1,
        epoch=0.2,
        elapsed=3.0,
        student=m.student_net,
        teacher=m.teacher_net,
        optimizer=m.optimizer,
        dino_loss=m.losses.dino,
        ibot_loss=m.losses.ibot,
        config=cfg.to_dict(),
    )
    assert path.name == "checkpoint.pt" and [p.name for p in tmp_path.iterdir()] == [path.name]
    state = ckpt.load_checkpoint(tmp_path)
    assert state["step"] == 1 and state["elapsed"] == 3.0
    _, fresh, _ = setup()
    ckpt.restore(
        state,
        student=fresh.student_net,
        teacher=fresh.teacher_net,
        optimizer=fresh.optimizer,
        dino_loss=fresh.losses.dino,
        ibot_loss=fresh.losses.ibot,
    )
    assert torch.equal(fresh.losses.dino.center, m.losses.dino.center)
    for a, b in zip(fresh.student_net.parameters(), m.student_net.parameters(), strict=True):
        assert torch.equal(a, b)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(TrainingError, match="no checkpoint.pt"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage")
    with pytest.raises(TrainingError, match="damaged"):
        ckpt.load_checkpoint(tmp_path)
    torch.save({"step": 3}, tmp_path / "checkpoint.pt")
    with pytest.raises(TrainingError, match="missing version"):
        ckpt.load_checkpoint(tmp_path)
