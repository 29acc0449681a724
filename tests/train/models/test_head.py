"""DINO head: shapes, DINOv2's trainable prototype norms and default init, DINO v1's fixed norms."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import ConfigError
from dinodiag.train.models.head import DINOHead


def test_shapes_and_cosine_logits() -> None:
    torch.manual_seed(0)
    head = DINOHead(32, out_dim=100, hidden_dim=64, bottleneck_dim=16)
    logits = head(torch.randn(5, 32) * 10)
    assert logits.shape == (5, 100)
    assert logits.abs().max() <= 1.0 + 1e-5  # unit bottleneck . unit prototypes (g = 1 at init)
    linears = [m for m in head.mlp if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [64, 64, 16]
    assert DINOHead(8, out_dim=4, n_layers=1, bottleneck_dim=6).mlp[0].out_features == 6


def test_dinov2_head_trains_the_prototype_norms_from_the_default_init() -> None:
    torch.manual_seed(0)
    bottleneck, k = 16, 4000
    head = DINOHead(8, out_dim=k, hidden_dim=16, bottleneck_dim=bottleneck)
    magnitude = head.last_layer.parametrizations.weight.original0  # (K, 1)
    direction = head.last_layer.parametrizations.weight.original1  # (K, bottleneck)
    assert magnitude.shape == (k, 1) and torch.all(magnitude == 1.0) and magnitude.requires_grad
    # nn.Linear's default init: uniform in +-1/sqrt(fan_in) (std bound/sqrt(3) = 0.144 here),
    # not the MLP's trunc-normal 0.02.
    bound = 1 / math.sqrt(bottleneck)
    assert direction.abs().max() <= bound
    assert float(direction.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)
    mlp_weight = head.mlp[0].weight
    assert float(mlp_weight.detach().std()) == pytest.approx(0.02, rel=0.2)
    head(torch.randn(3, 8)).sum().backward()
    assert magnitude.grad is not None and torch.count_nonzero(magnitude.grad) > 0
    assert len(head.last_layer_parameters()) == 2


def test_dino_v1_head_fixes_the_norms_to_one() -> None:
    head = DINOHead(8, out_dim=10, hidden_dim=16, bottleneck_dim=4, head_style="dino_v1")
    magnitude = head.last_layer.parametrizations.weight.original0
    assert torch.all(magnitude == 1.0) and not magnitude.requires_grad
    assert torch.allclose(head.last_layer.weight.norm(dim=1), torch.ones(10), atol=1e-6)
    logits = head(torch.randn(5, 8) * 10)
    assert logits.abs().max() <= 1.0 + 1e-5  # cosine similarities
    with pytest.raises(ConfigError, match="out_dim"):
        DINOHead(8, out_dim=0)
    with pytest.raises(ConfigError, match="head_style"):
        DINOHead(8, out_dim=4, head_style="v3")
