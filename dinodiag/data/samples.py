"""Generator of the bundled ``sample_images/`` folder: deterministic, recognisable pictures.

Run ``python -m dinodiag.data.samples`` to rebuild ``sample_images/`` at the repository root
(``--out DIR`` writes elsewhere). A rerun writes byte-identical files (same Pillow /
libjpeg); no font or network is used: digits and letters are drawn as seven-segment
glyphs, so the result does not depend on the fonts installed.

Where the dataset ``sample`` reads them (:func:`sample_images_dir`): the folder named by
``$DINODIAG_SAMPLE_IMAGES`` if set; else the committed ``sample_images/`` of a repository
checkout; else (an installed package carries no images) the per-user cache
``$XDG_CACHE_HOME/dinodiag/sample_images`` (default ``~/.cache/...``). The override and the
cache are drawn into on first use when images are missing (the generator is deterministic,
so they hold the committed pictures); a checkout's folder is used as it is.

Four classes, five images each, chosen to exercise the crop diagnostics: numbered grid
cells (a crop's position can be read off it), scenes, shapes with numbers, and document
pages with text-like lines. Sizes and formats vary on purpose: a 96 px image, portrait
and landscape, a wide strip, one grayscale JPEG, one RGBA PNG, JPEG and PNG mixed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from dinodiag.data.scenes import (
    bar_chart,
    coordinate_grid,
    document_page,
    harbour_scene,
    landscape_scene,
    numbered_grid,
    shapes_picture,
    skyline_scene,
    sticky_note,
)
from dinodiag.errors import DataError

# The committed folder, at the repository root (the parent of the dinodiag package). An
# installed package has no repository root: see sample_images_dir().
SAMPLE_IMAGES_DIR = Path(__file__).resolve().parents[2] / "sample_images"
SAMPLES_ENV = "DINODIAG_SAMPLE_IMAGES"  # environment variable: a folder to keep them in instead

_JPEG_QUALITY = 88  # visually clean, keeps the folder well under 2 MB


# ------------------------------------------------------------------------ the folder
# (class folder, file name, drawing function, PIL mode to save in)
Recipe = tuple[str, str, Callable[[], Image.Image], str]

SAMPLE_RECIPES: tuple[Recipe, ...] = (
    ("grids", "grid_01_500x375.jpg", lambda: numbered_grid((500, 375), 8, 6, 0.0), "RGB"),
    ("grids", "grid_02_375x500_portrait.png", lambda: numbered_grid((375, 500), 5, 8, 0.3), "RGB"),
    ("grids", "grid_03_96x96.png", lambda: numbered_grid((96, 96), 4, 4, 0.55), "RGB"),
    ("grids", "grid_04_1024x768.jpg", lambda: coordinate_grid((1024, 768), 32), "RGB"),
    ("grids", "grid_05_800x200_wide.jpg", lambda: numbered_grid((800, 200), 12, 3, 0.75), "RGB"),
    ("scenes", "scene_01_500x375.jpg", lambda: landscape_scene((500, 375), 11), "RGB"),
    ("scenes", "scene_02_500x333.jpg", lambda: harbour_scene((500, 333), 27), "RGB"),
    ("scenes", "scene_03_333x500_portrait.jpg", lambda: harbour_scene((333, 500), 42), "RGB"),
    ("scenes", "scene_04_640x480_gray.jpg", lambda: skyline_scene((640, 480), 5), "L"),
    ("scenes", "scene_05_480x360_night.jpg", lambda: landscape_scene((480, 360), 73, True), "RGB"),
    ("shapes", "shapes_01_500x375.jpg", lambda: shapes_picture((500, 375), 1, 9), "RGB"),
    ("shapes", "shapes_02_375x500_portrait.jpg", lambda: shapes_picture((375, 500), 2, 8), "RGB"),
    (
        "shapes",
        "shapes_03_320x240_rgba.png",
        lambda: shapes_picture((320, 240), 3, 6, True),
        "RGBA",
    ),
    ("shapes", "shapes_04_400x400.png", lambda: shapes_picture((400, 400), 4, 10), "RGB"),
    ("shapes", "shapes_05_256x256.jpg", lambda: shapes_picture((256, 256), 5, 5), "RGB"),
    ("documents", "doc_01_375x500_portrait.png", lambda: document_page((375, 500), 1, 1), "RGB"),
    ("documents", "doc_02_500x375_chart.jpg", lambda: bar_chart((500, 375), 2), "RGB"),
    ("documents", "doc_03_300x600_tall.png", lambda: document_page((300, 600), 3, 2), "RGB"),
    ("documents", "doc_04_500x375_columns.jpg", lambda: document_page((500, 375), 4, 3, 2), "RGB"),
    ("documents", "doc_05_200x150_note.jpg", lambda: sticky_note((200, 150), 57), "RGB"),
)


def write_samples(out: str | Path = SAMPLE_IMAGES_DIR) -> list[Path]:
    """Draw every image of :data:`SAMPLE_RECIPES` into ``out/<class>/``; returns the paths.

    Each file is written under a hidden temporary name then renamed, so a reader (or a
    second process drawing the same folder) never sees half a file.
    """
    written = []
    for folder, file_name, draw, mode in SAMPLE_RECIPES:
        target = Path(out) / folder / file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        image = draw().convert(mode)
        partial = target.with_name(f".{file_name}.{os.getpid()}.tmp")  # folder scans skip it
        if target.suffix == ".jpg":
            image.save(partial, "JPEG", quality=_JPEG_QUALITY)
        else:
            image.save(partial, "PNG", compress_level=9)
        os.replace(partial, target)
        written.append(target)
    return written


def missing_samples(folder: Path) -> list[Path]:
    """The images of :data:`SAMPLE_RECIPES` that ``folder`` does not hold."""
    paths = [folder / subfolder / name for subfolder, name, _, _ in SAMPLE_RECIPES]
    return [path for path in paths if not path.is_file()]


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dinodiag/sample_images`` (without XDG_CACHE_HOME: ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "dinodiag" / "sample_images"


def in_checkout() -> bool:
    """Whether this package runs from a repository checkout (its root holds pyproject.toml)."""
    return (SAMPLE_IMAGES_DIR.parent / "pyproject.toml").is_file()


def sample_images_home() -> Path:
    """The folder ``sample`` reads, drawn or not: the order of the module docstring."""
    override = os.environ.get(SAMPLES_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return SAMPLE_IMAGES_DIR if in_checkout() else user_cache_dir()


def sample_images_dir() -> Path:
    """The folder of the sample images, drawn there first when images are missing.

    A checkout's committed ``sample_images/`` is used as it is (it is what the tests
    compare against; rebuild it with ``python -m dinodiag.data.samples``). Raises
    :class:`DataError` when the images have to be drawn but the folder is not writable.
    """
    folder = sample_images_home()
    if folder == SAMPLE_IMAGES_DIR and in_checkout():
        return folder
    missing = missing_samples(folder)
    if missing:
        print(
            f"dinodiag: drawing the {len(missing)} missing sample images into {folder} "
            f"(once; set {SAMPLES_ENV} to keep them elsewhere)",
            file=sys.stderr,
        )
        try:
            write_samples(folder)
        except OSError as error:
            raise DataError(
                f"cannot draw the sample images into {folder}: {error.strerror or error}. Set "
                f"{SAMPLES_ENV} to a writable folder, or pass another dataset (a folder of "
                "images, 'generated')."
            ) from None
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dinodiag.data.samples",
        description="Rebuild the bundled sample images (deterministic: a rerun is byte-identical).",
    )
    default = sample_images_home()
    parser.add_argument(
        "--out",
        type=Path,
        default=default,
        help=f"target folder (default {default}: where the dataset 'sample' reads them)",
    )
    args = parser.parse_args(argv)
    paths = write_samples(args.out)
    total = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} images ({total / 1e6:.2f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
