"""DINO CLS-token loss (Caron et al., 2021; Oquab et al., 2024) with centering or Sinkhorn-Knopp.

Tensor layout: every multi-crop tensor is **view-major**. For B images and V views, row
``v * B + i`` is view ``v`` of image ``i``: rows ``[view0 img0..img(B-1), view1 img0.., ...]``.
The student's views are the G global crops first (same order as the teacher's), then the L
local crops.

    teacher_logits: (G * B, K)        teacher head on the G unmasked global crops
    student_logits: ((G + L) * B, K)  student head on the G global crops, then the L locals

Each student view is paired with the teacher output of every *other* global view (a global
crop is never compared with itself). Each pair's term is the mean over images of
``-sum_k p_teacher[k] * log_softmax(student / student_temp)[k]``; the loss is the sum of the
terms divided by ``(G - 1) * G + max(G * L, 1)`` (DINOv2's ``normalisation="dinov2"``: the mean
over pairs when there are local crops, 2/3 of it without them) or by the number of pairs
(``"pair_mean"``, DINO v1 and lightly).

Teacher probabilities: ``softmax((t - center) / teacher_temp)`` with ``center`` an EMA
(momentum 0.9) of the batch mean of the teacher logits, all-reduced over processes; or
Sinkhorn-Knopp (3 iterations, as DINOv2 runs it) when ``centering="sinkhorn"``. The teacher
temperature is an
argument (its warm-up lives in :mod:`dinodiag.train.schedules`). Everything is computed in
float32, so the loss is safe under bf16 autocast.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.recipe.config import DINO_NORMALISATIONS
from dinodiag.train import distributed

Centering = Literal["center", "sinkhorn"]
CENTERING_CHOICES: tuple[str, ...] = ("center", "sinkhorn")


@torch.no_grad()
def sinkhorn_knopp(
    teacher_logits: torch.Tensor, teacher_temp: float, n_iterations: int = 3
) -> torch.Tensor:
    """Sinkhorn-Knopp teacher assignment (SwAV / DINOv2): (n, K) logits -> (n, K) probabilities.

    ``Q = exp(t / teacher_temp)`` normalised to a total mass of 1 over the batch of **all**
    processes, then ``n_iterations`` rounds of: each prototype gets 1/K of the mass, each sample
    1/n (n over all processes); the result is scaled by n, so every row is a distribution. The
    batch size may differ between processes.

    One max over all logits of all processes is subtracted before ``exp``: it scales Q by one
    constant, which the first normalisation removes exactly, so the result is DINOv2's (which
    subtracts nothing) without overflow at low temperatures. A per-row max would not be: after
    3 iterations (far from the fixed point) it changes the targets.
    """
    logits = teacher_logits.float() / teacher_temp
    if logits.numel():
        peak = logits.max().reshape(1)
    else:  # no rows here (e.g. no masked patch on this process): the others decide the max
        peak = logits.new_full((1,), float("-inf"))
    peak = distributed.all_reduce_max(peak)
    q = torch.exp(logits - peak)  # (n, K), every entry <= 1
    n_local, k = q.shape
    total = distributed.all_reduce_sum(torch.tensor(float(n_local), device=q.device))
    mass = distributed.all_reduce_sum(q.sum())
    q = q / mass
    tiny = torch.finfo(torch.float32).tiny  # a prototype no sample reaches keeps 0 mass, no NaN
    for _ in range(n_iterations):
        per_prototype = distributed.all_reduce_sum(q.sum(dim=0, keepdim=True))  # (1, K)
        q = q / per_prototype.clamp_min(tiny) / k
        q = q / q.sum(dim=1, keepdim=True).clamp_min(tiny) / total
    return q * total


def pair_normaliser(n_global: int, n_local: int, normalisation: str = "dinov2") -> int:
    """What the summed pair terms of the DINO loss are divided by (see the module docstring).

    ``"dinov2"``: ``(G - 1) * G + max(G * L, 1)``; ``"pair_mean"``: ``(G - 1) * G + G * L``.
    """
    if normalisation not in DINO_NORMALISATIONS:
        raise ConfigError(
            f"DINO loss normalisation must be one of {', '.join(DINO_NORMALISATIONS)}, "
            f"got {normalisation!r}."
        )
    local_terms = n_global * n_local
    if normalisation == "dinov2":
        local_terms = max(local_terms, 1)
    return (n_global - 1) * n_global + local_terms


def check_views(n_rows: int, batch_size: int, what: str) -> int:
    """Number of views in a view-major tensor of ``n_rows`` rows; raises if it does not divide."""
    if batch_size < 1 or n_rows % batch_size:
        raise TrainingError(
            f"{what} has {n_rows} rows, not a multiple of the batch size {batch_size}: "
            "stack the views view-major, (views * batch, K)."
        )
    return n_rows // batch_size


def cross_view_cross_entropy(
    student_logits: torch.Tensor,
    teacher_probs: torch.Tensor,
    n_global: int,
    student_temp: float = 0.1,
    normalisation: str = "dinov2",
) -> torch.Tensor:
    """Cross-entropy over (student view, other teacher global view) pairs.

    Args:
        student_logits: ((G + L) * B, K) view-major, the G global views first.
        teacher_probs: (G * B, K) view-major teacher probabilities.
        n_global: G, the number of global views (the teacher's views).
        student_temp: student softmax temperature (0.1).
        normalisation: ``"dinov2"`` or ``"pair_mean"`` (:func:`pair_normaliser`).

    Returns a scalar: the per-pair means over the B images, summed over the G * (G + L) - G
    valid pairs and divided by :func:`pair_normaliser`.
    """
    if n_global < 1 or teacher_probs.shape[0] % n_global:
        raise TrainingError(
            f"teacher output has {teacher_probs.shape[0]} rows, not a multiple of the "
            f"{n_global} global views: pass (global views * batch, K), view-major."
        )
    batch = teacher_probs.shape[0] // n_global
    n_student = check_views(student_logits.shape[0], batch, "student output")
    if n_student < n_global:
        raise TrainingError(
            f"student output has {n_student} views but the teacher has {n_global} global "
            "views: the student must see every global crop first, then the local crops."
        )
    if n_global == 1 and n_student == 1:
        raise TrainingError(
            "DINO loss with 1 global view and no local views has no pair of different views; "
            "use 2 global crops (the default) or add local crops."
        )
    k = teacher_probs.shape[-1]
    log_q = F.log_softmax(student_logits.float() / student_temp, dim=-1).reshape(
        n_student, batch, k
    )
    p = teacher_probs.float().reshape(n_global, batch, k)
    # ce[s, g] = mean_i -sum_k p[g, i, k] * log_q[s, i, k]   -> (S, G)
    ce = -torch.einsum("gbk,sbk->sg", p, log_q) / batch
    valid = torch.ones(n_student, n_global, dtype=torch.bool, device=ce.device)
    diag = torch.arange(n_global, device=ce.device)
    valid[diag, diag] = False  # never the same view
    return ce[valid].sum() / pair_normaliser(n_global, n_student - n_global, normalisation)


class CenteredLoss(nn.Module):
    """Shared set-up of the DINO and iBOT losses: student temperature, centering mode and the
    (1, K) center buffer, validated in one place. ``what`` prefixes error messages."""

    center: torch.Tensor
    what = ""
    normalisations: tuple[str, ...] = DINO_NORMALISATIONS  # the first is the default

    def __init__(
        self,
        out_dim: int,
        student_temp: float = 0.1,
        center_momentum: float = 0.9,
        centering: Centering = "center",
        sinkhorn_iterations: int = 3,
        normalisation: str | None = None,
    ) -> None:
        super().__init__()
        what = self.what
        if centering not in CENTERING_CHOICES:
            raise ConfigError(
                f"{what}centering must be one of {CENTERING_CHOICES}, got {centering!r}."
            )
        if not 0.0 <= center_momentum < 1.0:
            raise ConfigError(f"{what}center_momentum must be in [0, 1), got {center_momentum}.")
        if student_temp <= 0:
            raise ConfigError(f"{what}student_temp must be > 0, got {student_temp}.")
        self.out_dim = out_dim
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.centering = centering
        self.sinkhorn_iterations = sinkhorn_iterations
        self.normalisation = normalisation or self.normalisations[0]
        if self.normalisation not in self.normalisations:
            raise ConfigError(
                f"{what}normalisation must be one of {', '.join(self.normalisations)}, "
                f"got {normalisation!r}."
            )
        self.register_buffer("center", torch.zeros(1, out_dim))


class DINOLoss(CenteredLoss):
    """DINO cross-view loss on CLS prototype logits. See the module docstring for the layout.

    Args:
        out_dim: K, number of prototypes.
        student_temp: student softmax temperature (0.1).
        center_momentum: EMA momentum of the center (0.9); higher = slower centering.
        centering: ``"center"`` (softmax of centred logits, default) or ``"sinkhorn"``
            (Sinkhorn-Knopp, no center; try it when centering collapses with small batches).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (3).
        normalisation: ``"dinov2"`` (default) or ``"pair_mean"``, see :func:`pair_normaliser`.

    The center is a buffer, so it is saved in ``state_dict`` (needed to resume a run).
    """

    @torch.no_grad()
    def teacher_probs(self, teacher_logits: torch.Tensor, teacher_temp: float) -> torch.Tensor:
        """(n, K) teacher logits -> (n, K) target probabilities (does not touch the center)."""
        if teacher_temp <= 0:
            raise TrainingError(f"teacher_temp must be > 0, got {teacher_temp}.")
        if self.centering == "sinkhorn":
            return sinkhorn_knopp(teacher_logits, teacher_temp, self.sinkhorn_iterations)
        return F.softmax((teacher_logits.float() - self.center) / teacher_temp, dim=-1)

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        """EMA of the batch mean of the teacher logits (n, K), averaged over all processes."""
        logits = teacher_logits.float()
        batch_sum = distributed.all_reduce_sum(logits.sum(dim=0, keepdim=True))
        count = distributed.world_size() * logits.shape[0]
        m = self.center_momentum
        self.center.mul_(m).add_(batch_sum / count, alpha=1.0 - m)

    def cross_entropy(
        self, student_logits: torch.Tensor, teacher_probs: torch.Tensor, n_global: int
    ) -> torch.Tensor:
        """Cross-view cross-entropy (see :func:`cross_view_cross_entropy`)."""
        return cross_view_cross_entropy(
            student_logits, teacher_probs, n_global, self.student_temp, self.normalisation
        )

    def forward(
        self,
        student_logits: torch.Tensor,
        teacher_logits: torch.Tensor,
        teacher_temp: float,
        n_global: int = 2,
        update_center: bool = True,
    ) -> torch.Tensor:
        """Loss for one step.

        Args:
            student_logits: ((G + L) * B, K), view-major, globals first.
            teacher_logits: (G * B, K), view-major (no gradient needed).
            teacher_temp: teacher temperature for this step (0.04 -> 0.07 warm-up).
            n_global: G.
            update_center: update the center with this batch after computing the targets
                (the targets use the center from previous steps).

        Returns the scalar loss (float32).
        """
        probs = self.teacher_probs(teacher_logits, teacher_temp)
        loss = self.cross_entropy(student_logits, probs, n_global)
        if update_center and self.centering == "center":
            self.update_center(teacher_logits)
        return loss


def other_view(x: torch.Tensor, n_views: int) -> torch.Tensor:
    """Rotate view-major rows by one view: row block v becomes the block of view (v+1) % V.

    ``other_view(teacher_probs, 2)`` lines up each student global view with the teacher's
    output of the other global view (what the loss compares), e.g. for diagnostics.
    """
    batch = x.shape[0] // n_views
    return torch.roll(x, shifts=-batch, dims=0)
