"""Where a DINOv2 run's recipe and K are read from, in order, each with its source: the
run's ``config.yaml`` (merged over DINOv2's defaults), else the config its console log echoes
at start-up, else (K only) the rows of the newest teacher checkpoint's DINO head, else DINOv2's
default, said to be assumed.

    resolved, source = read_recipe(run_dir, console)      # (None, "") when neither exists
    k, k_source = read_prototypes(None, resolved, source, console, checkpoints)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dinodiag.augment.dinov2_config import ResolvedDinov2Config, resolve_dinov2_config
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.runs.console_log import ConsoleLog
from dinodiag.train.models.load import (
    DINOV2_CONFIG_FILE,
    CheckpointFile,
    read_dinov2_config,
    read_state_file,
)


def config_number(resolved: ResolvedDinov2Config, dotted: str, kind: type = float) -> Any:
    """``resolved.get(dotted)`` as ``kind``; :class:`TrainingError` naming the file and the key
    for a value that is not a number (``train.OFFICIAL_EPOCH_LENGTH: abc``)."""
    value = resolved.get(dotted)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(float(value)) if kind is int else kind(value)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError
        return number
    except (TypeError, ValueError, OverflowError):
        raise TrainingError(
            f"{resolved.source}: {dotted} is {str(value)[:80]!r}, not a number; fix the value "
            "(DINOv2 would not run with it either) or remove the key to use DINOv2's default."
        ) from None


def read_recipe(path: Path, console: ConsoleLog | None) -> tuple[ResolvedDinov2Config | None, str]:
    """config.yaml over DINOv2's defaults, else the config a console log echoes at start-up;
    and where it was read ("" when neither)."""
    config_file = path / DINOV2_CONFIG_FILE
    if config_file.is_file():
        return read_dinov2_config(config_file), DINOV2_CONFIG_FILE
    if console is None:
        return None, ""
    source = f"{console.path.relative_to(path)}'s config echo"
    echo = console.config
    if echo is None and console.config_keys:
        echo = {}
        for dotted, value in console.config_keys.items():
            section, _, key = dotted.partition(".")
            echo.setdefault(section, {})[key] = value
    if not echo:
        return None, ""
    try:
        return resolve_dinov2_config(echo, source=source), source
    except DinodiagError as exc:
        raise TrainingError(f"{exc} (read from {console.path})") from None


def prototypes_from_checkpoint(checkpoints: list[CheckpointFile]) -> int | None:
    """K from the newest teacher checkpoint's DINO head (rows of its last layer), read with
    ``weights_only`` and memory-mapped; None when there is none or it cannot be read."""
    import torch

    for checkpoint in reversed([c for c in checkpoints if c.kind == "teacher"]):
        try:
            data = read_state_file(checkpoint.path, mmap=True)  # only the head's shape is read
        except TrainingError:  # an unreadable file: K stays unknown, and the report says so
            continue
        state = data.get("teacher", data) if isinstance(data, dict) else {}
        for key in ("dino_head.last_layer.weight_v", "dino_head.last_layer.weight"):
            tensor = state.get(key) if isinstance(state, dict) else None
            if isinstance(tensor, torch.Tensor) and tensor.ndim == 2:
                return int(tensor.shape[0])
    return None


def read_prototypes(
    override: int | None,
    resolved: ResolvedDinov2Config | None,
    config_source: str,
    console: ConsoleLog | None,
    checkpoints: list[CheckpointFile],
) -> tuple[int, str]:
    """K and where it was read: the override, config.yaml / the config echo, the newest
    teacher checkpoint's head, else DINOv2's default."""
    if override is not None:
        return int(override), "--num-prototypes"
    if resolved is not None and "dino.head_n_prototypes" in resolved.from_file:
        return config_number(resolved, "dino.head_n_prototypes", int), config_source
    from_checkpoint = prototypes_from_checkpoint(checkpoints)
    if from_checkpoint is not None:
        return from_checkpoint, "the teacher checkpoint's DINO head"
    if resolved is not None and config_source == DINOV2_CONFIG_FILE:
        return config_number(resolved, "dino.head_n_prototypes", int), (
            f"{config_source} (DINOv2's default, not set there)"
        )
    return 65536, "DINOv2's default (assumed)"
