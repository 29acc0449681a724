"""Tests of your own pipelines: ``from own_pipelines import ...`` finds ``own_pipelines.py``.

``tests/probe`` is a package; its folder is put on ``sys.path`` so that the tests here and in
``tests/checks`` import the same pipelines.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
