"""Build the networks, losses and optimiser of a run from its :class:`TrainConfig`.

The student is a :class:`~dinodiag.train.models.network.DinoNetwork` built from
``config.model`` itself (:func:`~dinodiag.train.models.network.build_network`); the teacher is
a deep copy (EMA). The schedules take ``config.optim`` itself
(:class:`~dinodiag.train.schedules.Schedules`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dinodiag.augment.config import PipelineConfig
from dinodiag.recipe.config import ModelConfig, TrainConfig
from dinodiag.train.ema import make_teacher
from dinodiag.train.losses.dino import DINOLoss
from dinodiag.train.losses.ibot import IBOTPatchLoss
from dinodiag.train.losses.koleo import KoLeoLoss
from dinodiag.train.models.network import DinoNetwork, build_network
from dinodiag.train.optim import build_adamw


def build_student(model: ModelConfig, pipeline: PipelineConfig) -> DinoNetwork:
    """Backbone + DINO head (+ iBOT head); positional grid sized for the global crops."""
    return build_network(model, pipeline.global_crops_size)


def ibot_enabled(config: TrainConfig) -> bool:
    """iBOT runs when its weight and mask probability are > 0 and the backbone has patch tokens
    (a ViT; ResNet-18 has none)."""
    optim = config.optim
    return optim.ibot_weight > 0 and optim.mask_probability > 0 and config.model.arch != "resnet18"


@dataclass
class Networks:
    student: DinoNetwork  # trained by the optimiser
    teacher: nn.Module  # EMA of the student, no gradients
    ibot: bool  # whether the iBOT loss (and its masks) is used


def build_networks(config: TrainConfig, pipeline: PipelineConfig, device: torch.device) -> Networks:
    """Student and teacher on ``device``. The mask token is frozen when iBOT is off (an unused
    parameter would break DistributedDataParallel)."""
    student = build_student(config.model, pipeline).to(device)
    ibot = ibot_enabled(config)
    mask_token = getattr(student.backbone, "mask_token", None)
    if mask_token is not None and not ibot:
        mask_token.requires_grad_(False)
    if student.ibot_head is not None and not ibot:
        student.ibot_head.requires_grad_(False)
    teacher = make_teacher(student)
    return Networks(student=student, teacher=teacher, ibot=ibot)


@dataclass
class Losses:
    dino: DINOLoss
    ibot: IBOTPatchLoss
    koleo: KoLeoLoss


def build_losses(config: TrainConfig, device: torch.device) -> Losses:
    """DINO and iBOT losses (their centres are buffers: saved in checkpoints) and KoLeo (on each
    process's batch, as DINOv2, unless ``optim.koleo_across_processes``). The iBOT loss has the
    iBOT head's prototype count."""
    optim, model = config.optim, config.model
    ibot_k = model.ibot_head_config().num_prototypes if model.ibot_separate_head else None
    kwargs = dict(
        student_temp=optim.student_temp,
        center_momentum=optim.center_momentum,
        centering=optim.centering,
    )
    return Losses(
        dino=DINOLoss(
            model.num_prototypes,
            normalisation=optim.dino_normalisation,
            **kwargs,  # type: ignore[arg-type]
        ).to(device),
        ibot=IBOTPatchLoss(
            ibot_k or model.num_prototypes,
            normalisation=optim.ibot_normalisation,
            **kwargs,  # type: ignore[arg-type]
        ).to(device),
        koleo=KoLeoLoss(gather_distributed=optim.koleo_across_processes),
    )


def build_optimizer(config: TrainConfig, student: nn.Module) -> torch.optim.AdamW:
    """AdamW (fused on CUDA) over the student's trainable parameters, in DINOv2's groups
    (layer-wise lr decay, patch-embedding lr multiplier, last-layer flag); lr / weight decay
    are set every step from the schedules."""
    optim = config.optim
    return build_adamw(
        student,
        lr=optim.base_lr,
        betas=(optim.beta1, optim.beta2),
        layerwise_decay=optim.layerwise_decay,
        patch_embed_lr_mult=optim.patch_embed_lr_mult,
    )
