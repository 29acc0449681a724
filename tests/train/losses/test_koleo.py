"""KoLeo: hand-computed values, batch of 1 is an error, duplicates stay finite."""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag.errors import TrainingError
from dinodiag.train.losses.koleo import KoLeoLoss, nearest_neighbour_distances


def test_hand_computed_example() -> None:
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    # nearest neighbours: 0->1 (sqrt 0.8), 1->2 (sqrt 0.4), 2->1 (sqrt 0.4), 3->2 (sqrt 2)
    expected = (
        -(
            math.log(math.sqrt(0.8) + 1e-8)
            + 2 * math.log(math.sqrt(0.4) + 1e-8)
            + math.log(math.sqrt(2.0) + 1e-8)
        )
        / 4
    )
    assert float(KoLeoLoss()(x)) == pytest.approx(expected, rel=1e-6)
    # features are L2-normalised first: the scale does not matter
    assert float(KoLeoLoss()(3.0 * x)) == pytest.approx(expected, rel=1e-6)
    distances = nearest_neighbour_distances(x)
    assert distances.tolist() == pytest.approx(
        [math.sqrt(0.8), math.sqrt(0.4), math.sqrt(0.4), math.sqrt(2)], rel=1e-6
    )


def test_batch_of_one_is_a_clear_error() -> None:
    with pytest.raises(TrainingError, match="at least 2 per chunk") as info:
        KoLeoLoss()(torch.randn(1, 8))
    assert "KoLeo weight to 0" in str(info.value)


def test_duplicates_are_finite_with_finite_gradients() -> None:
    features = torch.tensor(
        [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]], requires_grad=True
    )
    loss = KoLeoLoss()(features)
    assert math.isfinite(float(loss.detach()))
    loss.backward()
    assert torch.isfinite(features.grad).all()
    # two identical samples: both nearest distances are 0, so the loss is -log(1e-8)
    pair = KoLeoLoss()(torch.ones(2, 4))
    assert float(pair) == pytest.approx(-math.log(1e-8), rel=1e-6)


def test_spread_features_have_lower_loss_than_clustered() -> None:
    gen = torch.Generator().manual_seed(0)
    spread = torch.randn(32, 16, generator=gen)
    clustered = torch.randn(1, 16, generator=gen) + 0.05 * torch.randn(32, 16, generator=gen)
    assert float(KoLeoLoss()(spread)) < float(KoLeoLoss()(clustered))
