"""Record every transform your own pipeline runs: what went in, what came out, what it drew.

Within :func:`record_operations`, torchvision's transforms (v1 and v2) append an event
(:class:`~dinodiag.probe.recording.Event`) each time they run: the transform, its input and
output objects and the parameters it drew (``get_params`` / ``make_params``). The containers
(``Compose``, ``RandomApply``, ``RandomChoice``, ``RandomOrder``) also record each of their
steps, so a hand-written step of a ``Compose`` (DINO v1's ``GaussianBlur`` class, a lambda)
is an event too, judged afterwards from the change it made (:mod:`dinodiag.probe.effects`).
Resampling calls (PIL's ``Image.resize``, torchvision's ``functional.resize`` /
``resized_crop``, ``torch.nn.functional.interpolate``) note their interpolation on the
innermost open event (a hand-written crop class's step), or, called outside any transform,
are an event of their own (:mod:`dinodiag.probe.resampling`).
:mod:`dinodiag.probe.attribution` turns one call's events into one record per view.

How it stays out of the way:

- The classes are patched while at least one recording is open anywhere in the process
  (a lock and a count: the first block in patches, the last one out restores the original
  methods), and each wrapper looks up the recording of its own thread / context
  (a ``ContextVar``): a call outside a block, or in another thread, runs the original.
- The containers' loops are re-run by dinodiag (to see each step), drawing exactly what
  torchvision draws (the same ``torch.rand`` / ``random`` calls in the same order), so a
  recorded call returns the same views and leaves the generators where an unrecorded call
  would (``tests/probe/test_recorder.py`` holds both equal).

This module holds that machinery; the records are :mod:`dinodiag.probe.recording`'s, and what
is patched, per library, is in :mod:`dinodiag.probe.torchvision_patches` (transforms and their
parameter draws), :mod:`dinodiag.probe.container_loops` (the containers' loops) and
:mod:`dinodiag.probe.resampling` (PIL, torchvision's functionals, ``F.interpolate``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from dinodiag.probe.recording import ACTIVE_RECORDING, Recording
from dinodiag.probe.resampling import patch_resamplers
from dinodiag.probe.torchvision_patches import patch_torchvision

_PATCH_LOCK = threading.Lock()
_PATCH_STATE: dict[str, Any] = {"count": 0, "saved": []}


@contextlib.contextmanager
def record_operations() -> Iterator[Recording]:
    """Within the block, every torchvision transform call of this context is recorded."""
    with _PATCH_LOCK:
        if _PATCH_STATE["count"] == 0:
            _PATCH_STATE["saved"] = _install()
        _PATCH_STATE["count"] += 1
    recording = Recording()
    token = ACTIVE_RECORDING.set(recording)
    try:
        yield recording
    finally:
        ACTIVE_RECORDING.reset(token)
        with _PATCH_LOCK:
            _PATCH_STATE["count"] -= 1
            if _PATCH_STATE["count"] == 0:
                for owner, name, original in reversed(_PATCH_STATE["saved"]):
                    setattr(owner, name, original)
                _PATCH_STATE["saved"] = []


def _install() -> list[tuple[Any, str, Any]]:
    """Patch torchvision's transform classes and the resampling functions; returns
    ``(owner, name, original)`` to restore."""
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, new: Any) -> None:
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, new)

    patch_resamplers(patch)
    patch_torchvision(patch)
    return saved
