"""Crop-then-resize of a batch with one box per image, as two matrix products on the device.

An antialiased resize is separable: each output row is a weighted sum of input rows, each
output column of input columns. For a crop box the weights are Pillow's (and torch's
antialiased resize's) filter taps over the box's pixels only (crop first, as torchvision's
RandomResizedCrop: the filter never reads outside the box), so one view is
``Wy (S, H) @ image (H, W) @ Wx (W, S)`` per channel, with per-image weight matrices, and a
whole batch is two batched matmuls. The passes are rounded to bytes in between, in the order
the CPU pipeline runs them (:meth:`dinodiag.augment.pipeline.MultiCropPipeline._crop_resize`:
the horizontal pass first, unless the height shrinks by more than twice as many pixels as the
width), so the views are within a grey level of the CPU path's: the same filter, the same
rounding points, float arithmetic instead of fixed point.

Shapes: ``source (B, 3, H, W)`` float32 of byte values, ``box (B, 4)`` (left, top, width,
height in pixels), output ``(B, 3, S, S)`` float32 of byte values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from dinodiag.errors import ConfigError

#: Filter support (in input pixels at scale 1) of the resize filters the backend offers.
SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic with a = -0.5, Pillow's (and torch's antialiased) bicubic filter."""
    a = -0.5
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def _triangle(x: torch.Tensor) -> torch.Tensor:
    return (1.0 - x.abs()).clamp_(min=0.0)


FILTERS = {"bicubic": _bicubic, "bilinear": _triangle}


def check_filter(interpolation: str) -> str:
    """The filter name, or :class:`ConfigError` for one the backend does not offer."""
    if interpolation not in FILTERS:
        raise ConfigError(
            f"interpolation = {interpolation!r} is not available on the on-device backend: "
            f"use one of {', '.join(FILTERS)}, or make the views with the CPU pipeline, which "
            "offers Pillow's other filters (train --augment-device cpu)."
        )
    return interpolation


def resize_weights(
    start: torch.Tensor,
    length: torch.Tensor,
    in_size: int,
    out_size: int,
    interpolation: str,
    reach: int | None = None,
) -> torch.Tensor:
    """Per-image weights of one axis: ``(B, out_size, in_size)`` float32, rows summing to 1.

    ``start`` / ``length`` (B,): the box along the axis, in input pixels. As Pillow's
    ``precompute_coeffs`` on the cropped image: output pixel ``o`` is centred at
    ``(o + 0.5) * scale`` in the box (``scale = length / out_size``), the filter is stretched
    by ``max(scale, 1)`` (antialiasing), its taps are the box pixels in
    ``[int(centre - support + 0.5), int(centre + support + 0.5))``, normalised. The taps are
    computed on the band (``reach`` >= the most taps of a row, from the CPU boxes: no device
    round trip) and scattered into the dense matrix.
    """
    device = start.device
    length = length.to(torch.float64).view(-1, 1, 1)
    scale = length / out_size
    stretch = scale.clamp(min=1.0)
    support = SUPPORT[interpolation] * stretch
    if reach is None:
        reach = int(2 * SUPPORT[interpolation] * float(stretch.max())) + 2
    out = torch.arange(out_size, device=device, dtype=torch.float64).view(1, -1, 1)
    centre = (out + 0.5) * scale  # (B, S, 1), in box pixels
    low = torch.floor(centre - support + 0.5).clamp(min=0.0)
    high = torch.minimum(torch.floor(centre + support + 0.5), length)
    pixel = low + torch.arange(reach, device=device, dtype=torch.float64)  # (B, S, reach)
    taps = pixel < high
    band = FILTERS[interpolation]((pixel - centre + 0.5) / stretch) * taps
    band = band / band.sum(dim=2, keepdim=True)
    index = (pixel + start.to(torch.float64).view(-1, 1, 1)).clamp(max=in_size - 1).long()
    dense = torch.zeros((index.shape[0], out_size, in_size), device=device)
    return dense.scatter_add_(2, index, band.to(torch.float32))


def _reach(lengths: torch.Tensor, size: int, interpolation: str) -> int:
    """Most taps of one output pixel over CPU box lengths (B,)."""
    stretch = max(1.0, float(lengths.max()) / size)
    return int(2 * SUPPORT[interpolation] * stretch) + 2


@contextlib.contextmanager
def _exact_float32(device: torch.device) -> Iterator[None]:
    """Full fp32 matmuls (no TF32) inside: the sums must round like the CPU's."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def _to_bytes(values: torch.Tensor) -> torch.Tensor:
    """Round half up and clip to 0..255, as the fixed-point resize stores a pass."""
    return torch.floor(values + 0.5).clamp_(0.0, 255.0)


def crop_resize(
    source: torch.Tensor, box: torch.Tensor, size: int, interpolation: str = "bicubic"
) -> torch.Tensor:
    """Cut ``box`` (B, 4: left, top, w, h; CPU) out of each image of ``source`` and resize it
    to ``size`` x ``size``: ``(B, 3, H, W)`` -> ``(B, 3, size, size)`` byte values."""
    batch, _, height, width = source.shape
    device = source.device
    left, top, w, h = (column.to(device) for column in box.to(torch.float64).unbind(1))
    box_w, box_h = box[:, 2], box[:, 3]
    reach = _reach(torch.cat([box_w, box_h]), size, interpolation)
    across = resize_weights(left, w, width, size, interpolation, reach)  # (B, S, W)
    down = resize_weights(top, h, height, size, interpolation, reach)  # (B, S, H)
    # The CPU pipeline's pass order (decided on the CPU box: no device round trip).
    vertical_first = (box_h > size) & (box_h - size > 2 * (box_w - size))
    out = torch.empty((batch, 3, size, size), device=device, dtype=source.dtype)
    with _exact_float32(device):
        for first_down in (False, True):
            rows = (vertical_first == first_down).nonzero().flatten()
            if not rows.numel():
                continue
            pick = rows.to(device) if rows.numel() < batch else slice(None)
            images = source[pick]
            ax, dn = across[pick].unsqueeze(1), down[pick].unsqueeze(1)  # (b, 1, S, W / H)
            if first_down:
                half = _to_bytes(dn @ images)  # (b, 3, S, W)
                views = _to_bytes(half @ ax.transpose(-1, -2))  # (b, 3, S, S)
            else:
                half = _to_bytes(images @ ax.transpose(-1, -2))  # (b, 3, H, S)
                views = _to_bytes(dn @ half)
            out[pick] = views
    return out
