"""Collapse diagnostics on synthetic healthy / collapsed inputs, and the alerts they trigger."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.train.diagnostics import (
    compute_diagnostics,
    detect_alerts,
    effective_rank,
    feature_std,
    mean_pairwise_cosine,
    min_nn_distance,
    prototypes_used,
    teacher_entropy,
)

K = 256


def _codes(events: list[dict]) -> set[str]:
    return {e["code"] for e in events}


def _healthy() -> dict[str, float]:
    gen = torch.Generator().manual_seed(0)
    teacher_logits = torch.randn(64, K, generator=gen)
    probs = torch.softmax(teacher_logits / 0.3, dim=-1)
    student = teacher_logits * 0.5 + torch.randn(64, K, generator=gen)
    features = torch.randn(32, 48, generator=gen)
    diag = compute_diagnostics(probs, student, features, teacher_logits=teacher_logits)
    diag["param_distance"] = 0.5
    return diag


def test_primitive_values() -> None:
    assert teacher_entropy(torch.full((4, K), 1.0 / K)) == pytest.approx(math.log(K), rel=1e-5)
    one_hot = torch.zeros(4, K)
    one_hot[:, 3] = 1.0
    assert teacher_entropy(one_hot) == pytest.approx(0.0, abs=1e-6)
    assert prototypes_used(one_hot) == 1 and prototypes_used(torch.eye(5)) == 5
    same = torch.ones(10, 8)
    assert effective_rank(same) == pytest.approx(1.0, abs=1e-3)
    assert effective_rank(torch.eye(6)) == pytest.approx(6.0, rel=1e-4)
    assert feature_std(same) == pytest.approx(0.0, abs=1e-6)
    assert mean_pairwise_cosine(same) == pytest.approx(1.0, abs=1e-6)
    assert min_nn_distance(same) == pytest.approx(0.0, abs=1e-3)
    assert min_nn_distance(torch.eye(3)) == pytest.approx(math.sqrt(2), rel=1e-5)


def test_healthy_inputs_raise_no_alert() -> None:
    diag = _healthy()
    assert diag["prototypes_used"] > 10 and diag["effective_rank"] > 10
    assert 0 < diag["teacher_entropy"] < 0.95 * math.log(K)
    assert detect_alerts(diag, K, step=500) == []


def test_uniform_collapse() -> None:
    probs = torch.full((64, K), 1.0 / K)
    student = torch.zeros(64, K)
    diag = compute_diagnostics(probs, student, torch.randn(32, 48))
    assert diag["kl_teacher_student"] == pytest.approx(0.0, abs=1e-5)
    events = detect_alerts(diag, K, step=500)
    assert _codes(events) == {"uniform_collapse"}
    event = events[0]
    assert event["kind"] == "event" and event["level"] == "warning" and event["step"] == 500
    assert "teacher temperature" in event["message"]
    # at initialisation a near-uniform teacher is expected: no alert before collapse_min_step
    assert detect_alerts(diag, K, step=10) == []


def test_one_hot_collapse() -> None:
    probs = torch.zeros(64, K)
    probs[:, 7] = 1.0
    student = torch.randn(64, K)
    features = torch.ones(32, 48) + 1e-4 * torch.randn(32, 48)
    diag = compute_diagnostics(probs, student, features)
    assert diag["prototypes_used"] == 1 and diag["teacher_batch_entropy"] < 1e-6
    assert diag["effective_rank"] < 1.1 and diag["feature_std"] < 1e-3
    events = detect_alerts(diag, K, step=100)
    assert _codes(events) == {"onehot_collapse"}
    assert "batch size" in events[0]["message"]


def test_teacher_identical_to_student() -> None:
    diag = _healthy()
    diag["param_distance"] = 0.0
    assert detect_alerts(diag, K, step=0) == []  # before the first update they are equal
    events = detect_alerts(diag, K, step=3)
    assert _codes(events) == {"teacher_is_student"} and events[0]["level"] == "error"
    assert "deepcopy" in events[0]["message"]


def test_nonfinite_values() -> None:
    diag = _healthy()
    diag["loss_koleo"] = float("inf")
    events = detect_alerts(diag, K, step=2)
    assert _codes(events) == {"nonfinite"} and "loss_koleo" in events[0]["message"]
    bad_logits = torch.randn(8, K)
    bad_logits[0, 0] = float("nan")
    diag = compute_diagnostics(torch.softmax(torch.randn(8, K), -1), bad_logits, torch.randn(8, 4))
    assert diag["nonfinite_count"] == 1
    assert "nonfinite" in _codes(detect_alerts(diag, K, step=1))
