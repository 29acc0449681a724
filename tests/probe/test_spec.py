"""Loading a pipeline factory from ``file.py:factory`` survives what the user's file does to
``sys.path`` while it is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dinodiag.errors import PipelineSpecError
from dinodiag.probe.spec import load_factory

# the folder dinodiag put first on sys.path for the import, taken off again by the file itself
REMOVES_ITS_FOLDER = "import os, sys\nsys.path.remove(os.path.dirname(os.path.abspath(__file__)))\n"


def test_a_file_that_removes_its_own_folder_from_sys_path_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "tidy.py"
    path.write_text(REMOVES_ITS_FOLDER + "def build(**kwargs):\n    return 'built'\n")
    factory = load_factory(f"{path}:build")  # was ValueError: list.remove(x): x not in list
    assert factory() == "built"
    assert str(tmp_path.resolve()) not in sys.path  # not left behind either


def test_its_import_error_still_names_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "tidy_broken.py"
    path.write_text(REMOVES_ITS_FOLDER + "raise RuntimeError('no GPU here')\n")
    with pytest.raises(PipelineSpecError, match="no GPU here") as caught:
        load_factory(f"{path}:build")
    assert f"{path}:build" in str(caught.value)
