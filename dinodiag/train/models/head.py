"""DINO projection head (Caron et al., 2021; Oquab et al., 2024): MLP -> L2-normalise ->
weight-normed prototypes.

    features (B, D) -> MLP (D -> hidden -> hidden -> bottleneck) -> x / ||x||
                    -> last_layer: weight-normalised linear (bottleneck -> K), no bias

The last layer's weight is ``g * v / ||v||`` per prototype (``parametrizations.weight``:
``original0`` = g, shape (K, 1); ``original1`` = v, shape (K, bottleneck)). Two styles:

- ``"dinov2"`` (default, DINOv2's ``DINOHead``): g starts at 1 and is **trained** (it gets
  weight decay from the parameter groups, as in DINOv2); v keeps PyTorch's default Linear
  init, because the last layer is made after the MLP's trunc-normal init.
- ``"dino_v1"`` (DINO's ``norm_last_layer=True``): g is fixed to 1, so each logit is the cosine
  similarity between the bottleneck vector and a prototype (values in [-1, 1]); v as above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import HEAD_STYLES


class DINOHead(nn.Module):
    """Projection head mapping backbone features (..., in_dim) to K prototype logits (..., K).

    Args:
        in_dim: backbone feature width D.
        out_dim: number of prototypes K (65536 in DINOv2; 1024-8192 converge faster on small
            data; too many prototypes for the data shows as few prototypes used).
        hidden_dim: MLP hidden width (2048).
        bottleneck_dim: width before the prototypes (256).
        n_layers: MLP linear layers (3); 1 means a single linear layer to the bottleneck.
        head_style: ``"dinov2"`` (trainable prototype norms) or ``"dino_v1"`` (fixed to 1).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        n_layers: int = 3,
        head_style: str = "dinov2",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_dim", in_dim),
            ("out_dim", out_dim),
            ("hidden_dim", hidden_dim),
            ("bottleneck_dim", bottleneck_dim),
            ("n_layers", n_layers),
        ):
            if value < 1:
                raise ConfigError(f"DINO head {name} must be >= 1, got {value}.")
        if head_style not in HEAD_STYLES:
            raise ConfigError(
                f"DINO head_style must be one of {', '.join(HEAD_STYLES)}, got {head_style!r}."
            )
        self.out_dim = out_dim
        self.head_style = head_style
        if n_layers == 1:
            layers: list[nn.Module] = [nn.Linear(in_dim, bottleneck_dim)]
        else:
            layers = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
            for _ in range(n_layers - 2):
                layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        # Made after the MLP's init, so the directions keep nn.Linear's default init.
        self.last_layer = weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        magnitude = self.last_layer.parametrizations.weight.original0  # (K, 1)
        with torch.no_grad():
            magnitude.fill_(1.0)
        if head_style == "dino_v1":
            magnitude.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in_dim) -> logits (..., K)."""
        x = self.mlp(x)
        eps = 1e-6 if x.dtype == torch.float16 else 1e-12
        x = F.normalize(x, dim=-1, p=2, eps=eps)
        return self.last_layer(x)

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The prototype layer's parameters (direction and magnitude)."""
        return list(self.last_layer.parameters())
