"""DINO head: shapes, unit-magnitude prototypes, last-layer freeze."""

from __future__ import annotations

import pytest
import torch

from dinodiag.errors import ConfigError
from dinodiag.train.models.head import DINOHead


def test_shapes_and_cosine_logits() -> None:
    torch.manual_seed(0)
    head = DINOHead(32, out_dim=100, hidden_dim=64, bottleneck_dim=16)
    logits = head(torch.randn(5, 32) * 10)
    assert logits.shape == (5, 100)
    assert logits.abs().max() <= 1.0 + 1e-5  # unit bottleneck . unit prototypes
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [64, 64, 16]
    assert DINOHead(8, out_dim=4, n_layers=1, bottleneck_dim=6).mlp[0].out_features == 6


def test_norm_last_layer_fixes_magnitude() -> None:
    head = DINOHead(8, out_dim=10, hidden_dim=16, bottleneck_dim=4)
    magnitude = head.last_layer.parametrizations.weight.original0
    assert torch.all(magnitude == 1.0) and not magnitude.requires_grad
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(10), atol=1e-6)
    free = DINOHead(8, out_dim=10, hidden_dim=16, bottleneck_dim=4, norm_last_layer=False)
    assert free.last_layer.parametrizations.weight.original0.requires_grad
    with pytest.raises(ConfigError, match="out_dim"):
        DINOHead(8, out_dim=0)


def test_cancel_last_layer_gradients() -> None:
    head = DINOHead(8, out_dim=10, hidden_dim=16, bottleneck_dim=4)
    head(torch.randn(3, 8)).sum().backward()
    direction = head.last_layer.parametrizations.weight.original1
    assert direction.grad is not None
    head.cancel_last_layer_gradients()
    assert direction.grad is None
    assert head.mlp[0].weight.grad is not None  # the MLP still trains
    assert len(head.last_layer_parameters()) == 2
