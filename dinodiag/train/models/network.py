"""Backbone + heads as one module, built from the run's :class:`ModelConfig`.

:class:`DinoNetwork` runs every crop of a step in **one** ``forward`` call (one backbone pass
per resolution inside), which is what DistributedDataParallel needs, and runs the DINO head
once on all CLS tokens. The same class serves as student and teacher:

    student = build_network(ModelConfig(arch="vit_tiny", depth=2), img_size=32)
    teacher = make_teacher(student)                       # dinodiag.train.ema
    t = teacher(global_crops, masks=masks, mask_input=False)   # teacher sees unmasked crops
    s = student(global_crops, local_crops, masks=masks)        # student sees mask tokens

Layouts are view-major (see :mod:`dinodiag.train.losses.dino`).
"""

from __future__ import annotations

import torch
from torch import nn

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.recipe.config import ModelConfig
from dinodiag.train.models.head import DINOHead
from dinodiag.train.models.resnet import ResNetBackbone
from dinodiag.train.models.vit import VIT_DEPTHS, VIT_WIDTHS, VisionTransformer


def build_backbone(model: ModelConfig, img_size: int) -> nn.Module:
    """The backbone of ``model``, with ``embed_dim`` and ``supports_masking`` attributes,
    forward -> dict.

    ``img_size`` is the global crop size: the ViT positional grid (a multiple of the patch
    size), or the ResNet stem choice (<= 64 px: the small-image stem). A ViT takes its width and
    heads from ``arch`` unless ``model.embed_dim`` / ``num_heads`` override them.
    """
    if img_size < 1:
        raise ConfigError(f"backbone img_size must be >= 1, got {img_size}.")
    if model.arch == "resnet18":
        return ResNetBackbone(img_size=img_size)
    width = model.arch.removeprefix("vit_")
    dim, heads = VIT_WIDTHS[width]
    if model.embed_dim is not None:
        dim = model.embed_dim
        heads = model.num_heads or max(1, dim // 64)
    elif model.num_heads is not None:
        heads = model.num_heads
    return VisionTransformer(
        img_size=img_size,
        patch_size=model.patch_size,
        embed_dim=dim,
        depth=model.depth or VIT_DEPTHS[width],
        num_heads=heads,
        drop_path_rate=model.drop_path_rate,
        drop_path_uniform=model.drop_path_uniform,
        layerscale_init=model.layerscale_init,
        num_register_tokens=model.num_register_tokens,
        ffn_layer=model.ffn_layer,
        interpolate_offset=model.interpolate_offset,
        interpolate_antialias=model.interpolate_antialias,
    )


def build_head(in_dim: int, model: ModelConfig) -> DINOHead:
    """The DINO head of ``model`` on features of width ``in_dim`` (for the iBOT head pass
    ``model.ibot_head_config()``)."""
    return DINOHead(
        in_dim,
        out_dim=model.num_prototypes,
        hidden_dim=model.head_hidden_dim,
        bottleneck_dim=model.head_bottleneck_dim,
        n_layers=model.head_layers,
        head_style=model.head_style,
    )


class DinoNetwork(nn.Module):
    """Backbone + DINO head (+ iBOT head, shared with the DINO head unless given).

    Args:
        backbone: module mapping (B, 3, H, W) [, masks] to ``{"cls", ["patch"]}``.
        dino_head: head on CLS tokens.
        ibot_head: head on masked patch tokens; None shares ``dino_head``.
    """

    def __init__(self, backbone: nn.Module, dino_head: DINOHead, ibot_head: DINOHead | None = None):
        super().__init__()
        self.backbone = backbone
        self.dino_head = dino_head
        self.ibot_head = ibot_head

    @property
    def patch_head(self) -> DINOHead:
        """The head applied to patch tokens (the iBOT head, or the shared DINO head)."""
        return self.ibot_head if self.ibot_head is not None else self.dino_head

    def parts(self) -> list[nn.Module]:
        """Backbone, DINO head and (when separate) iBOT head: DINOv2 clips the gradient of each
        one on its own."""
        heads = [self.dino_head] + ([self.ibot_head] if self.ibot_head is not None else [])
        return [self.backbone, *heads]

    def forward(
        self,
        global_crops: torch.Tensor,
        local_crops: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        mask_input: bool = True,
    ) -> dict[str, torch.Tensor]:
        """One step's forward over all crops.

        Args:
            global_crops: (G * B, 3, H, W) view-major.
            local_crops: (L * B, 3, h, w) view-major, or None.
            masks: (G * B, N) bool iBOT masks; patch logits are returned at these positions.
            mask_input: replace masked patches by the mask token (student: True; teacher:
                False, it sees the real patches but its logits are taken at the same positions).

        Returns a dict:
            ``global_cls`` (G * B, D) and ``local_cls`` (L * B, D) backbone CLS features;
            ``global_patch`` (G * B, N, D) when the backbone has patches (registers excluded);
            ``cls_logits`` ((G + L) * B, K) DINO head on all CLS tokens, globals first;
            ``patch_logits`` (M, K') patch head at ``global_patch[masks]`` when masks are given.
        """
        out_global = self.backbone(
            global_crops, masks if (mask_input and masks is not None) else None
        )
        cls = out_global["cls"]
        result = {"global_cls": cls}
        if local_crops is not None and local_crops.shape[0] > 0:
            local_cls = self.backbone(local_crops)["cls"]
            result["local_cls"] = local_cls
            cls = torch.cat([cls, local_cls], dim=0)
        result["cls_logits"] = self.dino_head(cls)
        patch = out_global.get("patch")
        if masks is not None and patch is None:
            raise TrainingError(
                f"iBOT masks were given but the {type(self.backbone).__name__} backbone has no "
                "patch tokens: disable the iBOT loss or use a ViT."
            )
        if patch is not None:
            result["global_patch"] = patch
            if masks is not None:
                result["patch_logits"] = self.patch_head(patch[masks])
        return result


def build_network(model: ModelConfig, img_size: int) -> DinoNetwork:
    """Student network of ``model`` for global crops of ``img_size`` px (the teacher is
    ``ema.make_teacher(student)``); its own iBOT head when ``model.ibot_separate_head``."""
    backbone = build_backbone(model, img_size)
    dim = int(backbone.embed_dim)  # type: ignore[arg-type]
    ibot_head = build_head(dim, model.ibot_head_config()) if model.ibot_separate_head else None
    return DinoNetwork(backbone, build_head(dim, model), ibot_head)
