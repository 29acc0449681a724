"""iBOT masked-patch loss: only masked patches count, per-image weighting, its own center."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import TrainingError
from dinodiag.train.losses.ibot import IBOTPatchLoss, masked_patch_weights


def _masks() -> torch.Tensor:
    masks = torch.zeros(4, 6, dtype=torch.bool)
    masks[0, :1] = True  # 1 masked patch
    masks[2, 1:4] = True  # 3 masked patches; crops 1 and 3 unmasked
    return masks


def test_weights_are_one_over_masked_count_per_image() -> None:
    weights = masked_patch_weights(_masks())
    assert weights.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])


def test_loss_matches_per_image_mean_of_masked_patches() -> None:
    gen = torch.Generator().manual_seed(0)
    masks = _masks()
    k = 5
    student_all = torch.randn(4, 6, k, generator=gen)
    teacher_all = torch.randn(4, 6, k, generator=gen)
    loss = IBOTPatchLoss(k)(student_all[masks], teacher_all[masks], masks, teacher_temp=0.07)

    def ce(img: int, patch: int) -> float:
        p = torch.softmax(teacher_all[img, patch] / 0.07, dim=0)
        log_q = torch.log_softmax(student_all[img, patch] / 0.1, dim=0)
        return float(-(p * log_q).sum())

    image0 = ce(0, 0)
    image2 = (ce(2, 1) + ce(2, 2) + ce(2, 3)) / 3
    assert float(loss) == pytest.approx((image0 + image2) / 2, rel=1e-5)


def test_only_masked_patches_get_gradient() -> None:
    masks = _masks()
    student_all = torch.randn(4, 6, 5, requires_grad=True)
    teacher_all = torch.randn(4, 6, 5)
    IBOTPatchLoss(5)(student_all[masks], teacher_all[masks], masks, teacher_temp=0.07).backward()
    grad_norm = student_all.grad.norm(dim=-1)  # (4, 6)
    assert (grad_norm[masks] > 0).all()
    assert (grad_norm[~masks] == 0).all()


def test_center_is_ema_of_masked_patch_mean() -> None:
    masks = _masks()
    teacher = torch.randn(4, 5)
    loss_fn = IBOTPatchLoss(5, center_momentum=0.9)
    loss_fn(torch.randn(4, 5), teacher, masks, teacher_temp=0.04)
    assert torch.allclose(loss_fn.center, 0.1 * teacher.mean(0, keepdim=True), atol=1e-6)


def test_no_masked_patch_gives_zero_with_graph() -> None:
    masks = torch.zeros(2, 4, dtype=torch.bool)
    student = torch.zeros(0, 3, requires_grad=True)
    loss_fn = IBOTPatchLoss(3)
    loss = loss_fn(student, torch.zeros(0, 3), masks, teacher_temp=0.04)
    assert float(loss.detach()) == 0.0 and loss.requires_grad
    assert torch.count_nonzero(loss_fn.center) == 0  # nothing to average: center untouched


def test_sinkhorn_option_and_row_mismatch_error() -> None:
    masks = _masks()
    loss_fn = IBOTPatchLoss(5, centering="sinkhorn")
    loss = loss_fn(torch.randn(4, 5), torch.randn(4, 5) * 10, masks, teacher_temp=0.04)
    assert math.isfinite(float(loss))
    with pytest.raises(TrainingError, match=r"patch_tokens\[masks\]"):
        loss_fn(torch.randn(3, 5), torch.randn(4, 5), masks, teacher_temp=0.04)
