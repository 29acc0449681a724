"""DINO CLS loss: parity with a straightforward per-pair, per-sample formulation; centering;
Sinkhorn-Knopp marginals; value at initialisation ~ ln K."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import TrainingError
from dinodiag.train.ema import make_teacher
from dinodiag.train.losses.dino import DINOLoss, other_view, sinkhorn_knopp
from dinodiag.train.models.network import build_network
from tests.train.tiny import tiny_model


def reference_dino_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    center: torch.Tensor,
    n_global: int,
    batch: int,
    teacher_temp: float,
    student_temp: float = 0.1,
) -> float:
    """Explicit loops: every (student view, other teacher global view) pair, every sample."""
    n_student = student.shape[0] // batch
    total, pairs = 0.0, 0
    for s in range(n_student):
        for g in range(n_global):
            if s == g:
                continue
            pair_loss = 0.0
            for i in range(batch):
                t_row = [
                    (float(v) - float(c)) / teacher_temp
                    for v, c in zip(teacher[g * batch + i], center[0], strict=True)
                ]
                t_max = max(t_row)
                t_exp = [math.exp(v - t_max) for v in t_row]
                p = [e / sum(t_exp) for e in t_exp]
                s_row = [float(v) / student_temp for v in student[s * batch + i]]
                s_max = max(s_row)
                log_z = s_max + math.log(sum(math.exp(v - s_max) for v in s_row))
                pair_loss += -sum(pk * (sk - log_z) for pk, sk in zip(p, s_row, strict=True))
            total += pair_loss / batch
            pairs += 1
    return total / pairs


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("n_global,n_local", [(2, 0), (2, 1), (2, 4), (3, 2)])
def test_parity_with_reference(batch: int, n_global: int, n_local: int) -> None:
    gen = torch.Generator().manual_seed(batch * 100 + n_global * 10 + n_local)
    k = 7
    student = torch.randn((n_global + n_local) * batch, k, generator=gen)
    teacher = torch.randn(n_global * batch, k, generator=gen)
    loss_fn = DINOLoss(k)
    loss_fn.center.copy_(torch.randn(1, k, generator=gen) * 0.3)
    expected = reference_dino_loss(student, teacher, loss_fn.center, n_global, batch, 0.05)
    got = loss_fn(student, teacher, teacher_temp=0.05, n_global=n_global)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_center_update_is_ema_of_batch_mean_and_used_next_step() -> None:
    k = 5
    loss_fn = DINOLoss(k, center_momentum=0.9)
    t1 = torch.randn(8, k)
    t2 = torch.randn(8, k)
    s = torch.randn(8, k)
    first = loss_fn(s, t1, teacher_temp=0.04)
    # the first step uses the initial center (0)
    assert float(first) == pytest.approx(
        reference_dino_loss(s, t1, torch.zeros(1, k), 2, 4, 0.04), rel=1e-5
    )
    expected_center = 0.1 * t1.mean(dim=0, keepdim=True)
    assert torch.allclose(loss_fn.center, expected_center, atol=1e-6)
    loss_fn(s, t2, teacher_temp=0.04)
    expected_center = 0.9 * expected_center + 0.1 * t2.mean(dim=0, keepdim=True)
    assert torch.allclose(loss_fn.center, expected_center, atol=1e-6)
    assert "center" in loss_fn.state_dict()


def test_update_center_false_keeps_center() -> None:
    loss_fn = DINOLoss(4)
    loss_fn(torch.randn(4, 4), torch.randn(4, 4), teacher_temp=0.04, update_center=False)
    assert torch.count_nonzero(loss_fn.center) == 0


def test_gradient_reaches_student_only() -> None:
    student = torch.randn(6, 5, requires_grad=True)
    teacher = torch.randn(4, 5, requires_grad=True)
    DINOLoss(5)(student, teacher, teacher_temp=0.04).backward()
    assert student.grad is not None and torch.count_nonzero(student.grad) > 0
    assert teacher.grad is None


def test_bf16_inputs_give_float32_loss() -> None:
    student = torch.randn(6, 16).bfloat16()
    teacher = torch.randn(4, 16).bfloat16()
    loss = DINOLoss(16)(student, teacher, teacher_temp=0.04)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_sinkhorn_marginals() -> None:
    gen = torch.Generator().manual_seed(0)
    n, k = 64, 16
    logits = torch.randn(n, k, generator=gen) * 3 + torch.linspace(0, 4, k)  # skewed prototypes
    q3 = sinkhorn_knopp(logits, teacher_temp=0.5, n_iterations=3)
    assert torch.allclose(q3.sum(dim=1), torch.ones(n), atol=1e-5)  # each row is a distribution
    q_many = sinkhorn_knopp(logits, teacher_temp=0.5, n_iterations=200)
    assert torch.allclose(q_many.sum(dim=0), torch.full((k,), n / k), rtol=1e-3)
    softmax_cols = torch.softmax(logits / 0.5, dim=1).sum(dim=0)
    # 3 iterations already move the prototype marginals much closer to uniform than softmax
    assert (q3.sum(0) - n / k).abs().max() < 0.25 * (softmax_cols - n / k).abs().max()


def test_sinkhorn_is_stable_at_low_temperature() -> None:
    logits = torch.randn(32, 8) * 20
    q = sinkhorn_knopp(logits, teacher_temp=0.04)
    assert torch.isfinite(q).all()
    loss_fn = DINOLoss(8, centering="sinkhorn")
    loss = loss_fn(torch.randn(48, 8), logits[:32], teacher_temp=0.04)
    assert torch.isfinite(loss)
    assert torch.count_nonzero(loss_fn.center) == 0  # Sinkhorn does not use the center


def test_other_view_swaps_the_two_global_views() -> None:
    x = torch.arange(6).reshape(6, 1)  # 2 views x 3 samples
    assert other_view(x, 2).flatten().tolist() == [3, 4, 5, 0, 1, 2]


def test_bad_layouts_raise_clear_errors() -> None:
    loss_fn = DINOLoss(4)
    with pytest.raises(TrainingError, match="multiple"):
        loss_fn(torch.randn(7, 4), torch.randn(4, 4), teacher_temp=0.04)
    with pytest.raises(TrainingError, match="global"):
        loss_fn(torch.randn(2, 4), torch.randn(4, 4), teacher_temp=0.04, n_global=4)
    with pytest.raises(TrainingError, match="teacher_temp"):
        loss_fn(torch.randn(4, 4), torch.randn(4, 4), teacher_temp=0.0)


@torch.no_grad()
def test_loss_at_initialisation_is_about_ln_k() -> None:
    torch.manual_seed(0)
    k = 1024
    model = tiny_model(
        patch_size=4, depth=2, num_prototypes=k, head_hidden_dim=2048, head_bottleneck_dim=256
    )
    student = build_network(model, 32)
    teacher = make_teacher(student)
    batch = 16
    global_crops = torch.randn(2 * batch, 3, 32, 32)
    local_crops = torch.randn(4 * batch, 3, 16, 16)
    s = student(global_crops, local_crops)["cls_logits"]
    t = teacher(global_crops)["cls_logits"]
    ln_k = math.log(k)  # 6.93
    # A near-uniform teacher (high temperature) gives exactly the ln K regime ...
    assert float(DINOLoss(k)(s, t, teacher_temp=1.0)) == pytest.approx(ln_k, rel=0.03)
    # ... and the sharp 0.04 teacher stays within ~15% of it (the loss the user sees at step 0).
    assert float(DINOLoss(k)(s, t, teacher_temp=0.04)) == pytest.approx(ln_k, rel=0.15)
