"""Package attributes imported on first use (PEP 562), so that ``import dinodiag`` and the
command line's argument parsing never import torch before they need it.

    _LAZY = {"build_pipeline": "dinodiag.augment.pipeline"}
    __getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(
    package: str, namespace: dict[str, Any], table: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name of ``table`` is imported from its
    module on first use and kept in ``namespace`` (the package's globals) from then on."""

    def getattr_(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted([*namespace, *table])

    return getattr_, dir_
