"""Robust image opening: every file either becomes a 3-channel RGB PIL image or a reason.

One function decides what a file is worth, for datasets and for files uploaded in
the app alike (:func:`load_image`, :func:`load_image_bytes`). What it handles:

- zero-byte files, non-images with image extensions, corrupt and truncated files:
  :class:`ImageLoadError` with the path and a sentence saying what is wrong;
- decompression bombs (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``): reported the
  same way; the global limit is read, never changed;
- EXIF orientation (phone photos): applied, so the pixels are upright;
- every PIL mode: grayscale (L, 1), palette (P, with transparency too), RGBA / LA / PA
  (composited on :data:`ALPHA_BACKGROUND`), CMYK / YCbCr, 16-bit (I;16*, scaled to 8-bit
  by /257 so that white stays white and mid-grey stays mid-grey), 32-bit int and float.

:func:`read_image_size` (a file) and :func:`read_image_size_bytes` (an upload) read
(width, height) from the header only, orientation applied.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from dinodiag.errors import DataError
from dinodiag.printable import printable

# File name endings that count as images (compared lower-case).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# Colour that transparent pixels become (RGBA, LA, PA, P with transparency): white, as
# an image viewer shows them; dropping alpha instead would expose arbitrary hidden colours.
ALPHA_BACKGROUND = (255, 255, 255)

# EXIF orientation values 5..8 swap width and height (rotations by 90 / 270 degrees).
_EXIF_ORIENTATION_TAG = 0x0112
_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


class ImageLoadError(DataError):
    """A file cannot be used as an image; ``path`` and ``reason`` are kept apart for reports."""

    def __init__(self, path: str, reason: str) -> None:
        path, reason = printable(path), printable(reason)  # undecodable bytes escaped
        super().__init__(f"{path}: {reason}")
        self.path = path  # the file (or upload name) that failed, as printed
        self.reason = reason  # human sentence, e.g. "empty file (0 bytes)"


def is_image_name(name: str) -> bool:
    """True when ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open ``path`` as a fully decoded RGB image (mode "RGB", EXIF orientation applied).

    Raises :class:`ImageLoadError` (a :class:`DataError`) naming the path and the reason
    when the file is missing, empty, not an image, corrupt, truncated or a decompression bomb.
    """
    name = str(path)
    try:
        size = os.path.getsize(name)
    except OSError as error:
        raise ImageLoadError(name, f"cannot read the file: {error.strerror or error}") from None
    if size == 0:
        raise ImageLoadError(name, "empty file (0 bytes)")
    try:
        with open(name, "rb") as handle:
            return _decode(handle, name)
    except OSError as error:  # the file vanished or became unreadable after the size check
        raise ImageLoadError(name, f"cannot read the file: {error}") from None


def load_image_bytes(data: bytes, name: str) -> Image.Image:
    """Like :func:`load_image` for bytes in memory (an upload); ``name`` is used in errors."""
    if len(data) == 0:
        raise ImageLoadError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image as :func:`load_image` would return it, from the header only.

    The pixels are not decoded (PIL opens lazily); EXIF rotations by 90 / 270 degrees swap
    the two sides. Raises :class:`ImageLoadError` when the header cannot be read.
    """
    name = str(path)
    try:
        if os.path.getsize(name) == 0:
            raise ImageLoadError(name, "empty file (0 bytes)")
        with open(name, "rb") as handle:
            return _header_size(handle, name)
    except OSError as error:
        raise ImageLoadError(name, f"cannot read the file: {error.strerror or error}") from None


def read_image_size_bytes(data: bytes, name: str) -> tuple[int, int]:
    """Like :func:`read_image_size` for bytes in memory (an upload): nothing is decoded, so a
    caller can refuse a huge image before it takes its memory."""
    if len(data) == 0:
        raise ImageLoadError(name, "empty file (0 bytes)")
    return _header_size(io.BytesIO(data), name)


def _header_size(source: BinaryIO, name: str) -> tuple[int, int]:
    image = _open_checked(source, name)
    width, height = image.size
    if _header_orientation(image) in _TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def _open_checked(source: BinaryIO, name: str) -> Image.Image:
    """``Image.open`` with PIL's errors turned into reasons and the bomb limit checked here.

    PIL warns (above ``MAX_IMAGE_PIXELS``) or raises (above twice that) on decompression
    bombs; the warning is silenced for this call only and every image above the limit is
    reported, so that no huge decode is attempted and no global setting is touched.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise ImageLoadError(name, f"decompression bomb: {error}") from None
    except Image.UnidentifiedImageError:
        raise ImageLoadError(
            name, "not an image (PIL cannot identify the file format): delete or rename it"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        kind = _kind_from_name(name)
        if "truncated" in str(error).lower():
            raise ImageLoadError(
                name, f"truncated {kind} (cut off in the header): {error}"
            ) from None
        raise ImageLoadError(name, f"corrupt {kind} header: {error}") from None
    limit = Image.MAX_IMAGE_PIXELS
    width, height = image.size
    if limit is not None and width * height > limit:
        raise ImageLoadError(
            name,
            f"decompression bomb: {width}x{height} = {width * height} pixels is more than "
            f"PIL.Image.MAX_IMAGE_PIXELS = {limit}; resize the file, or raise the limit in your "
            "own script if you trust it",
        )
    if width < 1 or height < 1:
        raise ImageLoadError(name, f"image has no pixels ({width}x{height})")
    return image


def _header_orientation(image: Image.Image) -> int | None:
    """The EXIF orientation if the header already holds it, else None; never decodes pixels.

    JPEG / WebP / PNG keep EXIF found before the pixels in ``info`` at open. PIL's PNG
    ``getexif`` would decode the whole image to find an eXIf chunk placed after the pixels,
    so such a PNG counts as upright here (``load_image`` still rotates it). TIFF is left
    alone: PIL (>= 10) already reports its size with the orientation applied.
    """
    if "exif" not in image.info or image.format == "TIFF":
        return None
    try:
        return image.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - broken EXIF: load_image ignores it too
        return None


def _kind_from_name(name: str) -> str:
    """Format name (JPEG, PNG, ...) from a file name, for files PIL could not identify."""
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    return {"jpg": "JPEG", "tif": "TIFF"}.get(extension, extension.upper() or "image")


def _decode(source: BinaryIO, name: str) -> Image.Image:
    """Open, fully decode, orient and convert to RGB; each failure is an :class:`ImageLoadError`."""
    image = _open_checked(source, name)
    kind = image.format or "image"
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise ImageLoadError(name, f"decompression bomb: {error}") from None
    except OSError as error:
        text = str(error)
        if "truncated" in text or "broken data stream" in text:
            raise ImageLoadError(name, f"truncated {kind}: {text}") from None
        raise ImageLoadError(name, f"corrupt {kind}: {text}") from None
    except (SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as error:
        raise ImageLoadError(name, f"corrupt {kind}: {type(error).__name__}: {error}") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - broken EXIF block: keep the pixels, unrotated
        pass
    try:
        return to_rgb(image)
    except (OSError, ValueError) as error:
        raise ImageLoadError(
            name, f"cannot convert {kind} mode {image.mode!r} to RGB: {error}"
        ) from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB without clipping high bit depths or leaking alpha."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        # Palette transparency (a colour index or per-entry alpha) must become background.
        if not _has_transparency(image):
            return image.convert("RGB")
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _scale_to_uint8(np.asarray(image), mode)
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in ("L", "1") and "transparency" in image.info:
        return to_rgb(image.convert("LA"))
    return image.convert("RGB")


def _has_transparency(image: Image.Image) -> bool:
    """True when a palette image declares transparency (a tRNS chunk or GIF transparent index)."""
    return "transparency" in image.info or image.has_transparency_data


def _scale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Map high-bit-depth grey values to 0..255; shape (H, W) in, (H, W) uint8 out.

    16-bit data (I;16*, or mode I holding 0..65535 as PNG 16-bit decodes on some PIL
    versions) is divided by 257 so that 65535 -> 255 exactly. Anything else (negative ints,
    floats) is stretched from its own min..max, or taken as 0..1 when it lies there.
    """
    data = values.astype(np.float64)
    if data.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(np.nanmin(data)), float(np.nanmax(data))
    if mode.startswith("I;16") or (mode == "I" and low >= 0 and high <= 65535):
        scaled = data / 257.0
    elif mode == "F" and low >= 0 and high <= 1:
        scaled = data * 255.0
    elif high > low:
        scaled = (data - low) * (255.0 / (high - low))
    else:
        scaled = np.zeros_like(data)
    scaled = np.nan_to_num(scaled, nan=0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
