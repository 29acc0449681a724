"""KoLeo regulariser (Kozachenko-Leonenko entropy estimator; Sablayrolles et al., 2019; DINOv2).

On L2-normalised features x_i (B, D): ``-mean_i log(||x_i - x_nn(i)|| + eps)`` with ``x_nn(i)``
the nearest other sample. It pushes features of a batch apart (spreads them on the sphere).
DINOv2 applies it with weight 0.1 to the student CLS features of each global crop chunk
separately (B images of one view); the weight is applied by the caller.

Batch size: a sample needs at least one other sample to have a nearest neighbour, so a
chunk of 1 is an error here (in DINOv2 it gives inf and then NaN).

Where eps goes: DINOv2 measures the distance with ``nn.PairwiseDistance(2, eps=1e-8)``, which
adds eps to every coordinate of the difference *inside* the norm, ``||x - y + eps||``, and
then adds eps again before the log. That is the default here (``eps_inside_norm=True``): on
duplicated features (D = 384) the distance is ``eps * sqrt(D)`` and the loss 15.40, with a
finite, non-zero gradient. ``eps_inside_norm=False`` is the plain formula,
``-log(||x - y|| + eps)``: 18.42 on duplicates, gradient 0 there.


Distributed: DINOv2 computes KoLeo on each process's local batch. With
``gather_distributed=True`` (and torch.distributed initialised) the features of all
processes are gathered first and each local sample's neighbour is searched among all of
them (gradients flow only through the local rows); the loss is still averaged over the
local samples, and DDP averages the gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dinodiag.errors import TrainingError
from dinodiag.train import distributed


def nearest_neighbour_distances(
    features: torch.Tensor,
    candidates: torch.Tensor | None = None,
    offset: int = 0,
    eps_inside: float = 0.0,
) -> torch.Tensor:
    """Distance from each L2-normalised row of ``features`` (B, D) to its nearest other row.

    ``candidates`` (C, D) defaults to ``features``; row ``i`` of ``features`` is row
    ``offset + i`` of ``candidates`` and is excluded from its own search. ``eps_inside`` is
    added to every coordinate of the difference before the norm (``nn.PairwiseDistance``'s
    eps). Returns (B,).
    """
    candidates = features if candidates is None else candidates
    with torch.no_grad():
        sims = features @ candidates.T  # (B, C); nearest = most similar on the sphere
        own = torch.arange(features.shape[0], device=features.device)
        sims[own, own + offset] = -2.0  # below any cosine: never pick yourself
        nearest = sims.argmax(dim=1)
    return torch.linalg.vector_norm(features - candidates[nearest] + eps_inside, dim=-1)


class KoLeoLoss(nn.Module):
    """KoLeo loss on one chunk of features: (B, D) -> scalar (float32). Needs B >= 2.

    Args:
        eps: added to the distances before the log (1e-8).
        gather_distributed: search neighbours among the features of all processes when
            torch.distributed is initialised (DINOv2 uses the local batch only).
        eps_inside_norm: also add eps to the difference inside the norm, as DINOv2's
            ``nn.PairwiseDistance(eps=1e-8)`` does (default); False for ``||x - y|| + eps``.
    """

    def __init__(
        self, eps: float = 1e-8, gather_distributed: bool = False, eps_inside_norm: bool = True
    ) -> None:
        super().__init__()
        self.eps = eps
        self.gather_distributed = gather_distributed
        self.eps_inside_norm = eps_inside_norm

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features: (B, D), e.g. the student CLS tokens of one global crop view."""
        x = F.normalize(features.float(), dim=-1, p=2, eps=1e-8)
        if self.gather_distributed and distributed.is_distributed():
            candidates = distributed.all_gather_keep_grad(x)
            offset = distributed.rank() * x.shape[0]
        else:
            candidates, offset = x, 0
        if candidates.shape[0] < 2:
            raise TrainingError(
                f"KoLeo needs a batch of at least 2 per chunk to find a nearest neighbour, got "
                f"{features.shape[0]} (it is computed per global crop view on each process's "
                "batch; a batch of 1 gives inf then NaN). Raise the batch size per process to "
                ">= 2 (drop_last=True avoids a last batch of 1), or set the KoLeo weight to 0."
            )
        inside = self.eps if self.eps_inside_norm else 0.0
        distances = nearest_neighbour_distances(x, candidates, offset, inside)
        return -torch.log(distances + self.eps).mean()
