"""What a user's pipeline returned, as global and local views: ``(C, H, W)`` tensors.

Accepted outputs: a dict with ``global_crops`` / ``local_crops`` (DINOv2; other keys such as
dinov3's ``global_crops_teacher`` or ``weak_flag`` are left alone, and a note names them), a
list / tuple of views (lightly, the seed's ``build_two_view_augment``), a single view. An
output without any view is an error that says so. A view is a torch
tensor, a PIL image (converted with ``ToTensor``, values in [0, 1]) or a numpy array; every
conversion and every guess (which views of a list are global) adds a line to ``notes``,
which the checks and the app show next to the verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from dinodiag.errors import PipelineSpecError

MAX_GUESSED_GLOBALS = 2  # the DINO convention: at most two global crops lead a list of views


def split_views(
    output: Any, spec: str, notes: list[str], n_global: int | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(global views, local views)`` of one call's output; each view ``(C, H, W)``.

    ``n_global`` says how many leading views of a list are global crops; by default the
    leading views with the size of the first one, at most :data:`MAX_GUESSED_GLOBALS`, and
    a note says so. ``spec`` names the pipeline in errors.
    """
    if isinstance(output, dict):
        if "global_crops" not in output:
            raise PipelineSpecError(
                f"pipeline {spec!r} returned a dict without 'global_crops' (keys: "
                f"{sorted(map(str, output))}); "
                "return {'global_crops': [...], 'local_crops': [...]} or a list of views."
            )
        globals_ = as_tensors(output["global_crops"], "global_crops", spec, notes)
        locals_ = as_tensors(output.get("local_crops", []), "local_crops", spec, notes)
        if not globals_:
            raise PipelineSpecError(
                f"pipeline {spec!r} returned no global crops (an empty 'global_crops'): DINO "
                "needs at least one global view; return the views it made."
            )
        others = sorted(str(k) for k in output if k not in ("global_crops", "local_crops"))
        if others:
            notes.append(
                f"dict output: checked 'global_crops' and 'local_crops'; other keys "
                f"({', '.join(others)}) are not views dinodiag checks"
            )
        return globals_, locals_
    if isinstance(output, (list, tuple)):
        if not output:
            raise PipelineSpecError(
                f"pipeline {spec!r} returned an empty {type(output).__name__}: no views to "
                "check. Return the views, e.g. {'global_crops': [g1, g2], 'local_crops': "
                "[...]} or a list of view tensors."
            )
        views = as_tensors(output, "views", spec, notes)
        if n_global is None:
            first = tuple(views[0].shape) if views else None
            n_global = 0
            limit = min(MAX_GUESSED_GLOBALS, len(views))
            while n_global < limit and tuple(views[n_global].shape) == first:
                n_global += 1
            if len(views) > n_global:
                notes.append(f"list output: took the first {n_global} views as global crops")
        return views[:n_global], views[n_global:]
    return as_tensors([output], "output", spec, notes), []


def view_objects(output: Any, n_global: int) -> tuple[list[Any], list[Any]]:
    """The objects the pipeline returned as its global and local views, before conversion,
    split as :func:`split_views` split them (``n_global``: how many globals it took)."""

    def listed(value: Any) -> list[Any]:
        return [value] if isinstance(value, (torch.Tensor, Image.Image)) else list(value)

    if isinstance(output, dict):
        return listed(output["global_crops"]), listed(output.get("local_crops", []))
    if isinstance(output, (list, tuple)):
        return list(output[:n_global]), list(output[n_global:])
    return [output], []


def as_tensors(views: Any, what: str, spec: str, notes: list[str]) -> list[torch.Tensor]:
    """One view or a list of them (``what`` names them in errors) -> CPU tensors."""
    if isinstance(views, (torch.Tensor, Image.Image)):
        views = [views]
    if not isinstance(views, (list, tuple)):
        raise PipelineSpecError(
            f"pipeline {spec!r} returned {what} of type {type(views).__name__}; "
            "expected a list of tensors or PIL images."
        )
    out: list[torch.Tensor] = []
    for i, view in enumerate(views):
        if isinstance(view, Image.Image):
            if not any("PIL images" in n for n in notes):
                notes.append(
                    "the pipeline returns PIL images, not tensors: dinodiag converted them with "
                    "ToTensor (values in [0, 1]); add ToTensor + Normalize to your pipeline"
                )
            array = np.array(view.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
            out.append(torch.from_numpy(array).permute(2, 0, 1))
        elif isinstance(view, torch.Tensor):
            out.append(view.detach().cpu())
        elif isinstance(view, np.ndarray):
            out.append(torch.from_numpy(np.asarray(view)))
            notes.append(f"{what}[{i}] is a numpy array; DINO training expects torch tensors")
        else:
            raise PipelineSpecError(
                f"pipeline {spec!r} returned {what}[{i}] of type {type(view).__name__}; "
                "expected a torch tensor or a PIL image."
            )
    return out
