"""The ``dashboard-acyclic`` import contract (pyproject.toml) would catch a cycle among the
modules of dinodiag.dashboard, such as the re-export shim ``curves.curve_chart`` that once
imported ``curve_charts`` back (issue 22)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.test_layers import REPO, run_lint_imports


def test_a_cycle_between_dashboard_modules_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "dinodiag"
    shutil.copytree(REPO / "dinodiag", package, ignore=shutil.ignore_patterns("__pycache__"))
    curves = package / "dashboard" / "curves.py"
    # the old shim: a lazy import inside a function counts as an import
    curves.write_text(
        curves.read_text()
        + "\n\ndef curve_chart(long, **options):\n"
        + "    from dinodiag.dashboard.curve_charts import curve_chart as chart\n\n"
        + "    return chart(long, **options)\n"
    )
    result = run_lint_imports(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert " kept, 1 broken." in output and "without a cycle BROKEN" in output, output
    [cycle] = [line for line in output.splitlines() if ".curves -> .curve_charts" in line]
    assert "(1 import)" in cycle, output


def test_curves_no_longer_reexports_the_chart() -> None:
    from dinodiag.dashboard import curves

    assert not hasattr(curves, "curve_chart")
