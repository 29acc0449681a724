"""Faults of the run directory for the tests: a directory made read-only, a full disk.

:func:`make_read_only` does ``chmod a-w`` on a directory. Root ignores the mode bits, so where
the chmod does not bite (the test suite runs as root in some containers) it also refuses, on
the Python calls that create, rename or remove an entry of that directory, what the kernel
would refuse: ``PermissionError(EACCES)``. Files that exist stay writable in place, as with a
real ``chmod a-w`` of their directory.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def _inside(path: Any, folder: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).absolute().parent == folder
    except TypeError:  # a file descriptor
        return False


def _denied(path: Any) -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))


def chmod_bites(folder: Path) -> bool:
    """Whether the mode bits of ``folder`` stop this process from creating a file in it."""
    probe = folder / ".write-probe"
    try:
        probe.touch()
    except PermissionError:
        return True
    probe.unlink()
    return False


def deny_writes_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse what ``chmod a-w folder`` refuses to a normal user, on the Python calls that
    create, rename or remove an entry of ``folder`` (for root, whom the mode bits do not stop)."""
    folder = Path(folder).absolute()
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if _inside(file, folder) and any(m in mode for m in "wax+"):
            if "x" in mode or not Path(os.fsdecode(file)).exists():
                raise _denied(file)
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if _inside(path, folder) and flags & _WRITE_FLAGS and not Path(path).exists():
            raise _denied(path)
        return real_os_open(path, flags, *args, **kwargs)

    def refuse(real: Callable[..., Any], *positions: int) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            for i in positions:
                if i < len(args) and _inside(args[i], folder):
                    raise _denied(args[i])
            return real(*args, **kwargs)

        return guarded

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    for name, positions in (
        ("replace", (0, 1)),
        ("rename", (0, 1)),
        ("unlink", (0,)),
        ("remove", (0,)),
        ("mkdir", (0,)),
        ("rmdir", (0,)),
    ):
        monkeypatch.setattr(os, name, refuse(getattr(os, name), *positions))
