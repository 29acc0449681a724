"""File names as people read them: undecodable bytes escaped, never a crash.

On POSIX a file name is bytes. Python decodes them with ``surrogateescape``: a Latin-1
``café.png`` (byte ``0xe9``) in a UTF-8 locale becomes ``'caf\\udce9.png'``, a string that
opens the file but that no strict UTF-8 writer accepts (``print`` under
``PYTHONIOENCODING=utf-8:strict``, a JSON or Markdown report, pyarrow behind a Streamlit
table all raise "surrogates not allowed"). Every name dinodiag prints, writes or draws goes
through :func:`printable` first; the name used to *open* the file stays as found.

    printable(os.fsdecode(b"/data/caf\\xe9.png"))   # '/data/caf\\\\xe9.png' (shown as caf\\xe9)
    printable("/data/café.png")                     # unchanged

:func:`duration` is the one way a number of seconds is written, on a page or a console line.
:func:`stdout_reserved` keeps standard output for a machine-read answer (JSON) while code
that is not ours (the user's pipeline, a library) prints what it likes: to standard error.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator


def printable(value: str | os.PathLike[str]) -> str:
    """``value`` (a path or a sentence that may quote one) with every byte that is not
    UTF-8 written as ``\\xNN``; text that is valid UTF-8 comes back unchanged."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if text.isascii():
        return text
    try:  # the bytes the name was made of (surrogateescape), then decoded for people
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced: keep it visible
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@contextlib.contextmanager
def stdout_reserved() -> Iterator[None]:
    """Inside the block everything printed to standard output (``print``, C code writing to
    file descriptor 1, forked worker processes) goes to standard error, so that the one answer
    a script reads (``--json``), printed after the block, is all that standard output holds."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (closed): Python-level redirection only
        saved = None
    try:
        if saved is not None:
            os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def duration(seconds: float | None, *, compact: bool = False) -> str:
    """``95`` -> ``1 min 35 s`` (pages, tables), ``1m35s`` with ``compact`` (the console's
    progress line); ``3700`` -> ``1 h 01 min`` / ``1h01m``. ``None`` or NaN -> ``–`` (``?``
    with ``compact``)."""
    if seconds is None or not math.isfinite(seconds):
        return "?" if compact else "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if compact:
        if hours:
            return f"{hours}h{minutes:02d}m"
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
