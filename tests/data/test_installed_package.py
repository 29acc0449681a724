"""`pip install .` (not editable), then `python -m dinodiag check` from another directory.

An installed package carries no ``sample_images/``: the dataset ``sample`` draws them into the
per-user cache on first use, and the checks measure the same images as in the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]


def test_check_runs_on_the_sample_images_from_an_installed_package(tmp_path: Path) -> None:
    # Install from a copy of the sources, so the build leaves nothing in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "dinodiag", source / "dinodiag", ignore=shutil.ignore_patterns("__pycache__")
    )
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert not (site / "sample_images").exists()

    elsewhere = tmp_path / "elsewhere"  # neither the checkout nor the install
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DINODIAG_SAMPLE_IMAGES"}
    env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"))

    def dinodiag(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    # The installed copy is the one that runs (not the checkout, not an editable install).
    where = dinodiag("-c", "import dinodiag; print(dinodiag.__file__)")
    assert where.stdout.strip() == str(site / "dinodiag" / "__init__.py"), where.stderr

    report = tmp_path / "installed.json"
    result = dinodiag("-m", "dinodiag", "check", "--preset", "dinov2", "--json", str(report))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: PASS" in result.stdout
    folder = tmp_path / "cache" / "dinodiag" / "sample_images"
    assert_mentions(result.stderr, "drawing", "20 missing", str(folder))
    assert len(list(folder.rglob("*.*"))) == 20

    # The drawn images measure as the committed ones do.
    from dinodiag.cli import main

    assert main(["check", "--preset", "dinov2", "--json", str(tmp_path / "checkout.json")]) == 0
    installed = json.loads(report.read_text())["checks"]
    checkout = json.loads((tmp_path / "checkout.json").read_text())["checks"]
    assert installed == checkout
