"""One training step: teacher on the global crops, student on globals (with iBOT masks) and
locals, DINO + iBOT + KoLeo losses, backward, clipping, AdamW, EMA, and the diagnostics.

Shapes (view-major, see :mod:`dinodiag.train.losses.dino`): G global views, L local views,
B images per process, K prototypes, N patches per global crop, M masked patches.

    global_crops (G*B, 3, H, W), local_crops (L*B, 3, h, w), masks (G*B, N) bool
    teacher cls_logits (G*B, K), patch_logits (M, K)
    student cls_logits ((G+L)*B, K), patch_logits (M, K), global_cls (G*B, D)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from dinodiag.errors import TrainingError
from dinodiag.recipe.config import OptimConfig
from dinodiag.train import distributed
from dinodiag.train.builders import Losses
from dinodiag.train.diagnostics import compute_diagnostics
from dinodiag.train.ema import ema_update, param_distance
from dinodiag.train.losses.dino import other_view
from dinodiag.train.models.network import DinoNetwork
from dinodiag.train.optim import apply_schedule, clip_gradients_per_part

#: Loss terms in the order they are reduced and checked.
TERMS = ("loss", "dino_loss", "ibot_loss", "koleo_loss")


class NonFiniteLossError(TrainingError):
    """The loss (or the gradient) became NaN / Inf; ``term`` names what went bad first."""

    def __init__(self, message: str, step: int, term: str) -> None:
        super().__init__(message)
        self.step = step
        self.term = term


@dataclass
class StepModules:
    """What a step needs. ``student`` / ``teacher`` are what is called (maybe wrapped in DDP or
    torch.compile); ``student_net`` / ``teacher_net`` are the plain modules."""

    student: nn.Module
    student_net: DinoNetwork
    teacher: nn.Module
    teacher_net: nn.Module
    losses: Losses
    optimizer: torch.optim.Optimizer
    optim: OptimConfig
    ibot: bool
    device: torch.device
    autocast_dtype: torch.dtype | None  # torch.bfloat16 on CUDA, None = fp32


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """bf16 autocast on the device when ``dtype`` is set, a disabled context otherwise."""
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def to_device(batch: dict[str, Any], device: torch.device, ibot: bool) -> tuple[Any, Any, Any]:
    """(global_crops, local_crops or None, masks or None) on ``device`` (non-blocking on CUDA,
    from pinned memory)."""
    non_blocking = device.type == "cuda"
    global_crops = batch["global_crops"].to(device, non_blocking=non_blocking)
    local = batch["local_crops"]
    local_crops = local.to(device, non_blocking=non_blocking) if local.numel() else None
    masks = batch.get("masks")
    if not ibot or masks is None or not bool(masks.any()):
        masks = None
    else:
        masks = masks.to(device, non_blocking=non_blocking)
    return global_crops, local_crops, masks


def _nonfinite_message(values: dict[str, float], step: int, what: str) -> tuple[str, str]:
    bad = [t for t in TERMS[1:] if not math.isfinite(values[t])]
    term = bad[0] if bad else what
    shown = ", ".join(f"{t} {values[t]:.4g}" for t in TERMS)
    message = (
        f"{term} is {values.get(term, float('nan'))} at step {step} ({shown}). Try: lower the lr "
        "(--lr; check the sqrt(batch / 1024) scaling), keep gradient clipping on (3.0), use "
        "bf16 or fp32 rather than fp16, and a batch of >= 2 per process for KoLeo."
    )
    if term == "grad_norm":
        message = (
            f"the gradient norm is {values['grad_norm']} at step {step} while the loss is "
            f"finite ({shown}): lower the lr (--lr) or the clip (optim.clip_grad)."
        )
    return message, term


def compute_losses(
    m: StepModules, batch: dict[str, Any], teacher_temp: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, Any]]:
    """Forward passes and the weighted loss; returns (loss, terms, outputs for diagnostics)."""
    global_crops, local_crops, masks = to_device(batch, m.device, m.ibot)
    batch_size = int(batch["indices"].shape[0])
    n_global = global_crops.shape[0] // batch_size
    with autocast(m.device, m.autocast_dtype):
        with torch.no_grad():
            t_out = m.teacher(global_crops, masks=masks, mask_input=False)
        s_out = m.student(global_crops, local_crops, masks=masks)
    teacher_logits = t_out["cls_logits"].float().detach()  # (G*B, K)
    student_logits = s_out["cls_logits"].float()  # ((G+L)*B, K)
    optim, losses = m.optim, m.losses
    teacher_probs = losses.dino.teacher_probs(teacher_logits, teacher_temp)
    dino = losses.dino.cross_entropy(student_logits, teacher_probs, n_global)
    if optim.centering == "center":
        losses.dino.update_center(teacher_logits)
    zero = student_logits.new_zeros(())
    ibot = zero
    if masks is not None:
        t_patch = t_out["patch_logits"].float().detach()
        patch_probs = losses.ibot.teacher_probs(t_patch, teacher_temp)
        ibot = losses.ibot.cross_entropy(s_out["patch_logits"].float(), patch_probs, masks)
        if optim.centering == "center":
            losses.ibot.update_center(t_patch)
    koleo = zero
    if optim.koleo_weight > 0:
        # Per global view, on this process's B images (neighbours searched on all processes).
        koleo = sum(losses.koleo(chunk) for chunk in s_out["global_cls"].chunk(n_global))
    loss = optim.dino_weight * dino + optim.ibot_weight * ibot + optim.koleo_weight * koleo
    terms = {"loss": loss, "dino_loss": dino, "ibot_loss": ibot, "koleo_loss": koleo}
    outputs = {
        "teacher_logits": teacher_logits,
        "teacher_probs": teacher_probs,
        "student_logits": student_logits,
        "teacher_cls": t_out["global_cls"],
        "n_global": n_global,
        "batch_size": batch_size,
    }
    return loss, terms, outputs


def train_step(
    m: StepModules,
    batch: dict[str, Any],
    schedule: dict[str, Any],
    step: int,
    diagnostics: bool = False,
) -> dict[str, float]:
    """One optimisation step; ``step`` is the count of steps done once it completes (>= 1).

    Returns the logged values: the loss terms (averaged over processes; unweighted, so
    ``loss = dino_weight * dino_loss + ibot_weight * ibot_loss + koleo_weight * koleo_loss``;
    DINOv2's training_metrics.json shows half of the iBOT and weighted KoLeo terms), lr,
    last_layer_lr, wd, momentum, teacher_temp, grad_norm (all networks, before clipping) and,
    when ``diagnostics``, the collapse signals
    of :func:`compute_diagnostics` plus ``param_distance``. Raises
    :class:`NonFiniteLossError` (on every process alike) before touching the weights when
    the loss is NaN / Inf, and after backward when the gradient norm is.
    """
    lr = float(schedule["lr"])
    # The prototype layers train at last_layer_lr: 0 while frozen (AdamW's moments still move).
    last_layer_lr = float(
        schedule.get("last_layer_lr", 0.0 if schedule["freeze_last_layer"] else lr)
    )
    apply_schedule(m.optimizer, lr, float(schedule["wd"]), last_layer_lr)
    loss, terms, out = compute_losses(m, batch, float(schedule["teacher_temp"]))
    reduced = torch.stack([terms[t].detach().float() for t in TERMS])
    reduced = distributed.all_reduce_mean(reduced).tolist()
    values = dict(zip(TERMS, reduced, strict=True))
    if not all(math.isfinite(v) for v in reduced):
        message, term = _nonfinite_message(values, step, "loss")
        raise NonFiniteLossError(message, step, term)

    loss.backward()
    # Backbone, DINO head and iBOT head each clipped on their own, as DINOv2 does.
    grad_norm = clip_gradients_per_part(m.student_net.parts(), m.optim.clip_grad)
    if not math.isfinite(grad_norm):
        message, term = _nonfinite_message({**values, "grad_norm": grad_norm}, step, "grad_norm")
        raise NonFiniteLossError(message, step, term)
    m.optimizer.step()
    m.optimizer.zero_grad(set_to_none=True)
    ema_update(m.teacher_net, m.student_net, float(schedule["momentum"]))

    values.update(
        lr=lr,
        last_layer_lr=last_layer_lr,
        wd=float(schedule["wd"]),
        momentum=float(schedule["momentum"]),
        teacher_temp=float(schedule["teacher_temp"]),
        grad_norm=grad_norm,
    )
    if diagnostics:
        values.update(step_diagnostics(m, out))
    return values


@torch.no_grad()
def step_diagnostics(m: StepModules, out: dict[str, Any]) -> dict[str, float]:
    """Collapse signals of a step: each student global view is paired with the teacher's
    other view (what the loss compares); features are the teacher CLS of the first view."""
    n_global, batch = out["n_global"], out["batch_size"]
    probs = out["teacher_probs"]
    paired = other_view(probs, n_global) if n_global > 1 else probs
    diag = compute_diagnostics(
        paired,
        out["student_logits"][: n_global * batch],
        out["teacher_cls"][:batch].float(),
        teacher_logits=out["teacher_logits"],
        student_temp=m.optim.student_temp,
    )
    diag["param_distance"] = param_distance(m.teacher_net, m.student_net)
    return diag
