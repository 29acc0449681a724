"""iBOT masked-patch loss (Zhou et al., 2022; as used in DINOv2).

The student sees global crops whose masked patches were replaced by the mask token; the
teacher sees the same crops unmasked. For each masked patch the student's patch logits are
trained to match the teacher's (centred or Sinkhorn-Knopp) patch probabilities.

Layout: ``masks`` is (n, N) bool over the n global crops (view-major, as in
:mod:`dinodiag.train.losses.dino`) and N patches. Patch logits are taken only at masked
positions, in the order of ``patch_tokens[masks]`` (row-major over crops, then patches):

    student_patch_logits: (M, K)   M = masks.sum()
    teacher_patch_logits: (M, K)

Each masked patch is weighted by 1 / (number of masked patches in its crop), so every masked
crop counts the same whatever its mask ratio, and the per-crop means are summed. The sum is
divided by the number of **all** global crops n, masked or not (DINOv2's
``normalisation="global_crops"``; at mask probability 0.5 that is half the mean over masked
crops), or by the masked crops only (``"masked_crops"``, 2x DINOv2's value). DINOv2's trainer
logs half of this term as ``ibot_loss``. The center is the EMA (momentum 0.9) of the mean
teacher logit over all masked patches of all processes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dinodiag.errors import TrainingError
from dinodiag.recipe.config import IBOT_NORMALISATIONS
from dinodiag.train import distributed
from dinodiag.train.losses.dino import CenteredLoss, sinkhorn_knopp


def masked_patch_weights(masks: torch.Tensor) -> torch.Tensor:
    """(n, N) bool masks -> (M,) weights 1 / (masked patches in its image), as masks[masks]."""
    per_image = masks.sum(dim=1, keepdim=True).clamp(min=1).float()  # (n, 1)
    return (1.0 / per_image).expand_as(masks)[masks]


class IBOTPatchLoss(CenteredLoss):
    """Masked-patch cross-entropy with its own center (or Sinkhorn-Knopp).

    Args:
        out_dim: K, prototypes of the patch head.
        student_temp: student softmax temperature (0.1).
        center_momentum: EMA momentum of the patch center (0.9).
        centering: ``"center"`` or ``"sinkhorn"``.
        sinkhorn_iterations: Sinkhorn-Knopp iterations (3).
        normalisation: ``"global_crops"`` (DINOv2, default) or ``"masked_crops"``.
    """

    what = "iBOT "  # prefix of the set-up error messages
    normalisations = IBOT_NORMALISATIONS

    @torch.no_grad()
    def teacher_probs(
        self, teacher_patch_logits: torch.Tensor, teacher_temp: float
    ) -> torch.Tensor:
        """(M, K) teacher logits at masked patches -> (M, K) probabilities."""
        if teacher_temp <= 0:
            raise TrainingError(f"teacher_temp must be > 0, got {teacher_temp}.")
        if self.centering == "sinkhorn":
            return sinkhorn_knopp(teacher_patch_logits, teacher_temp, self.sinkhorn_iterations)
        return F.softmax((teacher_patch_logits.float() - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def update_center(self, teacher_patch_logits: torch.Tensor) -> None:
        """EMA of the mean teacher logit over masked patches (M, K) of all processes."""
        logits = teacher_patch_logits.float()
        stats = torch.cat([logits.sum(dim=0), logits.new_tensor([float(logits.shape[0])])])
        stats = distributed.all_reduce_sum(stats)
        count = stats[-1]
        m = self.center_momentum
        updated = self.center * m + (stats[:-1] / count.clamp_min(1.0)).unsqueeze(0) * (1.0 - m)
        # no masked patch anywhere this step: keep the center (no host sync needed to decide)
        self.center.copy_(torch.where(count > 0, updated, self.center))

    def cross_entropy(
        self, student_patch_logits: torch.Tensor, teacher_probs: torch.Tensor, masks: torch.Tensor
    ) -> torch.Tensor:
        """Weighted masked-patch cross-entropy (scalar, float32); 0 when nothing is masked.

        ``masks`` (n, N) covers all n global crops of the step: n is the divisor of
        ``"global_crops"``."""
        n_masked = int(masks.sum())
        if student_patch_logits.shape[0] != n_masked or teacher_probs.shape[0] != n_masked:
            raise TrainingError(
                f"iBOT got {student_patch_logits.shape[0]} student and {teacher_probs.shape[0]} "
                f"teacher patch rows but the masks select {n_masked} patches: take the patch "
                "tokens at masked positions with patch_tokens[masks] for both."
            )
        n_masked_images = int(masks.any(dim=1).sum())
        if n_masked_images == 0:
            return student_patch_logits.float().sum() * 0.0  # keeps the graph, value 0
        log_q = F.log_softmax(student_patch_logits.float() / self.student_temp, dim=-1)
        per_patch = -(teacher_probs.float() * log_q).sum(dim=-1)  # (M,)
        divisor = masks.shape[0] if self.normalisation == "global_crops" else n_masked_images
        return (per_patch * masked_patch_weights(masks)).sum() / divisor

    def forward(
        self,
        student_patch_logits: torch.Tensor,
        teacher_patch_logits: torch.Tensor,
        masks: torch.Tensor,
        teacher_temp: float,
        update_center: bool = True,
    ) -> torch.Tensor:
        """Loss for one step (targets use the center of previous steps, then it is updated).

        Args:
            student_patch_logits: (M, K) at masked positions (student saw mask tokens there).
            teacher_patch_logits: (M, K) at the same positions (teacher saw the real patches).
            masks: (n, N) bool masks of the n global crops.
            teacher_temp: teacher temperature for this step.
            update_center: update the patch center with this batch.
        """
        probs = self.teacher_probs(teacher_patch_logits, teacher_temp)
        loss = self.cross_entropy(student_patch_logits, probs, masks)
        if update_center and self.centering == "center":
            self.update_center(teacher_patch_logits)
        return loss
