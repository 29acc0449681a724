"""File names that are not UTF-8 (a Latin-1 ``café.png`` in a UTF-8 locale): every name
dinodiag prints, writes or draws has its undecodable bytes escaped, and nothing breaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from dinodiag.data import FolderDataset
from dinodiag.errors import DataError
from dinodiag.printable import printable

ROOT = Path(__file__).resolve().parents[2]
LATIN1 = b"caf\xe9"  # "café" in Latin-1: not valid UTF-8


def latin1_folder(root: Path) -> Path:
    """Two good images (one with a Latin-1 name) and one broken Latin-1 file."""
    root.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 40), (200, 20, 20)).save(root / "plain.png")
    Image.new("RGB", (48, 40), (20, 20, 200)).save(
        os.fsdecode(bytes(root) + b"/" + LATIN1 + b".png")
    )
    Path(os.fsdecode(bytes(root) + b"/bad_" + LATIN1 + b".jpg")).write_bytes(b"\xff\xd8 not a jpeg")
    return root


def utf8_strict(text: str) -> bytes:
    return text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate


def test_printable_escapes_undecodable_bytes_only() -> None:
    assert printable(os.fsdecode(b"/d/" + LATIN1 + b".png")) == "/d/caf\\xe9.png"
    assert printable("/d/café.png") == "/d/café.png"  # valid UTF-8 is left alone
    assert printable(Path(os.fsdecode(b"/x/\xff"))) == "/x/\\xff"


def test_folder_names_problems_and_errors_are_printable(tmp_path: Path) -> None:
    dataset = FolderDataset(latin1_folder(tmp_path / "imgs"), split="all")
    dataset.validate()
    described = [dataset.describe(i) for i in range(len(dataset))]
    assert any(name.endswith("caf\\xe9.png") for name in described)
    assert [p.path.rsplit("/", 1)[1] for p in dataset.problems] == ["bad_caf\\xe9.jpg"]
    for text in [*described, dataset.name, *(p.path + p.reason for p in dataset.problems)]:
        utf8_strict(text)
    assert {dataset[i][0].size for i in range(len(dataset))} == {(48, 40)}  # the files open
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/d" + LATIN1))
    latin1_folder(folder / os.fsdecode(LATIN1))  # one class folder, named in Latin-1
    labelled = FolderDataset(folder, split="all")
    assert labelled.name.endswith("/dcaf\\xe9 (all)")
    assert labelled.classes == ["caf\\xe9"]  # a class folder's name is drawn in charts
    try:
        FolderDataset(Path(os.fsdecode(bytes(tmp_path) + b"/none_" + LATIN1)))
    except DataError as error:
        utf8_strict(str(error))
    else:
        raise AssertionError("a missing folder must raise DataError")


def test_check_cli_prints_and_writes_escaped_names_under_a_strict_utf8_locale(
    tmp_path: Path,
) -> None:
    folder = latin1_folder(tmp_path / os.fsdecode(b"d" + LATIN1))
    report_json, report_md = tmp_path / "r.json", tmp_path / "r.md"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "dinodiag", "check", "--data", os.fsencode(folder)]
    command += ["--samples", "4", "--json", str(report_json), "--markdown", str(report_md)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr.decode("utf-8", "replace")
    out = result.stdout.decode("utf-8")  # strict: the output is valid UTF-8
    assert "bad_caf\\xe9.jpg" in out and "dcaf\\xe9" in out
    unusable = json.loads(report_json.read_text(encoding="utf-8"))["unusable_files"]
    assert [f["path"].rsplit("/", 1)[1] for f in unusable] == ["bad_caf\\xe9.jpg"]
    assert "bad_caf\\xe9.jpg" in report_md.read_text(encoding="utf-8")
