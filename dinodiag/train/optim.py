"""Optimiser helpers: AdamW parameter groups as DINOv2 makes them, schedule application,
per-network gradient clipping.

Each parameter gets (as in DINOv2's ``get_params_groups_with_decay``):

- an lr multiplier ``layerwise_decay ** (depth + 1 - layer)``: the patch embedding, positional
  embedding, CLS / register / mask tokens are layer 0, block ``i`` is layer ``i + 1``, the final
  norm and the heads are layer ``depth + 1`` (multiplier 1); the patch embedding's is further
  multiplied by ``patch_embed_lr_mult``;
- no weight decay on biases, norms and LayerScale gammas (and any other 1-D tensor, e.g. a
  ResNet's BatchNorm); the positional embedding and the tokens **are** decayed;
- ``is_last_layer`` for the heads' prototype layers, whose lr is 0 while the last layer is
  frozen (AdamW still updates its moments then; the gradient is not dropped).

Parameters with the same (lr multiplier, wd multiplier, is_last_layer) share one group.
:func:`apply_schedule` sets each group's lr / weight decay from the schedule values of the step.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

#: Backbone parameters that count as layer 0 (before the first block).
EMBEDDING_NAMES = ("pos_embed", "patch_embed", "mask_token", "cls_token", "register_tokens")


def layer_id(name: str, depth: int) -> int:
    """The layer of a backbone parameter (``name`` relative to the backbone) for the lr decay:
    0 for the embeddings and tokens, ``i + 1`` for block ``i``, ``depth + 1`` otherwise."""
    if name.split(".")[0] in EMBEDDING_NAMES:
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth + 1


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norms, LayerScale gammas and 1-D tensors get no weight decay (DINOv2's rule, plus
    1-D tensors for BatchNorm)."""
    return name.endswith(".bias") or "norm" in name or "gamma" in name or param.ndim <= 1


def param_groups(
    model: nn.Module, layerwise_decay: float = 1.0, patch_embed_lr_mult: float = 1.0
) -> list[dict]:
    """AdamW parameter groups of the trainable parameters of ``model``.

    Args:
        model: the student (a :class:`~dinodiag.train.models.network.DinoNetwork`, whose
            ``backbone`` gets the layer-wise decay), or any module (treated as a head).
        layerwise_decay: lr decay per layer from the top (DINOv2: 0.9; 1.0 = off).
        patch_embed_lr_mult: extra lr multiplier of the patch embedding (DINOv2: 0.2).

    Returns groups ``{"params", "lr_multiplier", "wd_multiplier" (0 or 1), "is_last_layer",
    "name"}``.
    """
    backbone = getattr(model, "backbone", None)
    depth = len(getattr(backbone, "blocks", ()))
    backbone_ids = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups: dict[tuple[float, float, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        lr_mult = 1.0
        if id(param) in backbone_ids and depth:
            inner = name.removeprefix("backbone.")
            lr_mult = layerwise_decay ** (depth + 1 - layer_id(inner, depth))
        if "patch_embed" in name:
            lr_mult *= patch_embed_lr_mult
        wd_mult = 0.0 if no_weight_decay(name, param) else 1.0
        last = "last_layer" in name
        key = (lr_mult, wd_mult, last)
        if key not in groups:
            label = ("no_decay" if wd_mult == 0 else "decay") + f"_lr{lr_mult:.4g}"
            groups[key] = {
                "params": [],
                "lr_multiplier": lr_mult,
                "wd_multiplier": wd_mult,
                "is_last_layer": last,
                "name": label + ("_last_layer" if last else ""),
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def build_adamw(
    model: nn.Module,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    layerwise_decay: float = 1.0,
    patch_embed_lr_mult: float = 1.0,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (weight decay set later by :func:`apply_schedule`).

    ``fused=None`` uses the fused kernel when :func:`fused_adamw_applies` (every parameter a
    floating-point CUDA tensor); otherwise torch's default (the multi-tensor kernel).
    """
    groups = param_groups(model, layerwise_decay, patch_embed_lr_mult)
    if fused is None:
        fused = fused_adamw_applies([p for g in groups for p in g["params"]])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=0.0, fused=fused or None)


def fused_adamw_applies(params: list[torch.Tensor]) -> bool:
    """Whether AdamW's fused CUDA kernel takes ``params``: all floating point on CUDA (one
    kernel launch per step for the whole update instead of several per tensor group). On a
    CPU torch's default kernel is kept: its results are what the CPU tests pin."""
    return bool(params) and all(p.is_cuda and p.dtype.is_floating_point for p in params)


def apply_schedule(
    optimizer: torch.optim.Optimizer,
    lr: float,
    weight_decay: float,
    last_layer_lr: float | None = None,
) -> None:
    """Set each group's ``lr = lr * lr_multiplier`` (``last_layer_lr`` for the prototype layers;
    None = ``lr``) and ``weight_decay = weight_decay * wd_multiplier``."""
    for group in optimizer.param_groups:
        base = lr
        if group.get("is_last_layer") and last_layer_lr is not None:
            base = last_layer_lr
        group["lr"] = base * group.get("lr_multiplier", 1.0)
        group["weight_decay"] = weight_decay * group.get("wd_multiplier", 1.0)


def gradient_norm(parameters: Iterable[torch.nn.Parameter]) -> float:
    """The total L2 norm of the gradients of ``parameters`` (0 when none has one)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    norms = torch._foreach_norm(grads)
    return float(torch.linalg.vector_norm(torch.stack([n.float() for n in norms])))


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float | None) -> float:
    """Clip the total gradient norm to ``max_norm`` (None or <= 0: no clipping).

    Returns the total L2 norm **before** clipping (NaN/Inf if a gradient is not finite).
    """
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None or max_norm <= 0:
        return gradient_norm(params)
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def clip_gradients_per_part(parts: Iterable[nn.Module], max_norm: float | None) -> float:
    """Clip each module's gradient norm to ``max_norm`` on its own, as DINOv2 clips the
    backbone, the DINO head and the iBOT head; returns the norm of all the gradients together
    before clipping (NaN/Inf if one is not finite)."""
    norms = [clip_gradients(part.parameters(), max_norm) for part in parts]
    return float(sum(n * n for n in norms) ** 0.5)
