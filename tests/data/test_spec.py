"""open_dataset: every spec form, options, and errors that say what exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dinodiag.data import FolderDataset, GeneratedDataset, ImageDataset, open_dataset
from dinodiag.data.spec import sample_images_dir
from dinodiag.errors import DataError
from tests.facts import assert_mentions


def _folder(root: Path) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(5):
            Image.new("RGB", (20, 20), (index * 40, 0, 0)).save(root / name / f"{index}.png")
    return root


@pytest.mark.parametrize("spec", ["sample", "sample_images", "SAMPLE", "sample_images/"])
def test_sample_aliases_open_the_bundled_folder(spec: str) -> None:
    dataset = open_dataset(spec)
    assert isinstance(dataset, FolderDataset)
    assert dataset.root == sample_images_dir()
    assert dataset.name == "sample_images (train)"
    assert dataset.has_labels and len(dataset.classes or []) >= 4
    assert len(open_dataset(spec, "all")) == len(dataset) + len(open_dataset(spec, "val"))


def test_sample_folder_is_relative_to_the_package() -> None:
    import dinodiag

    assert sample_images_dir() == Path(dinodiag.__file__).resolve().parent.parent / "sample_images"


def test_paths_and_folder_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "imgs")
    by_path = open_dataset(str(root), "all")
    by_prefix = open_dataset(f"folder:{root}", "all")
    assert len(by_path) == len(by_prefix) == 10
    assert by_path.classes == ["a", "b"]
    monkeypatch.chdir(tmp_path)
    assert len(open_dataset("imgs", "val")) == 2  # relative paths work
    assert len(open_dataset("folder:imgs", "val", val_fraction=0.4)) == 4


def test_generated_with_and_without_options() -> None:
    default = open_dataset("generated")
    assert isinstance(default, GeneratedDataset)
    assert len(default) == 2000 and default.size == 64 and len(default.classes or []) == 10
    custom = open_dataset("generated:n=50,size=32,classes=4,seed=7", "val")
    assert len(custom) == 200 and custom.size == 32 and custom.seed == 7
    assert custom.classes == ["circle", "square", "triangle", "ring"]
    keyword = open_dataset("generated:size=32", size=48, n=30, val_n=12)
    assert keyword.size == 48 and len(keyword) == 30  # keyword options win
    assert len(open_dataset("generated", "val", val_n=12)) == 12
    assert isinstance(open_dataset("Generated:"), ImageDataset)


@pytest.mark.parametrize(
    ("spec", "options", "facts"),
    [
        ("generated:clases=3", {}, ["'clases'", "did you mean 'classes'"]),
        ("generated", {"sizes": 32}, ["'sizes'", "did you mean 'size'"]),
        ("generated:size=big", {}, ["size='big'", "valid int"]),
        ("generated:size", {}, ["'size'", "not key=value", "generated:n=1000,size=64"]),
        ("generated:n=5", {"split": "test"}, ["split 'test'", "train, val"]),
        ("sample", {"size": 64}, ["unknown option 'size'", "folder datasets", "val_fraction"]),
    ],
)
def test_option_errors(spec: str, options: dict, facts: list[str]) -> None:
    split = options.pop("split", "train")
    with pytest.raises(DataError) as info:
        open_dataset(spec, split, **options)
    assert_mentions(str(info.value), *facts)  # the option, and the ones allowed or meant


def test_torchvision_kinds_refuse_options(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="take no options"):
        open_dataset(f"cifar10:{tmp_path}", size=32)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("sampel", "Did you mean 'sample'"),
        ("genrated", "Did you mean 'generated'"),
        ("cifar", "Did you mean cifar10:ROOT"),
        ("cifar1O:/data", "Did you mean cifar10:/data"),
        ("stl-10:/data", "Did you mean stl10:/data"),
        ("cifar10", "needs a root folder"),
        ("cifar10:", "no root folder"),
        ("", "empty"),
    ],
)
def test_unknown_specs_suggest_a_near_name(spec: str, expected: str) -> None:
    with pytest.raises(DataError, match=expected) as info:
        open_dataset(spec)
    if "Did you mean" in expected:
        assert "cifar100:ROOT" in str(info.value)  # and the list of forms that exist


def test_missing_folder_lists_the_forms(tmp_path: Path) -> None:
    missing = tmp_path / "photos"
    with pytest.raises(DataError, match="does not exist") as info:
        open_dataset(str(missing))
    message = str(info.value)
    assert str(missing) in message
    for form in ("sample", "generated", "cifar10:ROOT", "stl10:ROOT", "folder:PATH"):
        assert form in message


def test_missing_sample_folder_says_how_to_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dinodiag.data.spec.sample_images_dir", lambda: tmp_path / "gone")
    with pytest.raises(DataError) as info:
        open_dataset("sample")
    # the command that draws them again, to copy
    assert "python -m dinodiag.data.samples" in str(info.value)  # wording is the feature
