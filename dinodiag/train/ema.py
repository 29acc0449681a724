"""The teacher: an exponential moving average (EMA) of the student's weights.

    teacher = make_teacher(student)           # a real copy, frozen, eval mode
    ...                                       # after each optimizer step:
    ema_update(teacher, student, momentum)    # t = m * t + (1 - m) * s
    param_distance(teacher, student)          # > 0 after the first step; 0 = same object

A teacher that *is* the student (same object or shared tensors) keeps the loss at ln K
(dinov2 issue 407); :func:`make_teacher` always deep-copies.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dinodiag.errors import TrainingError


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / torch.compile wrapper (or the model)."""
    while True:
        inner = getattr(model, "module", None)
        if not isinstance(inner, nn.Module):
            inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def make_teacher(student: nn.Module) -> nn.Module:
    """A deep copy of ``student`` with no gradients, in eval mode (no dropout / drop path;
    BatchNorm uses running statistics, which :func:`ema_update` copies from the student)."""
    teacher = copy.deepcopy(unwrap(student))
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher


def _paired(
    teacher: nn.Module, student: nn.Module
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    teacher, student = unwrap(teacher), unwrap(student)
    t_params = dict(teacher.named_parameters())
    s_params = dict(student.named_parameters())
    if t_params.keys() != s_params.keys():
        missing = sorted(set(t_params) ^ set(s_params))[:5]
        raise TrainingError(
            f"teacher and student have different parameters (e.g. {missing}): build the teacher "
            "with make_teacher(student) from the same architecture."
        )
    names = list(s_params)
    return [t_params[n].data for n in names], [s_params[n].data for n in names]


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """In place: ``t = momentum * t + (1 - momentum) * s`` for every parameter (foreach ops).

    Buffers (e.g. BatchNorm running statistics) are copied from the student.
    """
    if not 0.0 <= momentum <= 1.0:
        raise TrainingError(f"teacher momentum must be in [0, 1], got {momentum}.")
    t_params, s_params = _paired(teacher, student)
    if momentum < 1.0 and t_params:
        torch._foreach_mul_(t_params, momentum)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - momentum)
    s_buffers = dict(unwrap(student).named_buffers())
    for name, buffer in unwrap(teacher).named_buffers():
        if name in s_buffers and buffer is not s_buffers[name]:
            buffer.copy_(s_buffers[name])


@torch.no_grad()
def param_distance(teacher: nn.Module, student: nn.Module) -> float:
    """L2 distance between the flattened parameter vectors of teacher and student."""
    t_params, s_params = _paired(teacher, student)
    if not t_params:
        return 0.0
    diffs = torch._foreach_sub([t.float() for t in t_params], [s.float() for s in s_params])
    norms = torch._foreach_norm(diffs)
    return float(torch.linalg.vector_norm(torch.stack(norms)))
