"""iBOT masked-patch loss: parity with a per-crop loop and DINOv2's normalisation (all global
crops), only masked patches count, per-crop weighting, its own center, Sinkhorn targets."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.losses.dino import sinkhorn_knopp
from dinodiag.train.losses.ibot import IBOTPatchLoss, masked_patch_weights


def _masks() -> torch.Tensor:
    masks = torch.zeros(4, 6, dtype=torch.bool)
    masks[0, :1] = True  # 1 masked patch
    masks[2, 1:4] = True  # 3 masked patches; crops 1 and 3 unmasked
    return masks


def test_weights_are_one_over_masked_count_per_image() -> None:
    weights = masked_patch_weights(_masks())
    assert weights.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])


def reference_ibot_loss(
    student: torch.Tensor,
    teacher_probs: torch.Tensor,
    masks: torch.Tensor,
    student_temp: float,
    normalisation: str = "global_crops",
) -> float:
    """A loop over crops: the mean cross-entropy over each crop's masked patches, summed over
    the crops, divided by all global crops (DINOv2's forward_masked) or the masked ones.

    student / teacher_probs: (n, N, K) for every patch; masks (n, N)."""
    total, masked_crops = 0.0, 0
    for crop in range(masks.shape[0]):
        patches = masks[crop].nonzero().flatten().tolist()
        if not patches:
            continue
        masked_crops += 1
        crop_loss = 0.0
        for patch in patches:
            log_q = torch.log_softmax(student[crop, patch].double() / student_temp, dim=0)
            crop_loss += float(-(teacher_probs[crop, patch].double() * log_q).sum())
        total += crop_loss / len(patches)
    return total / (masks.shape[0] if normalisation == "global_crops" else max(masked_crops, 1))


@pytest.mark.parametrize("n_crops,n_patches", [(2, 4), (8, 16), (32, 49)])
@pytest.mark.parametrize("k,teacher_temp,student_temp", [(5, 0.07, 0.1), (64, 0.04, 0.2)])
@pytest.mark.parametrize("normalisation", ["global_crops", "masked_crops"])
def test_parity_with_reference(
    n_crops: int,
    n_patches: int,
    k: int,
    teacher_temp: float,
    student_temp: float,
    normalisation: str,
) -> None:
    gen = torch.Generator().manual_seed(n_crops * 7 + k)
    masks = torch.rand(n_crops, n_patches, generator=gen) < 0.3
    masks[0] = False  # an unmasked crop still counts in the "global_crops" divisor
    masks[1, 0] = True
    student = torch.randn(n_crops, n_patches, k, generator=gen)
    teacher = torch.randn(n_crops, n_patches, k, generator=gen)
    loss_fn = IBOTPatchLoss(k, student_temp=student_temp, normalisation=normalisation)
    loss_fn.center.copy_(torch.randn(1, k, generator=gen) * 0.2)
    probs = torch.softmax((teacher - loss_fn.center) / teacher_temp, dim=-1)
    expected = reference_ibot_loss(student, probs, masks, student_temp, normalisation)
    got = loss_fn(student[masks], teacher[masks], masks, teacher_temp=teacher_temp)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_dinov2_normalisation_is_half_the_masked_crop_mean_at_probability_half() -> None:
    """The issue's 2.000x: at mask probability 0.5, dividing by the masked crops doubles it."""
    gen = torch.Generator().manual_seed(3)
    masks = torch.zeros(8, 16, dtype=torch.bool)
    masks[::2, :6] = True  # 4 of 8 crops masked
    student, teacher = torch.randn(8, 16, 9, generator=gen), torch.randn(8, 16, 9, generator=gen)
    dinov2 = IBOTPatchLoss(9)(student[masks], teacher[masks], masks, teacher_temp=0.07)
    old = IBOTPatchLoss(9, normalisation="masked_crops")(
        student[masks], teacher[masks], masks, teacher_temp=0.07
    )
    assert float(old) == pytest.approx(2.0 * float(dinov2), rel=1e-6)
    with pytest.raises(ConfigError, match="normalisation"):
        IBOTPatchLoss(9, normalisation="dinov2")


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
    teacher = torch.randn(4, 5) * 10
    assert torch.allclose(loss_fn.teacher_probs(teacher, 0.04), sinkhorn_knopp(teacher, 0.04))
    loss = loss_fn(torch.randn(4, 5), teacher, masks, teacher_temp=0.04)
    assert math.isfinite(float(loss))
    with pytest.raises(TrainingError, match=r"patch_tokens\[masks\]"):
        loss_fn(torch.randn(3, 5), torch.randn(4, 5), masks, teacher_temp=0.04)
