"""The recipe's photometric operations on a batch of views, one parameter per view, any device.

Tensors are ``(N, 3, H, W)`` float32 holding byte values in ``[0, 255]`` (as the CPU
path's :mod:`dinodiag.augment.photometric`); every operation takes one parameter per view
(``(N,)`` tensors) and returns a new tensor. The arithmetic follows Pillow, as the
CPU path does, so the two backends stay interchangeable:

- brightness / contrast / saturation: ``Image.blend`` in float32, truncated (bit-exact);
- hue: Pillow's 8-bit HSV round trip with torchvision's truncated hue offset (bit-exact);
- grayscale: ``convert("L")`` (bit-exact);
- Gaussian blur: Pillow's six extended box passes in integer arithmetic (bit-exact);
- solarize (bit-exact).

``tests/augment/gpu/test_multicrop.py`` checks them against :mod:`dinodiag.augment.photometric`.
"""

from __future__ import annotations

import numpy as np
import torch

from dinodiag.augment import photometric


def luminance(views: torch.Tensor) -> torch.Tensor:
    """Pillow's ``convert("L")`` of ``(N, 3, H, W)`` -> ``(N, 1, H, W)`` (exact in float32)."""
    weights = torch.tensor((19595.0, 38470.0, 7471.0), device=views.device).view(1, 3, 1, 1)
    luma = (views * weights).sum(dim=1, keepdim=True)  # integers below 2**24: exact
    return torch.floor((luma + 32768.0) / 65536.0)


def _blend(degenerate: torch.Tensor, views: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``Image.blend(degenerate, view, factor)`` per view: ``trunc(d + f (x - d))``, clipped."""
    out = (views - degenerate) * factor.view(-1, 1, 1, 1).to(torch.float32)
    return torch.floor((out + degenerate).clamp_(0.0, 255.0))


def adjust_brightness(views: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(torch.zeros((), device=views.device), views, factor)


def adjust_contrast(views: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    luma = luminance(views)
    mean = torch.floor(luma.to(torch.float64).mean(dim=(1, 2, 3), keepdim=True) + 0.5)
    return _blend(mean.to(torch.float32), views, factor)


def adjust_saturation(views: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return _blend(luminance(views), views, factor)


def to_grayscale(views: torch.Tensor) -> torch.Tensor:
    return luminance(views).expand(-1, 3, -1, -1).contiguous()


def solarize(views: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.where(views >= threshold, 255.0 - views, views)


_TABLES: dict[str, dict[str, torch.Tensor]] = {}


def _hsv_tables(device: torch.device) -> dict[str, torch.Tensor]:
    """The CPU path's verified per-byte HSV constants, as tensors on ``device`` (cached)."""
    key = str(device)
    if key not in _TABLES:
        tables = {
            name: torch.as_tensor(value, device=device) for name, value in photometric._HSV.items()
        }
        tables["pick"] = torch.as_tensor(photometric._SECTOR_PICK, device=device)[
            :, tables["sector"]
        ]  # (3, 256)
        _TABLES[key] = tables
    return _TABLES[key]


def adjust_hue(views: torch.Tensor, hue_factor: torch.Tensor) -> torch.Tensor:
    """Pillow's 8-bit HSV round trip with the hue byte shifted by ``int(hue * 255)``.

    The same arithmetic as :func:`dinodiag.augment.photometric.adjust_hue` (see its docstrings).
    """
    r, g, b = views[:, 0], views[:, 1], views[:, 2]
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    span = maxc - minc
    grey = span == 0
    ratio = (maxc + maxc + minc - r - g - b) / (span + grey.to(span.dtype))
    not_r = r != maxc
    g_max = (g == maxc) & not_r
    b_max = not_r & (g != maxc)
    odd = (g > r) ^ (b > g) ^ (b > r)
    sign = odd.to(torch.float32) * 2.0 - 1.0
    base = g_max.to(torch.float32) * 2.0 + b_max.to(torch.float32) * 4.0 - sign
    hue = (base + sign * ratio).to(torch.float64) / 6.0 + 1.0
    hue = hue - (hue >= 1.0).to(torch.float64)
    hue = hue.to(torch.float32).to(torch.float64) * 255.0
    hue_byte = hue.to(torch.int64) * (~grey).to(torch.int64)
    sat = (span / (maxc + (maxc == 0).to(maxc.dtype))).to(torch.float64) * 255.0
    sat_byte = sat.to(torch.int64)
    shift = torch.trunc(hue_factor.to(torch.float64) * 255).to(torch.int64).view(-1, 1, 1)
    hue_byte = (hue_byte + shift) & 255
    tables = _hsv_tables(views.device)
    low = torch.floor(maxc * tables["low"][sat_byte] + 0.5)
    middle = torch.floor(maxc * tables["middle"][hue_byte * 256 + sat_byte] + 0.5)
    candidates = torch.stack([maxc, low, middle], dim=1)  # (N, 3, H, W): v, p, q-or-t
    index = tables["pick"][:, hue_byte].permute(1, 0, 2, 3)  # (N, 3, H, W): candidate per channel
    return torch.gather(candidates, 1, index)


def _box_taps(sigma: torch.Tensor) -> torch.Tensor:
    """Pillow's extended-box tap weights per view, in 2**-24 units -> int64 ``(N, 2R + 3)``.

    Tap ``d`` (from ``-R - 1`` to ``R + 1``, ``R`` the largest whole radius of the batch)
    weighs ``inner`` when ``|d| <= r``, ``edge`` when ``|d| = r + 1``, 0 beyond, with
    the view's own ``r``, ``inner``, ``edge`` from :func:`dinodiag.augment.photometric.box_weights`.
    """
    radius = photometric.box_radius_for_sigma(np.atleast_1d(sigma.numpy()))
    whole, inner, edge = (torch.from_numpy(v).view(-1, 1) for v in photometric.box_weights(radius))
    reach = int(whole.max()) + 1
    distance = torch.arange(-reach, reach + 1).abs().view(1, -1)
    zero = torch.zeros((), dtype=torch.int64)
    return torch.where(distance <= whole, inner, torch.where(distance == whole + 1, edge, zero))


def gaussian_blur(views: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Pillow's ``GaussianBlur(radius=sigma)`` per view, bit-exact.

    Three box passes along the width, then three along the height, each in integer
    arithmetic ``(sum(tap * pixel) + 2**23) >> 24`` with edge pixels repeated, as
    Pillow's C code (see :func:`dinodiag.augment.photometric.gaussian_blur`); ``sigma`` is ``(N,)``.
    """
    taps = _box_taps(sigma.cpu()).to(views.device)  # (N, 2R + 3)
    reach = (taps.shape[1] - 1) // 2
    data = views.to(torch.int64)
    for dim in (3, 2):
        length = data.shape[dim]
        clamped = (torch.arange(-reach, length + reach, device=views.device)).clamp(0, length - 1)
        for _ in range(3):
            padded = data.index_select(dim, clamped)
            acc = torch.zeros_like(data)
            for tap in range(taps.shape[1]):
                acc += taps[:, tap].view(-1, 1, 1, 1) * padded.narrow(dim, tap, length)
            data = (acc + (1 << 23)) >> 24
    return data.to(torch.float32)


_JITTER_FUNCTIONS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(
    views: torch.Tensor,
    apply: torch.Tensor,
    order: torch.Tensor,
    factors: torch.Tensor,
    enabled: torch.Tensor,
) -> torch.Tensor:
    """ColorJitter with a random order per view.

    ``apply`` (N,) bool: jitter this view at all; ``order`` (N, 4): op indices (into
    :data:`dinodiag.augment.gpu.params.JITTER_ORDER`) in application order; ``factors``
    (N, 4): the factor of each op; ``enabled`` (N, 4) bool: op strength > 0 (a zero
    strength turns it off, as in ColorJitter). At step ``k`` the views whose k-th op
    is ``o`` are processed together. Keep the parameters on the CPU: the row
    selection then never waits for the device.
    """
    out = views.clone()
    for step in range(4):
        for op, function in enumerate(_JITTER_FUNCTIONS):
            rows = (apply & (order[:, step] == op) & enabled[:, op]).nonzero().flatten()
            if rows.numel():
                on_device = rows.to(views.device, non_blocking=True)
                factor = factors[rows, op].to(views.device, non_blocking=True)
                out[on_device] = function(out[on_device], factor)
    return out
