"""Model, losses, schedules, k-NN evaluation and diagnostics for short DINOv2 training runs.

Modules (one idea each): ``config`` (the typed run config: model, optim, data, run),
``models/`` (``vit`` / ``resnet`` backbones, ``head`` DINO head, ``network`` backbone + heads
built from ``ModelConfig``), ``ema`` (teacher), ``losses/`` (``dino``, ``ibot``, ``koleo``),
``masking`` (iBOT block masks), ``schedules`` (from ``OptimConfig``), ``optim`` (AdamW groups,
clipping), ``eval/knn``, ``diagnostics`` (collapse signals and alerts), ``distributed`` (no-op
without a process group). The training loop, run directory and CLI build on these.
"""

from dinodiag.lazy import lazy_attributes

# name -> module, imported on first use (PEP 562): importing the typed config or the presets
# (the CLI's argument parsing) does not import torch through this package.
_LAZY = {
    "ARCHS": "dinodiag.recipe.config",
    "ModelConfig": "dinodiag.recipe.config",
    "OptimConfig": "dinodiag.recipe.config",
    "compute_diagnostics": "dinodiag.train.diagnostics",
    "detect_alerts": "dinodiag.train.diagnostics",
    "ema_update": "dinodiag.train.ema",
    "make_teacher": "dinodiag.train.ema",
    "param_distance": "dinodiag.train.ema",
    "eval_transform": "dinodiag.train.eval.knn",
    "extract_features": "dinodiag.train.eval.knn",
    "knn_classify": "dinodiag.train.eval.knn",
    "DINOLoss": "dinodiag.train.losses.dino",
    "cross_view_cross_entropy": "dinodiag.train.losses.dino",
    "other_view": "dinodiag.train.losses.dino",
    "sinkhorn_knopp": "dinodiag.train.losses.dino",
    "IBOTPatchLoss": "dinodiag.train.losses.ibot",
    "masked_patch_weights": "dinodiag.train.losses.ibot",
    "KoLeoLoss": "dinodiag.train.losses.koleo",
    "block_mask": "dinodiag.train.masking",
    "generate_ibot_masks": "dinodiag.train.masking",
    "DINOHead": "dinodiag.train.models.head",
    "DinoNetwork": "dinodiag.train.models.network",
    "build_backbone": "dinodiag.train.models.network",
    "build_head": "dinodiag.train.models.network",
    "build_network": "dinodiag.train.models.network",
    "ResNetBackbone": "dinodiag.train.models.resnet",
    "VisionTransformer": "dinodiag.train.models.vit",
    "build_vit": "dinodiag.train.models.vit",
    "cls_attention_maps": "dinodiag.train.models.vit",
    "apply_schedule": "dinodiag.train.optim",
    "build_adamw": "dinodiag.train.optim",
    "clip_gradients": "dinodiag.train.optim",
    "param_groups": "dinodiag.train.optim",
    "Schedules": "dinodiag.train.schedules",
    "cosine_schedule": "dinodiag.train.schedules",
    "scaled_lr": "dinodiag.train.schedules",
}

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

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
