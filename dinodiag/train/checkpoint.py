"""Checkpoints: everything needed to continue a run with the same step count.

``checkpoint.pt`` holds the student, the teacher, the optimiser state, the DINO / iBOT centres,
the step, the elapsed time and the config; it is written to a temporary file in the run
directory, flushed to the disk and renamed over the old one, so a crash or a full disk
mid-write leaves the previous checkpoint. Loading uses ``weights_only=True`` (tensors and plain
data only).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dinodiag.errors import TrainingError
from dinodiag.rundir import CHECKPOINT_FILE
from dinodiag.rundir.lock import RunDirError, os_error_message
from dinodiag.train.ema import unwrap

CHECKPOINT_VERSION = 1
REQUIRED_KEYS = ("version", "step", "student", "teacher", "optimizer", "dino_loss", "ibot_loss")


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    epoch: float,
    elapsed: float,
    student: nn.Module,
    teacher: nn.Module,
    optimizer: torch.optim.Optimizer,
    dino_loss: nn.Module,
    ibot_loss: nn.Module,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``checkpoint.pt`` atomically (temporary file + rename); returns its path.

    Raises :class:`RunDirError` naming the file and the reason when it cannot be written
    (the directory is not writable, the disk is full); the previous checkpoint is then intact.
    """
    path = checkpoint_path(run_dir)
    state = {
        "version": CHECKPOINT_VERSION,
        "step": int(step),
        "epoch": float(epoch),
        "elapsed": float(elapsed),
        "student": unwrap(student).state_dict(),
        "teacher": unwrap(teacher).state_dict(),
        "optimizer": optimizer.state_dict(),
        "dino_loss": dino_loss.state_dict(),
        "ibot_loss": ibot_loss.state_dict(),
        "config": config,
        "extra": extra or {},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())  # on disk before the rename replaces the old one
        os.replace(tmp, path)
    except OSError as exc:
        raise RunDirError(os_error_message(path, exc, "write the checkpoint")) from None
    except RuntimeError as exc:  # torch's writer reports a full disk without an errno
        message = os_error_message(path, None, "write the checkpoint")
        raise RunDirError(f"{message} (torch: {str(exc).strip()[:200]})") from None
    finally:
        with contextlib.suppress(OSError):  # a read-only directory keeps it (no rename either)
            tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(
    run_dir: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read ``checkpoint.pt`` of a run; :class:`TrainingError` when missing or unreadable."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise TrainingError(
            f"cannot resume: there is no {CHECKPOINT_FILE} in {Path(run_dir)} (the run never "
            "reached its first checkpoint, or this is not a run directory). Start the run again "
            "without --resume, or point --run-dir at the run to continue."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged file
        raise TrainingError(
            f"cannot resume: {path} is damaged or not a dinodiag checkpoint "
            f"({type(exc).__name__}: {str(exc)[:200]}). Delete it and start the run again "
            "without --resume."
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
        raise TrainingError(
            f"cannot resume: {path} is not a dinodiag training checkpoint (missing "
            f"{', '.join(missing)}). Start the run again without --resume."
        )
    if state["version"] != CHECKPOINT_VERSION:
        raise TrainingError(
            f"cannot resume: {path} has checkpoint version {state['version']}, this dinodiag "
            f"reads version {CHECKPOINT_VERSION}. Start a new run."
        )
    return state


def restore(
    state: dict[str, Any],
    *,
    student: nn.Module,
    teacher: nn.Module,
    optimizer: torch.optim.Optimizer,
    dino_loss: nn.Module,
    ibot_loss: nn.Module,
    path: str | Path = CHECKPOINT_FILE,
) -> None:
    """Load a checkpoint's weights and states; a mismatch (changed model config) becomes a
    :class:`TrainingError` naming the checkpoint."""
    try:
        unwrap(student).load_state_dict(state["student"])
        unwrap(teacher).load_state_dict(state["teacher"])
        optimizer.load_state_dict(state["optimizer"])
        dino_loss.load_state_dict(state["dino_loss"])
        ibot_loss.load_state_dict(state["ibot_loss"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise TrainingError(
            f"cannot resume from {path}: its weights do not fit the model built from the "
            f"config ({str(exc).splitlines()[0][:300]}). Resume with the run's own config.json "
            "(do not change --arch, --patch-size, --num-prototypes ... when resuming)."
        ) from None
