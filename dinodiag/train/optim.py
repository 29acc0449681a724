"""Optimiser helpers: AdamW parameter groups, schedule application, gradient clipping.

No weight decay on biases, normalisation weights, LayerScale gammas (all 1-D tensors) and on
the positional embedding, CLS and mask tokens. Each group carries ``wd_multiplier`` and
``lr_multiplier``; :func:`apply_schedule` sets the group's lr / weight decay from the
schedule values of the step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

#: Parameter-name fragments that never get weight decay (besides every 1-D tensor).
NO_DECAY_NAMES = ("pos_embed", "cls_token", "mask_token")


def param_groups(
    model: nn.Module,
    lr_multipliers: dict[str, float] | None = None,
) -> list[dict]:
    """AdamW parameter groups of the trainable parameters of ``model``.

    Args:
        model: the student (backbone + heads).
        lr_multipliers: optional ``{name fragment: multiplier}``; a parameter whose name contains
            the fragment gets that lr multiplier (first match wins), e.g. ``{"patch_embed": 0.2}``.

    Returns groups ``{"params", "wd_multiplier" (0 or 1), "lr_multiplier", "name"}``.
    """
    lr_multipliers = lr_multipliers or {}
    groups: dict[tuple[float, float], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or any(fragment in name for fragment in NO_DECAY_NAMES)
        wd_mult = 0.0 if no_decay else 1.0
        lr_mult = next((m for frag, m in lr_multipliers.items() if frag in name), 1.0)
        key = (wd_mult, lr_mult)
        if key not in groups:
            label = ("no_decay" if no_decay else "decay") + (
                f"_lr{lr_mult:g}" if lr_mult != 1.0 else ""
            )
            groups[key] = {
                "params": [],
                "wd_multiplier": wd_mult,
                "lr_multiplier": lr_mult,
                "name": label,
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def build_adamw(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    lr_multipliers: dict[str, float] | None = None,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (weight decay set later by :func:`apply_schedule`).

    ``fused=None`` uses the fused kernel when every parameter is on a CUDA device.
    """
    groups = param_groups(model, lr_multipliers)
    if fused is None:
        fused = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=0.0, fused=fused or None)


def apply_schedule(optimizer: torch.optim.Optimizer, lr: float, weight_decay: float) -> None:
    """Set each group's ``lr = lr * lr_multiplier`` and ``weight_decay = wd * wd_multiplier``."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_multiplier", 1.0)
        group["weight_decay"] = weight_decay * group.get("wd_multiplier", 1.0)


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """Clip the total gradient norm to ``max_norm`` (None or <= 0: no clipping).

    Returns the total L2 norm **before** clipping (NaN/Inf if a gradient is not finite).
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None or max_norm <= 0:
        norms = torch._foreach_norm([p.grad for p in params])
        return float(torch.linalg.vector_norm(torch.stack([n.float() for n in norms])))
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
