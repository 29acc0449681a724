"""Image folders: layouts, splits, bad files that never take the dataset down, fast scans."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dinodiag.data import FolderDataset, LoadProblem, scan_folder
from dinodiag.errors import DataError


def _save(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _labelled(root: Path, per_class: int = 5) -> Path:
    """Classes 'cats' (red), 'dogs' (green), 'owls' (blue), ``per_class`` images each."""
    colours = {"cats": (250, 0, 0), "dogs": (0, 250, 0), "owls": (0, 0, 250)}
    for name, colour in colours.items():
        for index in range(per_class):
            extension = "png" if index % 2 else "JPG"  # upper-case extensions count too
            _save(root / name / f"img_{index}.{extension}", colour)
    return root


def _truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[:300])
    return path


# ------------------------------------------------------------------------ layouts
def test_class_subfolders_give_labels(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "pets")
    (root / "cats" / "deeper").mkdir()
    _save(root / "cats" / "deeper" / "nested.png", (250, 0, 0))
    (root / "README.txt").write_text("not an image, ignored")
    (root / "dogs" / ".DS_Store").write_bytes(b"\0\1")
    dataset = FolderDataset(root, "all")
    assert dataset.classes == ["cats", "dogs", "owls"]
    assert dataset.has_labels
    assert len(dataset) == 16  # nested images are found recursively
    assert dataset.problems == []
    for index in range(len(dataset)):
        image, label = dataset[index]
        assert image.mode == "RGB"
        assert np.argmax(image.getpixel((5, 5))) == label  # colour matches the class folder
        assert dataset.label(index) == label
        assert Path(dataset.describe(index)).is_file()
    assert dataset.name == f"folder:{root.absolute()} (all)"
    assert dataset.labels() == [dataset[i][1] for i in range(len(dataset))]


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    for index in range(4):
        _save(tmp_path / f"{index}.png", (index * 60, 0, 0))
    _save(tmp_path / "more" / "x.webp", (0, 0, 0))
    dataset = FolderDataset(tmp_path, "all")
    assert dataset.classes is None and not dataset.has_labels
    assert len(dataset) == 5
    assert {dataset[i][1] for i in range(5)} == {-1}


def test_class_folder_without_images_is_reported_and_not_a_class(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "set", per_class=2)
    (root / "empty_class").mkdir()
    (root / "empty_class" / "notes.txt").write_text("x")
    dataset = FolderDataset(root, "all")
    assert dataset.classes == ["cats", "dogs", "owls"]
    assert [p.path for p in dataset.problems] == [str(root / "empty_class")]
    assert "no images" in dataset.problems[0].reason


# ------------------------------------------------------------------------- splits
def test_splits_are_disjoint_deterministic_and_per_class(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "pets", per_class=10)
    train = FolderDataset(root, "train")
    val = FolderDataset(root, "val")
    everything = FolderDataset(root, "all")
    train_paths = {train.describe(i) for i in range(len(train))}
    val_paths = {val.describe(i) for i in range(len(val))}
    assert not train_paths & val_paths
    assert train_paths | val_paths == {everything.describe(i) for i in range(len(everything))}
    assert len(val) == 6  # 2 of each class of 10
    assert sorted(val.labels()) == [0, 0, 1, 1, 2, 2]
    assert train.classes == val.classes == everything.classes
    again = FolderDataset(root, "val")
    assert [again.describe(i) for i in range(len(again))] == [val.describe(i) for i in range(6)]
    assert train.split == "train" and val.name.endswith("(val)")


def test_tiny_classes_keep_their_images_in_train(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "tiny", per_class=2)
    assert len(FolderDataset(root, "val")) == 0
    assert len(FolderDataset(root, "train")) == 6
    half = FolderDataset(root, "val", val_fraction=0.5)
    assert len(half) == 3


def test_bad_split_and_fraction_are_refused(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "pets", per_class=2)
    with pytest.raises(DataError, match="train, val, all"):
        FolderDataset(root, "test")
    with pytest.raises(DataError, match="val_fraction"):
        FolderDataset(root, "train", val_fraction=1.5)


# --------------------------------------------------------------- missing / empty
def test_missing_folder_names_it_and_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as info:
        FolderDataset(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    assert "sample" in str(info.value)


def test_file_instead_of_folder(tmp_path: Path) -> None:
    path = _save(tmp_path / "one.png", (1, 2, 3))
    with pytest.raises(DataError, match="is a file, not a folder"):
        FolderDataset(path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty") as info:
        FolderDataset(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.csv").write_text("y")
    with pytest.raises(DataError, match="has no images") as info:
        FolderDataset(tmp_path)
    assert ".jpg" in str(info.value) and "2 other file(s)" in str(info.value)
    (tmp_path / "a.txt").unlink()
    (tmp_path / "b.csv").unlink()
    (tmp_path / "class_a").mkdir()
    (tmp_path / "class_a" / "readme.md").write_text("z")
    with pytest.raises(DataError, match="has no images"):
        FolderDataset(tmp_path)


def test_folder_of_only_empty_files(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(DataError, match="only empty"):
        FolderDataset(tmp_path)


# ----------------------------------------------------------------------- bad files
def _folder_with_bad_files(root: Path) -> dict[str, Path]:
    _labelled(root, per_class=3)
    bad = {
        "zero": root / "cats" / "zero.jpg",
        "text": root / "dogs" / "text.png",
        "cut": root / "owls" / "cut.jpg",
    }
    bad["zero"].write_bytes(b"")
    bad["text"].write_text("I am not a PNG")
    _truncated_jpeg(bad["cut"])
    return bad


def test_bad_files_are_reported_once_and_skipped(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    bad = _folder_with_bad_files(root)
    dataset = FolderDataset(root, "all")
    assert len(dataset) == 11  # the zero-byte file is left out at scan time
    assert [p.path for p in dataset.problems] == [str(bad["zero"])]
    assert dataset.problems[0] == LoadProblem(str(bad["zero"]), "empty file (0 bytes)")
    for _ in range(2):  # a second epoch must not report anything twice
        for index in range(len(dataset)):
            image, label = dataset[index]
            assert image.mode == "RGB" and label in (0, 1, 2)
            assert np.argmax(image.getpixel((5, 5))) == label  # the returned pair is consistent
    reasons = {p.path: p.reason for p in dataset.problems}
    assert set(reasons) == {str(path) for path in bad.values()}
    assert "not an image" in reasons[str(bad["text"])]
    assert reasons[str(bad["cut"])].startswith("truncated JPEG")  # cut inside the header
    assert len(dataset.problems) == 3


def test_validate_opens_every_file(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    bad = _folder_with_bad_files(root)
    dataset = FolderDataset(root, "all")
    problems = dataset.validate()
    assert {p.path for p in problems} == {str(path) for path in bad.values()}
    limited = FolderDataset(root, "all").validate(limit=1)
    assert [p.path for p in limited] == [str(bad["zero"])]  # only the scan's finding so far


def test_bad_item_falls_through_to_the_next_good_one_wrapping_around(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", (200, 0, 0))
    (tmp_path / "b.png").write_text("broken")
    dataset = FolderDataset(tmp_path, "all")
    image, label = dataset[1]  # b is bad: wraps around to a
    assert image.getpixel((0, 0)) == (200, 0, 0) and label == -1
    assert dataset[-1][0].getpixel((0, 0)) == (200, 0, 0)
    with pytest.raises(IndexError):
        dataset[2]


def test_all_bad_raises_with_the_problems(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_text("broken")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    dataset = FolderDataset(tmp_path, "all")
    with pytest.raises(DataError, match="no usable image") as info:
        dataset[0]
    assert str(tmp_path / "a.png") in str(info.value)
    assert str(tmp_path / "b.jpg") in str(info.value)


def test_dataloader_runs_over_bad_files(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _folder_with_bad_files(root)
    dataset = FolderDataset(root, "all")
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=4, shuffle=True, collate_fn=lambda batch: batch
    )
    seen = [pair for batch in loader for pair in batch]
    assert len(seen) == len(dataset)
    assert all(image.mode == "RGB" for image, _ in seen)


# ------------------------------------------------------------------- sizes, speed
def test_image_sizes_read_headers_and_skip_bad_files(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", (1, 1, 1), (96, 64))
    _save(tmp_path / "b.png", (1, 1, 1), (30, 500))
    (tmp_path / "c.png").write_text("broken")
    dataset = FolderDataset(tmp_path, "all")
    assert dataset.image_sizes() == [(96, 64), (30, 500)]
    assert [p.path for p in dataset.problems] == [str(tmp_path / "c.png")]
    assert dataset.image_sizes(limit=1) == [(96, 64)]


def test_scan_of_ten_thousand_files_is_fast_and_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for class_index in range(10):
        folder = tmp_path / f"class_{class_index}"
        folder.mkdir()
        for index in range(1000):
            (folder / f"{index:04d}.jpg").write_bytes(b"x")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was opened during the scan")

    monkeypatch.setattr(Image, "open", refuse)
    start = time.perf_counter()
    dataset = FolderDataset(tmp_path, "train")
    elapsed = time.perf_counter() - start
    assert len(dataset) == 8000 and len(dataset.classes or []) == 10
    assert elapsed < 3.0, f"scanning 10k files took {elapsed:.2f} s"
    assert len(scan_folder(tmp_path).paths) == 10000


# ------------------------------------------------------------------------ symbolic links
def test_links_inside_the_folder_are_followed(tmp_path: Path) -> None:
    root = _labelled(tmp_path / "pets", per_class=2)
    (root / "dogs" / "shared.png").symlink_to(root / "cats" / "img_1.png")  # a file inside
    (root / "owls" / "loop").symlink_to(root / "owls", target_is_directory=True)  # a loop
    dataset = FolderDataset(root, "all")
    assert dataset.problems == []
    assert len(dataset) == 7  # 6 images + the shared one; the loop adds nothing
    shared = [i for i in range(len(dataset)) if dataset.describe(i).endswith("shared.png")]
    assert [dataset.label(i) for i in shared] == [1]  # labelled by the folder it is found in


def test_links_out_of_the_folder_are_not_followed_and_are_reported(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    for index in range(3):
        _save(secret / f"private_{index}.png", (9, 9, 9))
    root = _labelled(tmp_path / "pets", per_class=2)
    (root / "cats" / "leak.png").symlink_to(secret / "private_0.png")
    (root / "dogs" / "leakdir").symlink_to(secret, target_is_directory=True)
    (root / "stolen").symlink_to(secret, target_is_directory=True)  # a would-be class
    (root / "owls" / "gone.png").symlink_to(tmp_path / "no_such_file.png")
    dataset = FolderDataset(root, "all")
    assert dataset.classes == ["cats", "dogs", "owls"]
    assert len(dataset) == 6
    for index in range(len(dataset)):
        assert secret not in dataset.path(index).resolve().parents
    reasons = {Path(p.path).name: p.reason for p in dataset.problems}
    assert set(reasons) == {"leak.png", "leakdir", "stolen", "gone.png"}
    for name in ("leak.png", "leakdir", "stolen"):
        assert "outside the folder" in reasons[name] and "not followed" in reasons[name]
        assert str(secret) in reasons[name]
    assert reasons["gone.png"].startswith("broken symbolic link")


def test_a_flat_folder_reports_an_outside_link_once(tmp_path: Path) -> None:
    _save(tmp_path / "outside.png", (1, 2, 3))
    root = tmp_path / "flat"
    _save(root / "a.png", (200, 0, 0))
    (root / "b.png").symlink_to(tmp_path / "outside.png")
    dataset = FolderDataset(root, "all")
    assert len(dataset) == 1 and dataset.classes is None
    assert [Path(p.path).name for p in dataset.problems] == ["b.png"]


def test_a_link_changed_after_the_scan_is_not_read(tmp_path: Path) -> None:
    _save(tmp_path / "outside.png", (1, 2, 3))
    root = tmp_path / "flat"
    _save(root / "a.png", (200, 0, 0))
    _save(root / "real.png", (0, 200, 0))
    (root / "b.png").symlink_to(root / "real.png")
    dataset = FolderDataset(root, "all")
    assert len(dataset) == 3 and dataset.problems == []
    index = next(i for i in range(3) if dataset.describe(i).endswith("b.png"))
    (root / "b.png").unlink()
    (root / "b.png").symlink_to(tmp_path / "outside.png")
    image, _ = dataset[index]  # the next usable image instead
    assert image.getpixel((0, 0)) != (1, 2, 3)
    (problem,) = dataset.problems
    assert problem.path == str(root / "b.png") and "outside the folder" in problem.reason
