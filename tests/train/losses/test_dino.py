"""DINO CLS loss: parity with an independent per-pair, per-sample formulation and DINOv2's
documented normalisation; centering; Sinkhorn-Knopp against the SwAV / DINOv2 equations;
value at initialisation ~ ln K."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.ema import make_teacher
from dinodiag.train.losses.dino import DINOLoss, other_view, pair_normaliser, sinkhorn_knopp
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
    normalisation: str = "dinov2",
) -> float:
    """Explicit loops: every (student view, other teacher global view) pair, every sample; the
    sum of the pair means divided as DINOv2's meta-architecture divides it:
    (G - 1) * G + max(G * L, 1) terms (or the number of pairs for "pair_mean")."""
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
    n_local = n_student - n_global
    if normalisation == "pair_mean":
        return total / pairs
    return total / ((n_global - 1) * n_global + max(n_global * n_local, 1))


@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("n_global,n_local", [(2, 0), (2, 1), (2, 4), (3, 2)])
@pytest.mark.parametrize("k,teacher_temp,student_temp", [(7, 0.05, 0.1), (32, 0.04, 0.2)])
def test_parity_with_reference(
    batch: int, n_global: int, n_local: int, k: int, teacher_temp: float, student_temp: float
) -> None:
    gen = torch.Generator().manual_seed(batch * 100 + n_global * 10 + n_local + k)
    student = torch.randn((n_global + n_local) * batch, k, generator=gen)
    teacher = torch.randn(n_global * batch, k, generator=gen)
    loss_fn = DINOLoss(k, student_temp=student_temp)
    loss_fn.center.copy_(torch.randn(1, k, generator=gen) * 0.3)
    expected = reference_dino_loss(
        student, teacher, loss_fn.center, n_global, batch, teacher_temp, student_temp
    )
    got = loss_fn(student, teacher, teacher_temp=teacher_temp, n_global=n_global)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("n_local", [0, 1, 4])
def test_pair_mean_option_and_the_no_local_crop_normalisation(n_local: int) -> None:
    gen = torch.Generator().manual_seed(n_local)
    batch, k = 4, 6
    student = torch.randn((2 + n_local) * batch, k, generator=gen)
    teacher = torch.randn(2 * batch, k, generator=gen)
    zero = torch.zeros(1, k)
    dinov2 = float(DINOLoss(k)(student, teacher, teacher_temp=0.07))
    pair_mean = float(DINOLoss(k, normalisation="pair_mean")(student, teacher, teacher_temp=0.07))
    assert pair_mean == pytest.approx(
        reference_dino_loss(student, teacher, zero, 2, batch, 0.07, normalisation="pair_mean"),
        rel=1e-5,
    )
    # With local crops both divide by the number of pairs; without, DINOv2 divides the two
    # global pairs by 3, so its loss is 2/3 of the pair mean (dinodiag's value used to be 1.5x).
    assert dinov2 == pytest.approx(pair_mean * (2 / 3 if n_local == 0 else 1.0), rel=1e-5)
    assert pair_normaliser(2, 0) == 3 and pair_normaliser(2, 0, "pair_mean") == 2
    assert pair_normaliser(2, 8) == pair_normaliser(2, 8, "pair_mean") == 18
    with pytest.raises(ConfigError, match="normalisation"):
        DINOLoss(k, normalisation="mean")


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


def reference_sinkhorn(logits: torch.Tensor, temp: float, iterations: int) -> torch.Tensor:
    """SwAV / DINOv2's Sinkhorn-Knopp in float64 with loops, no max subtracted (as DINOv2
    writes it): Q = exp(t / temp)^T normalised to sum 1, then per iteration every prototype
    row to 1/K and every sample column to 1/B; returned x B, transposed back."""
    q = torch.exp(logits.double() / temp).T  # (K, B)
    k, b = q.shape
    q = q / q.sum()
    for _ in range(iterations):
        for row in range(k):
            q[row] = q[row] / q[row].sum() / k
        for col in range(b):
            q[:, col] = q[:, col] / q[:, col].sum() / b
    return (q * b).T


@pytest.mark.parametrize("n,k", [(4, 5), (16, 8), (64, 32)])
@pytest.mark.parametrize("temp,scale", [(0.04, 1.0), (0.07, 1.0), (0.5, 3.0)])
@pytest.mark.parametrize("iterations", [1, 3])
def test_sinkhorn_matches_the_equations(
    n: int, k: int, temp: float, scale: float, iterations: int
) -> None:
    gen = torch.Generator().manual_seed(n + k)
    # Cosine-like logits in [-scale, scale] (the head's range), skewed towards some prototypes.
    logits = (torch.rand(n, k, generator=gen) * 2 - 1) * scale + torch.linspace(0, 0.5, k)
    got = sinkhorn_knopp(logits, teacher_temp=temp, n_iterations=iterations)
    expected = reference_sinkhorn(logits, temp, iterations).float()
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert torch.allclose(got.sum(dim=1), torch.ones(n), atol=1e-5)  # rows are distributions


def test_a_per_row_max_would_change_the_three_iteration_targets() -> None:
    """Why the max is global: a per-row shift is a per-sample scale, which the 3 iterations do
    not fully remove (the issue's 0.68 difference)."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 16, generator=gen) * 3 + torch.linspace(0, 4, 16)
    row_max = logits / 0.5 - (logits / 0.5).max(dim=1, keepdim=True).values
    shifted = sinkhorn_knopp(row_max * 0.5, teacher_temp=0.5)  # what a per-row max computes
    reference = reference_sinkhorn(logits, 0.5, 3).float()
    assert torch.allclose(sinkhorn_knopp(logits, 0.5), reference, rtol=1e-4, atol=1e-6)
    assert (shifted - reference).abs().max() > 0.05


def test_sinkhorn_converges_to_uniform_prototypes() -> None:
    gen = torch.Generator().manual_seed(0)
    n, k = 64, 16
    logits = torch.randn(n, k, generator=gen) * 3 + torch.linspace(0, 4, k)  # skewed prototypes
    q_many = sinkhorn_knopp(logits, teacher_temp=0.5, n_iterations=200)
    assert torch.allclose(q_many.sum(dim=0), torch.full((k,), n / k), rtol=1e-3)
    q3 = sinkhorn_knopp(logits, teacher_temp=0.5, n_iterations=3)
    softmax_cols = torch.softmax(logits / 0.5, dim=1).sum(dim=0)
    assert (q3.sum(0) - n / k).abs().max() < (softmax_cols - n / k).abs().max()


def test_sinkhorn_is_stable_at_low_temperature() -> None:
    logits = torch.randn(32, 8) * 20  # exp(t / 0.04) overflows float32 without the shift
    q = sinkhorn_knopp(logits, teacher_temp=0.04)
    assert torch.isfinite(q).all()
    assert torch.isfinite(sinkhorn_knopp(torch.zeros(0, 8), teacher_temp=0.04)).all()
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
