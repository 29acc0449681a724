"""Robust image opening: every file either becomes a 3-channel RGB PIL image or a reason.

One function decides what a file is worth, for datasets and for files uploaded in
the app alike (:func:`load_image`, :func:`load_image_bytes`). What it handles:

- zero-byte files, non-images with image extensions, corrupt and truncated files:
  :class:`ImageLoadError` with the path and a sentence saying what is wrong;
- decompression bombs (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``): reported the
  same way; the global limit is read, never changed;
- files larger than :data:`MAX_IMAGE_FILE_BYTES` (1 GiB; a partial download pre-allocated to
  its final size): refused before they are opened; a header the reader would have to search
  byte by byte past :data:`MAX_HEADER_SKIP_BYTES` (a cut-off JPEG or GIF padded with zeros):
  refused, instead of scanning gigabytes of zeros one byte at a time;
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

# An image file larger than this is refused before it is opened. PIL's pixel limit
# (Image.MAX_IMAGE_PIXELS, 89.5 M pixels) keeps even an uncompressed 16-bit RGBA image under
# 716 MB, so a larger file is a partial download pre-allocated to its final size, or no image.
# Like PIL's limit, this global is read at each call: raise it in your own script for a
# collection of huge TIFFs (dinodiag.data.loading.MAX_IMAGE_FILE_BYTES = 4 * 2**30).
MAX_IMAGE_FILE_BYTES = 2**30

# PIL's readers skip junk between JPEG markers and GIF blocks one byte at a time: a JPEG header
# followed by 20 GB of zeros took half an hour to be called "not an image". Reads of at most
# _TINY_READ bytes while the header is read are counted, and past this many the file is
# refused; a real header makes a few per marker (hundreds in all).
MAX_HEADER_SKIP_BYTES = 2**18  # 256 KiB: refused in about 0.1 s
_TINY_READ = 2

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


def too_large_reason(size: int) -> str | None:
    """Why a file of ``size`` bytes is not read as an image (over :data:`MAX_IMAGE_FILE_BYTES`),
    or None when it may be."""
    limit = MAX_IMAGE_FILE_BYTES
    if limit is None or size <= limit:
        return None
    return (
        f"file too large: {size / 2**30:,.1f} GiB is more than the {limit / 2**30:,.1f} GiB an "
        "image may have (dinodiag.data.loading.MAX_IMAGE_FILE_BYTES); not read. A partial "
        "download padded to its final size? Delete it, or raise the limit if it is a real image"
    )


def _check_size(size: int, name: str) -> None:
    if size == 0:
        raise ImageLoadError(name, "empty file (0 bytes)")
    if (reason := too_large_reason(size)) is not None:
        raise ImageLoadError(name, reason)


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
    _check_size(size, name)
    try:
        with open(name, "rb") as handle:
            return _decode(handle, name)
    except OSError as error:  # the file vanished or became unreadable after the size check
        raise ImageLoadError(name, f"cannot read the file: {error}") from None


def load_image_bytes(data: bytes, name: str) -> Image.Image:
    """Like :func:`load_image` for bytes in memory (an upload); ``name`` is used in errors."""
    _check_size(len(data), name)
    return _decode(io.BytesIO(data), name)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image as :func:`load_image` would return it, from the header only.

    The pixels are not decoded (PIL opens lazily); EXIF rotations by 90 / 270 degrees swap
    the two sides. Raises :class:`ImageLoadError` when the header cannot be read.
    """
    name = str(path)
    try:
        _check_size(os.path.getsize(name), name)
        with open(name, "rb") as handle:
            return _header_size(handle, name)
    except OSError as error:
        raise ImageLoadError(name, f"cannot read the file: {error.strerror or error}") from None


def read_image_size_bytes(data: bytes, name: str) -> tuple[int, int]:
    """Like :func:`read_image_size` for bytes in memory (an upload): nothing is decoded, so a
    caller can refuse a huge image before it takes its memory."""
    _check_size(len(data), name)
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
    watched = _HeaderReader(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(watched)  # type: ignore[arg-type]
    except _EndlessHeader as stop:
        raise ImageLoadError(
            name,
            f"no {_kind_from_name(name)} header found: its reader searched "
            f"{MAX_HEADER_SKIP_BYTES:,} bytes one by one, up to byte {stop.offset:,} "
            "(dinodiag.data.loading.MAX_HEADER_SKIP_BYTES): a file cut off and padded, such as "
            "a partial download? Download it again",
        ) from None
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
    watched.header_read = True  # decoding reads pixel data as it likes
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


class _EndlessHeader(Exception):
    """Raised inside ``Image.open`` (PIL lets it through) to stop a byte-by-byte search."""

    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset  # where in the file the search was stopped


class _HeaderReader:
    """A file as ``Image.open`` reads it, counting the tiny reads of a reader that searches for
    its next marker byte by byte; past :data:`MAX_HEADER_SKIP_BYTES` of them it raises
    :class:`_EndlessHeader`. Everything else is the file's own."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.tiny_reads = 0
        self.header_read = False  # True once opened: decoding is not watched

    def read(self, size: int | None = -1) -> bytes:
        if not self.header_read and size is not None and 0 <= size <= _TINY_READ:
            self.tiny_reads += 1
            if self.tiny_reads > MAX_HEADER_SKIP_BYTES:
                raise _EndlessHeader(self.raw.tell())
        return self.raw.read(size)

    def __getattr__(self, attribute: str) -> object:
        return getattr(self.raw, attribute)


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
