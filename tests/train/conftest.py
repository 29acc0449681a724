"""Fixtures of the training tests: run directories that fail (see ``faults.py``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.train.faults import chmod_bites, deny_writes_in


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """``read_only(folder)``: ``chmod a-w folder``, enforced for root too; undone at the end."""
    made: list[Path] = []

    def make(folder: Path) -> None:
        os.chmod(folder, 0o555)
        made.append(folder)
        if not chmod_bites(folder):
            deny_writes_in(folder, monkeypatch)

    yield make
    for folder in made:
        os.chmod(folder, 0o755)
