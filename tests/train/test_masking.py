"""iBOT block masks: deterministic, half of the crops, ratio in range, blocks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dinodiag.errors import ConfigError
from dinodiag.train.masking import block_mask, generate_ibot_masks


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_deterministic_with_a_generator() -> None:
    a = generate_ibot_masks(16, (8, 8), generator=_gen(3))
    b = generate_ibot_masks(16, (8, 8), generator=_gen(3))
    c = generate_ibot_masks(16, (8, 8), generator=_gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("grid", [(2, 2), (4, 4), (8, 8), (14, 14)])
def test_half_the_crops_masked_with_ratio_in_range(grid: tuple[int, int]) -> None:
    n_patches = grid[0] * grid[1]
    masks = generate_ibot_masks(
        32, grid, mask_probability=0.5, ratio_range=(0.1, 0.5), generator=_gen(0)
    )
    assert masks.shape == (32, n_patches) and masks.dtype == torch.bool
    counts = masks.sum(dim=1)
    assert int((counts > 0).sum()) == 16
    ratios = counts[counts > 0].float() / n_patches
    tolerance = 0.5 / n_patches  # the count is rounded to whole patches
    # at least one patch per masked crop, even when 10% of the grid is under one patch
    low = min(0.1 - tolerance, 1 / n_patches)
    assert (ratios >= low).all() and (ratios <= max(0.5 + tolerance, 1 / n_patches)).all()


def test_ratios_cover_the_range() -> None:
    masks = generate_ibot_masks(400, (14, 14), generator=_gen(1))
    ratios = masks.sum(1)[masks.any(1)].float() / 196
    assert ratios.min() < 0.15 and ratios.max() > 0.45


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
    assert not generate_ibot_masks(8, (4, 4), mask_probability=0.0, generator=_gen(0)).any()
    assert generate_ibot_masks(8, (4, 4), mask_probability=1.0, generator=_gen(0)).any(1).all()


def test_invalid_settings_raise() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        generate_ibot_masks(4, (4, 4), ratio_range=(0.6, 0.2))
    with pytest.raises(ConfigError, match="probability"):
        generate_ibot_masks(4, (4, 4), mask_probability=1.5)
