"""Model, losses, schedules, k-NN evaluation and diagnostics for short DINOv2 training runs.

Modules (one idea each): ``config`` (the typed run config: model, optim, data, run),
``models/`` (``vit`` / ``resnet`` backbones, ``head`` DINO head, ``network`` backbone + heads
built from ``ModelConfig``), ``ema`` (teacher), ``losses/`` (``dino``, ``ibot``, ``koleo``),
``masking`` (iBOT block masks), ``schedules`` (from ``OptimConfig``), ``optim`` (AdamW groups,
clipping), ``eval/knn``, ``diagnostics`` (collapse signals and alerts), ``distributed`` (no-op
without a process group). The training loop, run directory and CLI build on these.
"""

from dinodiag.train.config import ARCHS, ModelConfig, OptimConfig
from dinodiag.train.diagnostics import compute_diagnostics, detect_alerts
from dinodiag.train.ema import ema_update, make_teacher, param_distance
from dinodiag.train.eval.knn import eval_transform, extract_features, knn_classify
from dinodiag.train.losses.dino import (
    DINOLoss,
    cross_view_cross_entropy,
    other_view,
    sinkhorn_knopp,
)
from dinodiag.train.losses.ibot import IBOTPatchLoss, masked_patch_weights
from dinodiag.train.losses.koleo import KoLeoLoss
from dinodiag.train.masking import block_mask, generate_ibot_masks
from dinodiag.train.models.head import DINOHead
from dinodiag.train.models.network import DinoNetwork, build_backbone, build_head, build_network
from dinodiag.train.models.resnet import ResNetBackbone
from dinodiag.train.models.vit import VisionTransformer, build_vit, cls_attention_maps
from dinodiag.train.optim import apply_schedule, build_adamw, clip_gradients, param_groups
from dinodiag.train.schedules import Schedules, cosine_schedule, scaled_lr

__all__ = [
    "ARCHS",
    "DINOHead",
    "DINOLoss",
    "DinoNetwork",
    "IBOTPatchLoss",
    "KoLeoLoss",
    "ModelConfig",
    "OptimConfig",
    "ResNetBackbone",
    "Schedules",
    "VisionTransformer",
    "apply_schedule",
    "block_mask",
    "build_adamw",
    "build_backbone",
    "build_head",
    "build_network",
    "build_vit",
    "clip_gradients",
    "cls_attention_maps",
    "compute_diagnostics",
    "cosine_schedule",
    "cross_view_cross_entropy",
    "detect_alerts",
    "ema_update",
    "eval_transform",
    "extract_features",
    "generate_ibot_masks",
    "knn_classify",
    "make_teacher",
    "masked_patch_weights",
    "other_view",
    "param_distance",
    "param_groups",
    "scaled_lr",
    "sinkhorn_knopp",
]
