"""DINO projection head (Caron et al., 2021): MLP -> L2-normalise -> weight-normed prototypes.

    features (B, D) -> MLP (D -> hidden -> hidden -> bottleneck) -> x / ||x||
                    -> last_layer: weight-normalised linear (bottleneck -> K), no bias

With ``norm_last_layer=True`` the weight-norm magnitude is fixed to 1, so each logit is the
cosine similarity between the bottleneck vector and a prototype (values in [-1, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from dinodiag.errors import ConfigError


class DINOHead(nn.Module):
    """Projection head mapping backbone features (..., in_dim) to K prototype logits (..., K).

    Args:
        in_dim: backbone feature width D.
        out_dim: number of prototypes K (65536 in DINOv2; 1024-8192 converge faster on small
            data; too many prototypes for the data shows as few prototypes used).
        hidden_dim: MLP hidden width (2048).
        bottleneck_dim: width before the prototypes (256).
        n_layers: MLP linear layers (3); 1 means a single linear layer to the bottleneck.
        norm_last_layer: fix the weight-norm magnitude of the prototypes to 1 (DINO default).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 65536,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        n_layers: int = 3,
        norm_last_layer: bool = True,
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
        self.out_dim = out_dim
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
        last = nn.Linear(bottleneck_dim, out_dim, bias=False)
        nn.init.trunc_normal_(last.weight, std=0.02)
        self.last_layer = weight_norm(last)
        magnitude = self.last_layer.parametrizations.weight.original0  # (K, 1)
        with torch.no_grad():
            magnitude.fill_(1.0)
        if norm_last_layer:
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

    def cancel_last_layer_gradients(self) -> None:
        """Drop the prototype layer's gradients (call between backward and optimizer.step).

        DINO freezes the last layer during the first epoch, which stabilises training; with
        ``grad = None`` AdamW leaves those parameters (and their weight decay) untouched.
        """
        for param in self.last_layer.parameters():
            param.grad = None
