"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold, and would catch a break.

``lint-imports`` reads the contracts from ``pyproject.toml`` and builds the import graph of the
``dinodiag`` found first on ``sys.path``; running it with the checkout (or a copy) as the working
directory makes that copy the one analysed, whatever else is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The console script `lint-imports`, run by this interpreter (the venv's import-linter) with the
# working directory first on sys.path, which a console script would not put there.
LINT = "import sys; from importlinter.cli import lint_imports_command as lint; sys.exit(lint())"


def run_lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Check the contracts of ``root/pyproject.toml`` against the ``dinodiag`` under ``root``."""
    return subprocess.run(
        [sys.executable, "-c", LINT, "--no-cache", "--no-logo"],
        cwd=root,  # `python -c` puts the working directory first on sys.path
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_import_contract() -> None:
    result = run_lint_imports(REPO)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Contracts: 6 kept, 0 broken." in output, output


def test_the_contracts_catch_upward_app_and_training_loop_imports(tmp_path: Path) -> None:
    """A copy of the package with one violation per contract: each contract reports its break."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "dinodiag"
    shutil.copytree(REPO / "dinodiag", package, ignore=shutil.ignore_patterns("__pycache__"))

    def append(relative: str, line: str) -> None:
        path = package / relative
        path.write_text(path.read_text() + f"\n{line}\n")

    append("augment/records.py", "from dinodiag.checks import runner")  # a layer reaching up
    append("data/folder.py", "from dinodiag.stats import summarize")  # two layers up
    append("probe/spec.py", "import dinodiag.stats")  # independent siblings
    append("stats/summaries.py", "import streamlit")
    append("stats/geometry.py", "from dinodiag.stats import frames")  # a cycle in stats/
    append("data/base.py", "import pages._shared")
    append("dashboard/labels.py", "from dinodiag.train import engine")
    # a cycle hidden by a lazy import (train/config.py <-> train/pipelines.py once was)
    append("train/run_setup.py", "def _late():\n    from dinodiag.train import engine")
    append("recipe/presets.py", "def _device():\n    import torch")  # recipe stays torch-free
    append("rundir/reader.py", "def _tensor():\n    import torch")  # so does the run directory
    (package / "helpers.py").write_text('"""A top-level module without a layer."""\n')

    result = run_lint_imports(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Contracts: 0 kept, 6 broken." in output, output
    for expected in (
        "dinodiag.augment is not allowed to import dinodiag.checks",
        "dinodiag.augment.records -> dinodiag.checks.runner",
        "dinodiag.data is not allowed to import dinodiag.stats",
        "dinodiag.probe is not allowed to import dinodiag.stats",
        "- dinodiag.helpers",  # exhaustive: every top-level module has a layer
        "dinodiag is not allowed to import streamlit",
        "dinodiag.stats.summaries -> streamlit",
        "dinodiag is not allowed to import pages",
        "dinodiag.dashboard is not allowed to import dinodiag.train.engine",
        "No cycles are allowed in dinodiag.train.",
        "dinodiag.recipe is not allowed to import torch",
        "dinodiag.rundir is not allowed to import torch",
        "No cycles are allowed in dinodiag.stats.",
    ):
        assert expected in output, f"{expected!r} missing from:\n{output}"
