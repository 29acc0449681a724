"""Check tests: your own pipelines of ``tests/probe/own.py`` are importable here too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "probe"))
