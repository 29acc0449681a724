"""PIL's photometric operations re-done on planar numpy arrays, pixel for pixel.

The fast path of :class:`dinodiag.augment.pipeline.MultiCropPipeline` keeps a view as one
``float32`` array of shape ``(3, H, W)`` holding whole numbers in ``[0, 255]``
(what a uint8 RGB image holds) and applies the recipe's operations to it with a
handful of vectorised numpy calls each, instead of a PIL call chain with a
conversion, a ``split`` and a ``merge`` per operation.

Every function reproduces the PIL operation that torchvision's ``ColorJitter`` /
``RandomGrayscale`` / ``RandomSolarize`` and ``ImageFilter.GaussianBlur`` apply to
a PIL image, including its rounding (the same float32 / float64 / integer
arithmetic as Pillow's C code), so the output is the same uint8 image:

- :func:`adjust_brightness` / :func:`adjust_contrast` / :func:`adjust_saturation`:
  ``ImageEnhance`` = ``Image.blend(degenerate, image, factor)`` (float32, truncated);
- :func:`adjust_hue`: RGB -> HSV (8-bit) -> hue byte + ``int(hue * 255)`` -> RGB;
- :func:`to_grayscale`: ``convert("L")`` (ITU-R 601-2, 16-bit fixed point);
- :func:`gaussian_blur`: Pillow's three-pass extended box blur (exact, integer);
- :func:`solarize`: ``ImageOps.solarize``.

``tests/augment/test_photometric.py`` checks each against PIL on random images.
"""

from __future__ import annotations

import numpy as np

# ITU-R 601-2 luma weights in 16-bit fixed point, as Pillow's convert("L").
_LUMA_WEIGHTS = (19595.0, 38470.0, 7471.0)
_BLUR_PASSES = 3  # Pillow approximates a Gaussian with three box blurs per direction


def from_uint8(array: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 (any strides) -> ``(3, H, W)`` float32, contiguous."""
    return np.ascontiguousarray(np.moveaxis(array, -1, 0), dtype=np.float32)


def luminance(planes: np.ndarray) -> np.ndarray:
    """PIL ``convert("L")``: ``(3, H, W)`` -> ``(H, W)`` float32 of whole numbers.

    ``(19595 r + 38470 g + 7471 b + 32768) >> 16``; every partial sum is an integer
    below 2**24, so float32 holds it exactly.
    """
    luma = planes[0] * np.float32(_LUMA_WEIGHTS[0])
    luma += planes[1] * np.float32(_LUMA_WEIGHTS[1])
    luma += planes[2] * np.float32(_LUMA_WEIGHTS[2])
    luma += np.float32(32768.0)
    luma *= np.float32(1.0 / 65536.0)
    return np.floor(luma, out=luma)


def _blend(degenerate: np.ndarray | float, planes: np.ndarray, factor: float) -> np.ndarray:
    """``Image.blend(degenerate, image, factor)``: ``trunc(d + f * (x - d))``, float32, clipped."""
    alpha = np.float32(factor)  # Pillow's C function takes the factor as a C float
    base = np.float32(degenerate) if isinstance(degenerate, float) else degenerate
    out = planes - base
    out *= alpha
    out += base
    np.minimum(out, np.float32(255.0), out=out)  # Pillow clips, then truncates
    np.maximum(out, np.float32(0.0), out=out)
    return np.floor(out, out=out)


def adjust_brightness(planes: np.ndarray, factor: float) -> np.ndarray:
    """``ImageEnhance.Brightness(img).enhance(factor)``: blend with black."""
    return _blend(0.0, planes, factor)


def adjust_contrast(planes: np.ndarray, factor: float) -> np.ndarray:
    """``ImageEnhance.Contrast(img).enhance(factor)``: blend with the rounded mean grey level."""
    luma = luminance(planes)
    mean = int(float(luma.sum(dtype=np.float64)) / luma.size + 0.5)
    return _blend(float(mean), planes, factor)


def adjust_saturation(planes: np.ndarray, factor: float) -> np.ndarray:
    """``ImageEnhance.Color(img).enhance(factor)``: blend with the image's own grey version."""
    return _blend(luminance(planes)[None], planes, factor)


def to_grayscale(planes: np.ndarray) -> np.ndarray:
    """``img.convert("L").convert("RGB")``: the luma replicated on three planes."""
    luma = luminance(planes)
    return np.repeat(luma[None], 3, axis=0)


def solarize(planes: np.ndarray, threshold: int) -> np.ndarray:
    """``ImageOps.solarize(img, threshold)``: values >= threshold become ``255 - value``."""
    inverted = np.greater_equal(planes, np.float32(threshold)).astype(np.float32)
    # x + m * (255 - 2x): exact for whole numbers, and no branchy select
    delta = np.float32(255.0) - np.float32(2.0) * planes
    delta *= inverted
    delta += planes
    return delta


# --------------------------------------------------------------------------- hue


def hue_shift_byte(hue_factor: float) -> int:
    """The hue byte offset torchvision adds: ``int32(hue * 255)`` (truncated) modulo 256."""
    return int(np.int32(hue_factor * 255)) % 256


def _rgb_to_hsv(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pillow's ``convert("HSV")`` on ``(3, H, W)`` -> hue and saturation bytes (intp), value.

    Pillow computes, with ``cr = max - min`` and ``xc = (max - x) / cr`` as C floats:
    ``h = bc - gc`` (r max), ``2 + rc - bc`` (g max), ``4 + gc - rc`` (b max), then
    ``h = fmod(h / 6 + 1, 1)`` (double, stored to a float) and ``int(h * 255.0)``.
    In each case one ratio is exactly 1 (the minimum channel), which leaves
    ``h = k + s * (max - mid) / cr`` with a single float rounding as in C, where the
    sign ``s`` is the parity of the channels' order and ``k = 2 * (index of max) - s``.
    """
    r, g, b = planes[0], planes[1], planes[2]
    maxc = np.maximum(np.maximum(r, g), b)
    minc = np.minimum(np.minimum(r, g), b)
    span = maxc - minc  # "cr"; 0 for grey pixels (hue = saturation = 0)
    grey = span == 0
    ratio = maxc + maxc  # (max - mid) with mid = r + g + b - max - min
    ratio += minc
    ratio -= r
    ratio -= g
    ratio -= b
    ratio /= span + grey  # a float division as in C; grey pixels are zeroed below
    not_r = r != maxc  # Pillow tests r, then g, then b for the maximum
    g_max = g == maxc
    b_max = not_r & ~g_max
    g_max &= not_r
    odd = (g > r) ^ (b > g) ^ (b > r)  # parity of the descending order of (r, g, b)
    sign = odd.astype(np.float32)
    sign *= np.float32(2.0)
    sign -= np.float32(1.0)
    hue = g_max * np.float32(2.0)
    hue += b_max * np.float32(4.0)
    hue -= sign  # k = 2 * index of the maximum - s
    ratio *= sign
    hue += ratio  # one float rounding
    hue64 = hue.astype(np.float64)
    hue64 /= 6.0
    hue64 += 1.0
    hue64 -= hue64 >= 1.0  # fmod(x, 1) for x in [0, 2): exact
    hue64 = hue64.astype(np.float32).astype(np.float64)
    hue64 *= 255.0
    hue_byte = hue64.astype(np.intp)  # truncation, values >= 0
    hue_byte *= ~grey
    sat = span / (maxc + (maxc == 0))  # float32 division, as Pillow's C float
    sat64 = sat.astype(np.float64)
    sat64 *= 255.0
    return hue_byte, sat64.astype(np.intp), maxc


def _hsv_tables() -> dict[str, np.ndarray]:
    """Constants of Pillow's HSV -> RGB conversion, per hue byte and saturation byte.

    Pillow computes, in C: ``i = floor(h * 6 / 255)``, ``f = h * 6 / 255 - i`` (a
    float), ``fs = s / 255`` (a float), ``p = round(v (1 - fs))``, ``q = round(v (1 - fs
    f))`` with ``fs f`` a float product, ``t = round(v (1 - fs (1 - f)))`` in double,
    and outputs a permutation of ``(v, p, q)`` (odd sectors) or ``(v, p, t)`` (even).
    With the factors ``1 - fs`` and ``1 - fs f`` / ``1 - fs (1 - f)`` tabulated per byte
    as float32, ``floor(v * factor + 0.5)`` in float32 gives Pillow's byte for every
    one of the 2**24 (h, s, v) combinations (checked exhaustively).
    """
    byte = np.arange(256, dtype=np.float64)
    h6 = byte * 6.0 / 255.0  # double, as in C
    sector = np.floor(h6)
    frac = (h6 - sector).astype(np.float32)  # f, a C float, per hue byte
    fs = (byte / 255.0).astype(np.float32)  # fs, a C float, per saturation byte
    sector = np.remainder(sector, 6.0).astype(np.intp)  # i % 6 (i == 6 only for h == 255)
    one_minus_q = np.float32(1.0) - fs[None, :] * frac[:, None]  # (hue, sat)
    one_minus_t = 1.0 - fs.astype(np.float64)[None, :] * (1.0 - frac.astype(np.float64))[:, None]
    middle = np.where((sector % 2 == 1)[:, None], one_minus_q, one_minus_t.astype(np.float32))
    return {
        "sector": sector,
        "low": np.float32(1.0) - fs,  # per saturation byte: p = round(v * low)
        "middle": np.ascontiguousarray(middle, dtype=np.float32).ravel(),  # per hue * 256 + sat
    }


_HSV = _hsv_tables()
# Output channel -> candidate (0 = v, 1 = p, 2 = q or t) for each sector i % 6 (Pillow's switch).
_SECTOR_PICK = np.array([[0, 2, 1, 1, 2, 0], [2, 0, 0, 2, 1, 1], [1, 1, 2, 0, 0, 2]], dtype=np.intp)
_PICK_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _pick_offsets(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets (3, 256), positions (count,))``: flat index of channel c's source candidate."""
    cached = _PICK_CACHE.get(count)
    if cached is None:
        offsets = np.ascontiguousarray(_SECTOR_PICK[:, _HSV["sector"]] * count)  # (3, 256)
        cached = (offsets, np.arange(count, dtype=np.intp))
        if len(_PICK_CACHE) < 64:  # a handful of view sizes in practice
            _PICK_CACHE[count] = cached
    return cached


def _hsv_to_rgb(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """Pillow's ``convert("RGB")`` from HSV (``(H, W)``: hue, sat bytes as intp; val float32).

    Returns ``(3, H, W)`` float32. See :func:`_hsv_tables` for the arithmetic.
    """
    shape = hue.shape
    count = hue.size
    hue_i = hue.ravel()
    val_f = val.ravel()
    candidates = np.empty((3, count), dtype=np.float32)  # v, p, q-or-t
    candidates[0] = val_f
    low = candidates[1]
    np.multiply(val_f, np.take(_HSV["low"], sat.ravel()), out=low)
    low += np.float32(0.5)
    np.floor(low, out=low)
    index = hue_i * 256
    index += sat.ravel()
    middle = candidates[2]
    np.multiply(val_f, np.take(_HSV["middle"], index), out=middle)
    middle += np.float32(0.5)
    np.floor(middle, out=middle)
    offsets, positions = _pick_offsets(count)
    flat = candidates.ravel()
    out = np.empty((3, count), dtype=np.float32)
    for channel in range(3):  # one gather per channel (contiguous indices: fastest in numpy)
        source = np.take(offsets[channel], hue_i)
        source += positions
        np.take(flat, source, out=out[channel])
    return out.reshape(3, *shape)


def adjust_hue(planes: np.ndarray, hue_factor: float) -> np.ndarray:
    """torchvision's ``adjust_hue`` on a PIL image: HSV round trip with the hue byte shifted.

    The round trip quantises hue and saturation to bytes even when the shift is 0,
    as torchvision's does.
    """
    hue, sat, val = _rgb_to_hsv(planes)
    hue += hue_shift_byte(hue_factor)
    hue &= 255
    return _hsv_to_rgb(hue, sat, val)


# --------------------------------------------------------------------------- blur


def box_radius_for_sigma(sigma: float | np.ndarray) -> float | np.ndarray:
    """Pillow's extended-box radius for a Gaussian of ``sigma`` (float32 arithmetic as in C).

    Accepts a scalar or an array of sigmas (the batched backend draws many at once).
    """
    f32 = np.float32
    radius = np.asarray(sigma, dtype=f32)
    sigma2 = radius * radius / f32(_BLUR_PASSES)
    length = np.sqrt(12.0 * sigma2.astype(np.float64) + 1.0).astype(f32)  # double sqrt, to float
    whole = np.floor((length.astype(np.float64) - 1.0) / 2.0).astype(f32)
    a = (f32(2) * whole + f32(1)) * (whole * (whole + f32(1)) - f32(3) * sigma2)
    a = a / (f32(6) * (sigma2 - (whole + f32(1)) * (whole + f32(1))))
    result = whole + a
    return float(result) if result.ndim == 0 else result


def box_weights(radius: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(whole radius, inner weight, edge weight)`` in 2**-24 units, as Pillow computes them.

    Vectorised over an array of (float32) radii; int64 arrays of the same shape.
    """
    radius = np.asarray(radius, dtype=np.float32)
    whole = radius.astype(np.int64)  # (int) truncation
    inner = (np.float32(1 << 24) / (radius * np.float32(2) + np.float32(1))).astype(np.int64)
    edge = ((1 << 24) - (whole * 2 + 1) * inner) // 2
    return whole, inner, edge


def _box_weights(radius: float) -> tuple[int, int, int]:
    whole, inner, edge = box_weights(radius)
    return int(whole), int(inner), int(edge)


def _box_passes(lines: np.ndarray, whole: int, inner: int, edge: int) -> np.ndarray:
    """Pillow's box passes along axis 1 of ``(3, L, M)`` (any dtype) -> uint32 ``(3, L, M)``.

    Each pass: ``out[x] = (inner * sum(in[x-r..x+r]) + edge * (in[x-r-1] + in[x+r+1])
    + 2**23) >> 24`` with indices clamped to the line (Pillow repeats edge pixels),
    in exact integer arithmetic. The lines live in buffers with ``r + 1`` margin rows
    at each end, refilled with the edge rows before every pass, so every tap is a
    shifted slice of whole contiguous rows.
    """
    channels, size, width = lines.shape
    reach = whole + 1
    src = np.empty((channels, size + 2 * reach, width), dtype=np.uint32)
    dst = np.empty_like(src)
    src[:, reach : reach + size] = lines
    far = np.empty((channels, size, width), dtype=np.uint32)
    for _ in range(_BLUR_PASSES):
        src[:, :reach] = src[:, reach : reach + 1]
        src[:, reach + size :] = src[:, reach + size - 1 : reach + size]
        bulk = dst[:, reach : reach + size]
        if whole == 0:  # the window is the pixel itself
            np.multiply(src[:, 1 : 1 + size], np.uint32(inner), out=bulk)
        else:
            np.add(src[:, 1 : 1 + size], src[:, 2 : 2 + size], out=bulk)
            for offset in range(3, 2 * whole + 2):
                bulk += src[:, offset : offset + size]
            bulk *= np.uint32(inner)
        np.add(src[:, :size], src[:, 2 * reach : 2 * reach + size], out=far)
        far *= np.uint32(edge)
        bulk += far
        bulk += np.uint32(1 << 23)
        bulk >>= np.uint32(24)
        src, dst = dst, src
    return src[:, reach : reach + size]


def gaussian_blur(planes: np.ndarray, sigma: float) -> np.ndarray:
    """``img.filter(ImageFilter.GaussianBlur(radius=sigma))`` on ``(3, H, W)`` planes.

    Pillow's algorithm exactly: three passes of an extended box blur (fractional
    radius from :func:`box_radius_for_sigma`) horizontally, then three vertically,
    each pass rounded to a byte, edges repeated.
    """
    radius = box_radius_for_sigma(sigma)
    if radius == 0:
        return planes.copy()
    whole, inner, edge = _box_weights(radius)
    across = _box_passes(planes.transpose(0, 2, 1), whole, inner, edge)  # rows blurred, (3, W, H)
    down = _box_passes(across.transpose(0, 2, 1), whole, inner, edge)  # then columns, (3, H, W)
    return down.astype(np.float32)
