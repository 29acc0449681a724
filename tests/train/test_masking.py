"""iBOT block masks against DINOv2's documented behaviour: int(n * p) masked crops, ratios in
evenly spread slots (so the masked patches per batch barely vary), int(N * ratio) patches,
contiguous blocks; deterministic with a generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dinodiag.errors import ConfigError
from dinodiag.train.masking import block_mask, generate_ibot_masks, mask_ratios


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_deterministic_with_a_generator() -> None:
    a = generate_ibot_masks(16, (8, 8), generator=_gen(3))
    b = generate_ibot_masks(16, (8, 8), generator=_gen(3))
    c = generate_ibot_masks(16, (8, 8), generator=_gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("grid", [(2, 2), (4, 4), (8, 8), (14, 14)])
@pytest.mark.parametrize("n_crops,probability", [(32, 0.5), (7, 0.5), (10, 0.25), (6, 1.0)])
def test_masked_crops_and_counts_as_dinov2(
    grid: tuple[int, int], n_crops: int, probability: float
) -> None:
    n_patches = grid[0] * grid[1]
    masks = generate_ibot_masks(
        n_crops, grid, mask_probability=probability, ratio_range=(0.1, 0.5), generator=_gen(5)
    )
    assert masks.shape == (n_crops, n_patches) and masks.dtype == torch.bool
    n_masked = int(n_crops * probability)  # floor: 7 crops at 0.5 -> 3 (round would give 4)
    # The same generator draws the slot ratios first: each masked crop has int(N * ratio).
    ratios = mask_ratios(n_masked, (0.1, 0.5), _gen(5))
    expected = sorted(int(n_patches * r) for r in ratios)
    assert sorted(masks.sum(dim=1).tolist()) == sorted([0] * (n_crops - n_masked) + expected)


@pytest.mark.parametrize("n_masked", [1, 3, 32])
def test_ratios_fill_evenly_spread_slots(n_masked: int) -> None:
    edges = torch.linspace(0.1, 0.5, n_masked + 1).tolist()
    for seed in range(20):
        ratios = mask_ratios(n_masked, (0.1, 0.5), _gen(seed))
        assert len(ratios) == n_masked
        for i, ratio in enumerate(ratios):
            assert edges[i] <= ratio <= edges[i + 1]
    assert mask_ratios(0, (0.1, 0.5), _gen(0)) == []


def test_masked_patches_per_batch_vary_little() -> None:
    """DINOv2's point of the slots: 64 crops of 14 x 14, 32 masked. Ratios i.i.d. uniform in
    0.1..0.5 would give a std of ~sqrt(32) * 196 * 0.4 / sqrt(12) = 128 patches per batch."""
    totals = [
        int(generate_ibot_masks(64, (14, 14), generator=_gen(seed)).sum()) for seed in range(60)
    ]
    per_batch = torch.tensor(totals, dtype=torch.float64)
    assert float(per_batch.std()) < 10.0
    # mean: 32 crops at the slot midpoints (mean ratio 0.3), minus ~0.5 per crop from the floor
    assert float(per_batch.mean()) == pytest.approx(32 * 196 * 0.3 - 16, abs=8)


def test_ratios_cover_the_range() -> None:
    masks = generate_ibot_masks(400, (14, 14), generator=_gen(1))
    ratios = masks.sum(1)[masks.any(1)].float() / 196
    assert ratios.min() < 0.11 and ratios.max() > 0.49
    assert int(masks.any(1).sum()) == 200


def test_blocks_are_contiguous() -> None:
    mask = block_mask((14, 14), 60, generator=_gen(2))
    assert int(mask.sum()) == 60
    # most masked patches have a masked 4-neighbour (random masking would give ~50%)
    padded = F.pad(mask.float()[None, None], (1, 1, 1, 1))
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])[None, None]
    neighbours = F.conv2d(padded, kernel)[0, 0]
    assert float((neighbours[mask] > 0).float().mean()) > 0.9


def test_exact_count_and_probabilities() -> None:
    assert int(block_mask((3, 3), 9, generator=_gen(0)).sum()) == 9
    assert int(block_mask((3, 3), 0, generator=_gen(0)).sum()) == 0
    # blocks of at most half the grid (DINOv2's cap) still reach a larger target
    assert int(block_mask((8, 8), 50, generator=_gen(0), max_block_patches=32).sum()) == 50
    assert not generate_ibot_masks(8, (4, 4), mask_probability=0.0, generator=_gen(0)).any()
    assert generate_ibot_masks(8, (4, 4), mask_probability=1.0, generator=_gen(0)).any(1).all()


def test_invalid_settings_raise() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        generate_ibot_masks(4, (4, 4), ratio_range=(0.6, 0.2))
    with pytest.raises(ConfigError, match="probability"):
        generate_ibot_masks(4, (4, 4), mask_probability=1.5)
