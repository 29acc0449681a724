"""The committed sample_images/ folder, its deterministic generator, and where `sample` reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinodiag.data import FolderDataset, load_image, open_dataset, samples
from dinodiag.data.samples import SAMPLE_IMAGES_DIR, SAMPLE_RECIPES, main, write_samples
from dinodiag.errors import DataError
from tests.facts import assert_mentions


@pytest.fixture(scope="module")
def committed() -> list[Path]:
    return sorted(path for path in SAMPLE_IMAGES_DIR.rglob("*") if path.is_file())


def test_folder_matches_the_recipes(committed: list[Path]) -> None:
    expected = sorted(SAMPLE_IMAGES_DIR / folder / name for folder, name, _, _ in SAMPLE_RECIPES)
    assert committed == expected


def test_classes_formats_and_total_size(committed: list[Path]) -> None:
    classes = {path.parent.name for path in committed}
    assert len(classes) >= 4
    for name in classes:
        assert sum(path.parent.name == name for path in committed) >= 4
    suffixes = {path.suffix for path in committed}
    assert {".jpg", ".png"} <= suffixes
    total = sum(path.stat().st_size for path in committed)
    assert total < 3_000_000, f"sample_images is {total / 1e6:.2f} MB"


def test_sizes_and_modes_cover_the_awkward_cases(committed: list[Path]) -> None:
    headers = {path.name: Image.open(path) for path in committed}
    sizes = [image.size for image in headers.values()]
    assert (96, 96) in sizes
    assert any(height > width for width, height in sizes)  # portrait
    assert any(width > height for width, height in sizes)  # landscape
    assert (500, 375) in sizes  # the typical photo size
    assert any(width >= 3 * height for width, height in sizes)  # a wide strip
    modes = {name: image.mode for name, image in headers.items()}
    assert sum(mode == "L" for mode in modes.values()) == 1
    rgba = [name for name, mode in modes.items() if mode == "RGBA"]
    assert len(rgba) == 1 and rgba[0].endswith(".png")
    alpha = np.asarray(headers[rgba[0]])[:, :, 3]
    assert alpha.min() == 0 and alpha.max() == 255  # transparent background, opaque shapes


def test_images_have_visible_structure(committed: list[Path]) -> None:
    for path in committed:
        pixels = np.asarray(load_image(path), dtype=np.float64)
        assert pixels.std() > 20, f"{path.name} looks flat"
        # Structure everywhere: most 4x4 blocks of the image are not a single flat colour.
        height, width = pixels.shape[:2]
        blocks = [
            pixels[y * height // 4 : (y + 1) * height // 4, x * width // 4 : (x + 1) * width // 4]
            for y in range(4)
            for x in range(4)
        ]
        assert sum(block.std() > 3 for block in blocks) >= 8, path.name


def test_every_sample_loads_through_the_dataset() -> None:
    dataset = open_dataset("sample", "all")
    assert len(dataset) == len(SAMPLE_RECIPES)
    assert dataset.validate() == []
    assert dataset.classes == sorted({folder for folder, _, _, _ in SAMPLE_RECIPES})


def test_generator_is_deterministic_and_matches_the_committed_pixels(
    tmp_path: Path, committed: list[Path]
) -> None:
    first = write_samples(tmp_path / "one")
    second = write_samples(tmp_path / "two")
    for left, right in zip(first, second, strict=True):
        assert left.read_bytes() == right.read_bytes(), left.name
    # Against the committed files: pixels, not bytes, so another libjpeg / zlib passes.
    by_name = {path.name: path for path in first}
    for path in committed:
        fresh = np.asarray(Image.open(by_name[path.name]).convert("RGBA"), dtype=np.int16)
        stored = np.asarray(Image.open(path).convert("RGBA"), dtype=np.int16)
        assert fresh.shape == stored.shape
        assert np.abs(fresh - stored).mean() < 2.0, f"{path.name} differs: rebuild sample_images"


def test_command_line_writes_to_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    assert "wrote 20 images" in capsys.readouterr().out
    assert len(list(tmp_path.rglob("*.*"))) == len(SAMPLE_RECIPES)


# ------------------------------------------------------------- where `sample` finds them


def test_a_checkout_reads_its_committed_folder_and_draws_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(samples.SAMPLES_ENV, raising=False)
    assert samples.in_checkout()  # the tests run from the repository
    assert samples.sample_images_dir() == SAMPLE_IMAGES_DIR
    assert capsys.readouterr().err == ""


def test_an_installed_package_draws_them_once_into_the_user_cache(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: list[Path],
) -> None:
    monkeypatch.delenv(samples.SAMPLES_ENV, raising=False)
    monkeypatch.setattr(samples, "in_checkout", lambda: False)  # as from site-packages
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = samples.sample_images_dir()
    assert folder == tmp_path / "cache" / "dinodiag" / "sample_images"
    err = capsys.readouterr().err
    assert_mentions(err, "drawing", "20 missing", str(folder))
    assert samples.SAMPLES_ENV in err  # says how to keep them elsewhere
    drawn = sorted(path for path in folder.rglob("*") if path.is_file())
    assert [p.relative_to(folder) for p in drawn] == [
        p.relative_to(SAMPLE_IMAGES_DIR) for p in committed
    ]  # no temporary file left behind
    # The same dataset as the checkout's: same classes, same train / val split.
    cached, checkout = open_dataset("sample", "val"), FolderDataset(SAMPLE_IMAGES_DIR, "val")
    assert cached.root == folder and cached.classes == checkout.classes
    assert [Path(cached.describe(i)).relative_to(folder) for i in range(len(cached))] == [
        Path(checkout.describe(i)).relative_to(SAMPLE_IMAGES_DIR) for i in range(len(checkout))
    ]
    assert samples.sample_images_dir() == folder and capsys.readouterr().err == ""  # once
    (folder / committed[0].relative_to(SAMPLE_IMAGES_DIR)).unlink()
    samples.sample_images_dir()
    assert_mentions(capsys.readouterr().err, "drawing", "1 missing")


def test_the_cache_defaults_to_dot_cache_in_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert samples.user_cache_dir() == tmp_path / ".cache" / "dinodiag" / "sample_images"


def test_the_environment_variable_chooses_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(samples.SAMPLES_ENV, str(tmp_path / "mine"))
    assert samples.sample_images_dir() == tmp_path / "mine"  # even in a checkout
    assert samples.missing_samples(tmp_path / "mine") == []
    assert str(tmp_path / "mine") in capsys.readouterr().err
    # The command line's default target follows the same lookup.
    assert main([]) == 0 and str(tmp_path / "mine") in capsys.readouterr().out


def test_an_unwritable_folder_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(samples.SAMPLES_ENV, str(blocker / "samples"))
    with pytest.raises(DataError) as info:
        open_dataset("sample")
    message = str(info.value)
    assert_mentions(message, "cannot draw", str(blocker / "samples"))
    assert samples.SAMPLES_ENV in message and "'generated'" in message
