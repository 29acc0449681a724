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
    # the plain formula: two identical samples are at distance 0, the loss is -log(1e-8)
    pair = KoLeoLoss(eps_inside_norm=False)(torch.ones(2, 4))
    assert float(pair) == pytest.approx(-math.log(1e-8), rel=1e-6)
    # DINOv2's: eps inside the norm too, the distance is eps * sqrt(D)
    inside = KoLeoLoss()(torch.ones(2, 4))
    assert float(inside) == pytest.approx(-math.log(1e-8 * (math.sqrt(4) + 1)), rel=1e-6)


def dinov2_formulation(features: torch.Tensor) -> torch.Tensor:
    """KoLeo as DINOv2 writes it: nearest neighbour by the largest dot product (the diagonal
    set to -1), distance by ``nn.PairwiseDistance(2, eps=1e-8)``, ``-log(d + 1e-8)``."""
    x = torch.nn.functional.normalize(features, eps=1e-8, p=2, dim=-1)
    with torch.no_grad():
        dots = x @ x.T
        n = x.shape[0]
        dots.view(-1)[:: n + 1].fill_(-1)
        nearest = dots.max(dim=1).indices
    distances = torch.nn.PairwiseDistance(2, eps=1e-8)(x, x[nearest])
    return -torch.log(distances + 1e-8).mean()


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("duplicates", [False, True])
def test_matches_dinov2_values_and_gradients(batch: int, duplicates: bool) -> None:
    gen = torch.Generator().manual_seed(batch)
    base = torch.randn(batch, 384, generator=gen)
    if duplicates:
        base[1] = base[0]
    ours_in = base.clone().requires_grad_(True)
    theirs_in = base.clone().requires_grad_(True)
    ours, theirs = KoLeoLoss()(ours_in), dinov2_formulation(theirs_in)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)
    ours.backward()
    theirs.backward()
    assert torch.allclose(ours_in.grad, theirs_in.grad, rtol=1e-4, atol=1e-6)


def test_duplicates_read_as_dinov2s_15_40_and_the_plain_option_as_18_42() -> None:
    features = torch.ones(2, 384, requires_grad=True)
    loss = KoLeoLoss()(features)
    assert float(loss) == pytest.approx(15.40, abs=0.01)
    loss.backward()
    assert torch.isfinite(features.grad).all()
    plain = KoLeoLoss(eps_inside_norm=False)(torch.ones(2, 384))
    assert float(plain) == pytest.approx(18.42, abs=0.01)


def test_spread_features_have_lower_loss_than_clustered() -> None:
    gen = torch.Generator().manual_seed(0)
    spread = torch.randn(32, 16, generator=gen)
    clustered = torch.randn(1, 16, generator=gen) + 0.05 * torch.randn(32, 16, generator=gen)
    assert float(KoLeoLoss()(spread)) < float(KoLeoLoss()(clustered))
