"""Teacher as an EMA copy of the student."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dinodiag.train.ema import ema_update, make_teacher, param_distance
from dinodiag.train.losses.dino import DINOLoss
from dinodiag.train.models.network import build_network
from dinodiag.train.optim import build_adamw
from tests.train.tiny import tiny_model


def _student() -> nn.Module:
    torch.manual_seed(0)
    return build_network(tiny_model(), 16)


def test_teacher_is_a_frozen_copy_in_eval_mode() -> None:
    student = _student()
    teacher = make_teacher(student)
    assert teacher is not student
    assert not teacher.training
    pairs = zip(teacher.parameters(), student.parameters(), strict=True)
    for t, s in pairs:
        assert not t.requires_grad
        assert t.data_ptr() != s.data_ptr() and torch.equal(t, s)
    assert any(p.requires_grad for p in student.parameters())
    assert param_distance(teacher, student) == 0.0


def test_ema_update_formula_and_momentum_one() -> None:
    student = nn.Linear(3, 2)
    teacher = make_teacher(student)
    with torch.no_grad():
        student.weight.add_(1.0)
    before = teacher.weight.clone()
    ema_update(teacher, student, momentum=0.9)
    assert torch.allclose(teacher.weight, 0.9 * before + 0.1 * student.weight)
    frozen = teacher.weight.clone()
    ema_update(teacher, student, momentum=1.0)
    assert torch.equal(teacher.weight, frozen)


def test_param_distance_positive_after_one_step_and_zero_for_same_object() -> None:
    student = _student()
    teacher = make_teacher(student)
    optimizer = build_adamw(student, lr=1e-3)
    crops = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        t = teacher(crops)["cls_logits"]
    loss = DINOLoss(32)(student(crops)["cls_logits"], t, teacher_temp=0.04)
    loss.backward()
    optimizer.step()
    distance_before_ema = param_distance(teacher, student)
    assert distance_before_ema > 0
    ema_update(teacher, student, momentum=0.9)
    assert param_distance(teacher, student) == pytest.approx(0.9 * distance_before_ema, rel=1e-4)
    assert param_distance(student, student) == 0.0  # the dinov2-407 bug shows as 0


def test_buffers_follow_the_student() -> None:
    student = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    teacher = make_teacher(student)
    student(torch.randn(16, 4) * 5 + 3)  # updates the student's running stats
    ema_update(teacher, student, momentum=0.99)
    assert torch.equal(teacher[1].running_mean, student[1].running_mean)
