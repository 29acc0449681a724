"""Block masks for iBOT (BEiT-style rectangular blocks), deterministic with a torch.Generator.

As DINOv2 masks a batch: ``int(n * mask_probability)`` of the n global crops get a mask (half by
default), and their mask ratios are spread evenly over ``ratio_range`` (0.1, 0.5): masked crop
``i`` of ``m`` draws its ratio in the i-th of m equal slots of the range, so the number of
masked patches per batch varies little from batch to batch (i.i.d. ratios would vary it ~30x
more). A crop's masked count is ``int(N * ratio)``; the masks are then dealt to random crops.
Rectangles with random aspect ratios (0.3-3.3) of at most N / 2 patches are placed until the
count is reached; on tiny grids where rectangles cannot land exactly on the target, the last
few patches are taken at random next to the existing blocks (DINOv2's generator stops short of
the target there instead), so the count is always honoured.

    >>> g = torch.Generator().manual_seed(0)
    >>> masks = generate_ibot_masks(8, (8, 8), generator=g)   # (8, 64) bool
"""

from __future__ import annotations

import math

import torch

from dinodiag.errors import ConfigError

#: Attempts at placing one block before giving up on blocks for the rest of the image.
_BLOCK_ATTEMPTS = 10


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _randint(generator: torch.Generator | None, low: int, high: int) -> int:
    """Integer in [low, high] (inclusive)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


def block_mask(
    grid: tuple[int, int],
    num_masked: int,
    generator: torch.Generator | None = None,
    min_block_patches: int = 4,
    aspect_range: tuple[float, float] = (0.3, 1 / 0.3),
    max_block_patches: int | None = None,
) -> torch.Tensor:
    """One (h, w) bool mask with exactly ``min(num_masked, h * w)`` True patches.

    Rectangles of area in [min_block_patches, min(remaining, max_block_patches)] patches and
    aspect ratio log-uniform in ``aspect_range`` are placed at random until the count is
    reached; the remainder (if blocks cannot fit) is filled with random patches, preferring
    neighbours of masked patches. ``max_block_patches`` defaults to no limit.
    """
    h, w = grid
    target = max(0, min(num_masked, h * w))
    largest = max(1, max_block_patches) if max_block_patches is not None else h * w
    mask = torch.zeros(h, w, dtype=torch.bool)
    log_lo, log_hi = math.log(aspect_range[0]), math.log(aspect_range[1])
    count = 0
    while count < target:
        remaining = target - count
        block_limit = min(remaining, largest)
        placed = False
        for _ in range(_BLOCK_ATTEMPTS):
            area = _uniform(generator, min(min_block_patches, block_limit), block_limit)
            aspect = math.exp(_uniform(generator, log_lo, log_hi))
            bh = min(h, max(1, round(math.sqrt(area * aspect))))
            bw = min(w, max(1, round(math.sqrt(area / aspect))))
            top = _randint(generator, 0, h - bh)
            left = _randint(generator, 0, w - bw)
            block = mask[top : top + bh, left : left + bw]
            new = bh * bw - int(block.sum())
            if 0 < new <= block_limit:
                block.fill_(True)
                count += new
                placed = True
                break
        if not placed:
            break
    if count < target:
        _fill_remaining(mask, target - count, generator)
    return mask


def _fill_remaining(mask: torch.Tensor, n: int, generator: torch.Generator | None) -> None:
    """Mask ``n`` more patches at random, neighbours of masked patches first (in place)."""
    for _ in range(n):
        padded = torch.nn.functional.pad(mask.float()[None, None], (1, 1, 1, 1))
        neighbours = torch.nn.functional.max_pool2d(padded, 3, stride=1)[0, 0].bool()
        candidates = (neighbours & ~mask).flatten().nonzero().flatten()
        if candidates.numel() == 0:
            candidates = (~mask).flatten().nonzero().flatten()
        pick = candidates[_randint(generator, 0, candidates.numel() - 1)]
        mask.view(-1)[pick] = True


def mask_ratios(
    n_masked: int, ratio_range: tuple[float, float], generator: torch.Generator | None = None
) -> list[float]:
    """``n_masked`` mask ratios spread evenly over ``ratio_range``: ratio ``i`` is uniform in
    the i-th of ``n_masked`` equal slots of the range (DINOv2's ``linspace`` slots), ascending."""
    lo, hi = ratio_range
    edges = torch.linspace(lo, hi, n_masked + 1).tolist()
    return [_uniform(generator, edges[i], edges[i + 1]) for i in range(n_masked)]


def generate_ibot_masks(
    n_crops: int,
    grid: tuple[int, int],
    mask_probability: float = 0.5,
    ratio_range: tuple[float, float] = (0.1, 0.5),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masks for ``n_crops`` global crops (view-major, like the crops): (n_crops, h * w) bool.

    Args:
        n_crops: number of global crops in the step (G * B).
        grid: patch grid (h, w) of a global crop (crop size // patch size).
        mask_probability: fraction of crops that get a mask: ``int(n_crops * p)`` crops (floor,
            as DINOv2), chosen at random; the others are all False.
        ratio_range: the masked crops' ratios of masked patches, spread evenly over this range
            (:func:`mask_ratios`); a crop masks ``int(N * ratio)`` of its N patches.
        generator: torch.Generator for reproducible masks.
    """
    lo, hi = ratio_range
    if not 0.0 <= lo <= hi <= 1.0:
        raise ConfigError(
            f"iBOT mask ratio range must satisfy 0 <= min <= max <= 1, got {ratio_range} "
            "(DINOv2 uses (0.1, 0.5))."
        )
    if not 0.0 <= mask_probability <= 1.0:
        raise ConfigError(
            f"iBOT mask probability must be in [0, 1], got {mask_probability} (DINOv2: 0.5)."
        )
    h, w = grid
    n_patches = h * w
    masks = torch.zeros(n_crops, n_patches, dtype=torch.bool)
    n_masked_crops = int(n_crops * mask_probability)
    ratios = mask_ratios(n_masked_crops, ratio_range, generator)
    chosen = torch.randperm(n_crops, generator=generator)[:n_masked_crops]
    largest = int(0.5 * n_patches)  # DINOv2: one block covers at most half the grid
    for index, ratio in zip(chosen.tolist(), ratios, strict=True):
        num = int(n_patches * ratio)
        masks[index] = block_mask(grid, num, generator, max_block_patches=largest).flatten()
    return masks
