"""Robust loading: every awkward file either becomes RGB or an error naming path and reason."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinodiag.data import (
    ALPHA_BACKGROUND,
    ImageLoadError,
    load_image,
    load_image_bytes,
    read_image_size,
)
from dinodiag.errors import DataError


def _pattern(width: int = 64, height: int = 48) -> Image.Image:
    """Left half red, right half blue (RGB)."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2 :] = (0, 0, 255)
    return Image.fromarray(array, "RGB")


def _png_with_size(path: Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    header = struct.pack(">II", width, height) + bytes(data[24:29])  # keep depth / colour type
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def _assert_rgb(image: Image.Image, size: tuple[int, int]) -> None:
    assert image.mode == "RGB"
    assert image.size == size
    image.getpixel((0, 0))  # decoded, not lazy


# ---------------------------------------------------------------------- bad files
def test_zero_byte_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.path == str(path)
    assert "empty file (0 bytes)" in info.value.reason
    assert str(path) in str(info.value)
    assert isinstance(info.value, DataError)


def test_text_file_with_image_extension_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 20)
    with pytest.raises(ImageLoadError, match="not an image") as info:
        load_image(path)
    assert info.value.path == str(path)


def test_random_bytes_with_jpeg_extension_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(path)


def test_truncated_jpeg_is_reported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.reason.startswith("truncated JPEG: ")
    assert "truncated" in info.value.reason


def test_truncated_png_is_reported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(2).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert "PNG" in info.value.reason


def test_corrupt_png_header_is_reported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    _pattern().save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[20:28] = b"\xff" * 8  # garbage IHDR fields with a now-wrong CRC
    path = tmp_path / "bad_header.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.path == str(path)
    assert info.value.reason


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="cannot read the file"):
        load_image(tmp_path / "gone.png")


def test_decompression_bomb_error_is_reported_not_raised_globally(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    _png_with_size(path, 30000, 30000)  # 9e8 pixels: PIL itself raises above 2x the limit
    assert path.stat().st_size < 200
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        read_image_size(path)
    assert Image.MAX_IMAGE_PIXELS == limit_before


def test_decompression_bomb_warning_level_is_reported_without_warning(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _png_with_size(path, 10000, 10000)  # 1e8 pixels: between the limit and twice the limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ImageLoadError, match="MAX_IMAGE_PIXELS"):
            load_image(path)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == 89478485  # PIL's default, untouched


def test_bomb_limit_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ok.png"
    _pattern(64, 48).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError, match="3072 pixels"):
        load_image(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a user who disabled the guard
    _assert_rgb(load_image(path), (64, 48))


# ------------------------------------------------------------------- awkward modes
def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 256, dtype=np.float64).round().astype(np.uint16)
    array = np.tile(ramp, (8, 1))  # (8, 256): dark to white
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    assert Image.open(path).mode.startswith("I")
    image = load_image(path)
    _assert_rgb(image, (256, 8))
    row = np.asarray(image)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert abs(row[128] - 128) <= 1  # mid-grey stays mid-grey (a clip would give 255)
    assert np.all(np.diff(row) >= 0)
    assert (row == 255).sum() <= 2


def test_mode_i_and_float_images_are_scaled(tmp_path: Path) -> None:
    floats = np.full((4, 4), 0.5, dtype=np.float32)
    float_path = tmp_path / "float.tif"
    Image.fromarray(floats, mode="F").save(float_path)
    assert abs(int(np.asarray(load_image(float_path))[0, 0, 0]) - 128) <= 1
    wide = np.array([[-1000, 0], [500, 3000]], dtype=np.int32)
    int_path = tmp_path / "ints.tif"
    Image.fromarray(wide, mode="I").save(int_path)
    values = np.asarray(load_image(int_path))[:, :, 0]
    assert values.min() == 0 and values.max() == 255


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    image = load_image(path)
    _assert_rgb(image, (32, 24))
    red, green, blue = image.getpixel((16, 12))
    assert red > 200 and green < 60 and blue < 60


def test_palette_images_with_and_without_transparency(tmp_path: Path) -> None:
    plain = _pattern(40, 20).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    plain_path = tmp_path / "palette.png"
    plain.save(plain_path)
    image = load_image(plain_path)
    _assert_rgb(image, (40, 20))
    assert image.getpixel((2, 2))[0] > 200

    with_hole = Image.new("P", (10, 10), 1)
    with_hole.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    with_hole.putpixel((0, 0), 0)
    gif_path = tmp_path / "transparent.gif"
    with_hole.save(gif_path, transparency=0)
    loaded = load_image(gif_path)
    _assert_rgb(loaded, (10, 10))
    assert loaded.getpixel((0, 0)) == ALPHA_BACKGROUND  # the transparent index
    assert loaded.getpixel((5, 5)) == (0, 200, 0)

    png_path = tmp_path / "transparent.png"
    with_hole.save(png_path, transparency=0)
    assert load_image(png_path).getpixel((0, 0)) == ALPHA_BACKGROUND


def test_rgba_and_la_are_composited_on_the_background(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (20, 10), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 10, 10))  # left half fully transparent black
    rgba_path = tmp_path / "alpha.png"
    rgba.save(rgba_path)
    image = load_image(rgba_path)
    _assert_rgb(image, (20, 10))
    assert image.getpixel((2, 2)) == ALPHA_BACKGROUND
    assert image.getpixel((15, 5)) == (0, 0, 255)

    la = Image.new("LA", (8, 8), (50, 255))
    la.putpixel((0, 0), (0, 0))
    la_path = tmp_path / "gray_alpha.png"
    la.save(la_path)
    loaded = load_image(la_path)
    _assert_rgb(loaded, (8, 8))
    assert loaded.getpixel((0, 0)) == ALPHA_BACKGROUND
    assert loaded.getpixel((4, 4)) == (50, 50, 50)


def test_grayscale_and_bilevel_images_become_three_channels(tmp_path: Path) -> None:
    gray_path = tmp_path / "gray.jpg"
    Image.new("L", (30, 20), 90).save(gray_path)
    image = load_image(gray_path)
    _assert_rgb(image, (30, 20))
    red, green, blue = image.getpixel((10, 10))
    assert red == green == blue and abs(red - 90) <= 2
    bilevel_path = tmp_path / "bits.bmp"
    Image.new("1", (9, 9), 1).save(bilevel_path)
    assert load_image(bilevel_path).getpixel((4, 4)) == (255, 255, 255)


def test_exif_rotated_jpeg_is_made_upright(tmp_path: Path) -> None:
    stored = _pattern(40, 20)  # left red, right blue, landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    stored.save(path, "JPEG", quality=95, exif=exif)
    image = load_image(path)
    _assert_rgb(image, (20, 40))  # portrait once upright
    top, bottom = image.getpixel((10, 3)), image.getpixel((10, 36))
    assert top[0] > 200 and top[2] < 60  # the stored left (red) is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert read_image_size(path) == (20, 40)


@pytest.mark.parametrize("size", [(1, 1), (2000, 1), (1, 2000)])
def test_tiny_and_extreme_aspect_images_load(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / f"thin_{size[0]}x{size[1]}.png"
    Image.new("RGB", size, (10, 20, 30)).save(path)
    image = load_image(path)
    _assert_rgb(image, size)
    assert image.getpixel((0, 0)) == (10, 20, 30)
    assert read_image_size(path) == size


@pytest.mark.parametrize("extension", ["png", "jpg", "bmp", "gif", "webp", "tif"])
def test_every_supported_format_loads(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"pattern.{extension}"
    _pattern(32, 16).save(path)
    image = load_image(path)
    _assert_rgb(image, (32, 16))
    assert image.getpixel((2, 8))[0] > 180


def test_load_image_bytes_matches_load_image(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    _pattern(24, 12).save(path)
    from_bytes = load_image_bytes(path.read_bytes(), "upload.png")
    assert np.array_equal(np.asarray(from_bytes), np.asarray(load_image(path)))
    with pytest.raises(ImageLoadError, match="empty file") as info:
        load_image_bytes(b"", "nothing.png")
    assert info.value.path == "nothing.png"
    with pytest.raises(ImageLoadError, match="not an image") as info:
        load_image_bytes(b"<html></html>", "page.jpg")
    assert "page.jpg" in str(info.value)


@pytest.mark.parametrize("extension", ["png", "jpg", "tif", "webp"])
def test_read_image_size_does_not_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: str
) -> None:
    path = tmp_path / f"p.{extension}"
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270: the size as loaded is (30, 70)
    _pattern(70, 30).save(path, exif=exif)
    decoded: list[str] = []

    def spy(self: Image.Image, *args: object, **kwargs: object) -> None:
        decoded.append(str(self))
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", spy)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", spy)
    size = read_image_size(path)
    monkeypatch.undo()
    assert decoded == []
    assert size == load_image(path).size == (30, 70)
