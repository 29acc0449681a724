"""Build the networks, losses and optimiser of a run from its :class:`TrainConfig`.

The student is a :class:`~dinodiag.train.models.network.DinoNetwork`; custom ViT widths
(``model.embed_dim`` / ``num_heads``, e.g. 96 / 3 for a CPU demo) are built here directly
from :class:`~dinodiag.train.models.vit.VisionTransformer`. The teacher is a deep copy (EMA).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dinodiag.augment.config import PipelineConfig
from dinodiag.train.config import ModelConfig, OptimConfig, TrainConfig
from dinodiag.train.ema import make_teacher
from dinodiag.train.losses.dino import DINOLoss
from dinodiag.train.losses.ibot import IBOTPatchLoss
from dinodiag.train.losses.koleo import KoLeoLoss
from dinodiag.train.models import network
from dinodiag.train.models.network import BackboneConfig, DinoNetwork, HeadConfig, build_head
from dinodiag.train.optim import build_adamw
from dinodiag.train.schedules import ScheduleConfig


def build_backbone(model: ModelConfig, img_size: int) -> nn.Module:
    """The backbone of ``model`` at ``img_size`` (see :func:`network.build_backbone`)."""
    return network.build_backbone(
        BackboneConfig(
            arch=model.arch,
            patch_size=model.patch_size,
            img_size=img_size,
            depth=model.depth,
            drop_path_rate=model.drop_path_rate,
            layerscale_init=model.layerscale_init,
            embed_dim=model.embed_dim,
            num_heads=model.num_heads,
        )
    )


def head_config(model: ModelConfig) -> HeadConfig:
    return HeadConfig(
        out_dim=model.num_prototypes,
        hidden_dim=model.head_hidden_dim,
        bottleneck_dim=model.head_bottleneck_dim,
        n_layers=model.head_layers,
        norm_last_layer=model.norm_last_layer,
        ibot_separate_head=model.ibot_separate_head,
    )


def build_student(model: ModelConfig, pipeline: PipelineConfig) -> DinoNetwork:
    """Backbone + DINO head (+ iBOT head); positional grid sized for the global crops."""
    backbone = build_backbone(model, pipeline.global_crops_size)
    dim = int(backbone.embed_dim)  # type: ignore[arg-type]
    heads = head_config(model)
    ibot_head = build_head(dim, heads) if heads.ibot_separate_head else None
    return DinoNetwork(backbone, build_head(dim, heads), ibot_head)


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
    """DINO and iBOT losses (their centres are buffers: saved in checkpoints) and KoLeo, which
    searches neighbours across processes under DDP."""
    optim, k = config.optim, config.model.num_prototypes
    kwargs = dict(
        student_temp=optim.student_temp,
        center_momentum=optim.center_momentum,
        centering=optim.centering,
    )
    return Losses(
        dino=DINOLoss(k, **kwargs).to(device),  # type: ignore[arg-type]
        ibot=IBOTPatchLoss(k, **kwargs).to(device),  # type: ignore[arg-type]
        koleo=KoLeoLoss(gather_distributed=True),
    )


def build_optimizer(config: TrainConfig, student: nn.Module) -> torch.optim.AdamW:
    """AdamW (fused on CUDA) over the student's trainable parameters; lr / weight decay are
    set every step from the schedules."""
    optim = config.optim
    return build_adamw(student, lr=optim.base_lr, betas=(optim.beta1, optim.beta2))


def schedule_config(optim: OptimConfig) -> ScheduleConfig:
    """The :class:`ScheduleConfig` of the optimisation section."""
    return ScheduleConfig(
        base_lr=optim.base_lr,
        lr_scaling=optim.lr_scaling,
        min_lr=optim.min_lr,
        warmup_epochs=optim.warmup_epochs,
        weight_decay_start=optim.weight_decay_start,
        weight_decay_end=optim.weight_decay_end,
        momentum_start=optim.momentum_start,
        momentum_end=optim.momentum_end,
        teacher_temp_start=optim.teacher_temp_start,
        teacher_temp_end=optim.teacher_temp_end,
        teacher_temp_warmup_epochs=optim.teacher_temp_warmup_epochs,
        freeze_last_layer_epochs=optim.freeze_last_layer_epochs,
    )
