"""Backbone + heads as one module, built from typed configs.

:class:`DinoNetwork` runs every crop of a step in **one** ``forward`` call (one backbone pass
per resolution inside), which is what DistributedDataParallel needs, and runs the DINO head
once on all CLS tokens. The same class serves as student and teacher:

    student = build_network(BackboneConfig(...), HeadConfig(...))
    teacher = make_teacher(student)                       # dinodiag.train.ema
    t = teacher(global_crops, masks=masks, mask_input=False)   # teacher sees unmasked crops
    s = student(global_crops, local_crops, masks=masks)        # student sees mask tokens

Layouts are view-major (see :mod:`dinodiag.train.losses.dino`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.models.head import DINOHead
from dinodiag.train.models.resnet import ResNetBackbone
from dinodiag.train.models.vit import DEFAULT_DEPTH, VIT_WIDTHS, VisionTransformer

ARCHITECTURES: tuple[str, ...] = tuple(f"vit_{w}" for w in VIT_WIDTHS) + ("resnet18",)


@dataclass(frozen=True)
class BackboneConfig:
    """Which backbone to build."""

    arch: str = "vit_small"  # vit_tiny | vit_small | vit_base | resnet18 (no iBOT for resnet18)
    patch_size: int = 16  # ViT patch side; crops must be multiples of it (4 for 32 px images)
    img_size: int = 224  # global crop size: ViT positional grid; <= 64 gives the small ResNet stem
    depth: int | None = None  # ViT blocks (None = 12); fewer is much faster on a CPU
    drop_path_rate: float = 0.0  # stochastic depth; DINOv2 0.3 (large), DINO v1 0.1
    layerscale_init: float | None = None  # e.g. 1e-5 (DINOv2); None disables LayerScale
    embed_dim: int | None = None  # custom ViT width instead of the arch's (e.g. 64 on a CPU)
    num_heads: int | None = None  # custom ViT heads (None: the arch's, or width // 64)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        if self.arch not in ARCHITECTURES:
            raise ConfigError(
                f"backbone arch {self.arch!r} is unknown; choose one of {ARCHITECTURES}."
            )
        if self.img_size < 1:
            raise ConfigError(f"backbone img_size must be >= 1, got {self.img_size}.")
        if self.arch.startswith("vit") and (self.patch_size < 1 or self.img_size % self.patch_size):
            raise ConfigError(
                f"backbone img_size {self.img_size} must be a multiple of patch_size "
                f"{self.patch_size} for a ViT."
            )
        if self.depth is not None and self.depth < 1:
            raise ConfigError(f"backbone depth must be >= 1 or None, got {self.depth}.")


@dataclass(frozen=True)
class HeadConfig:
    """DINO / iBOT projection heads."""

    out_dim: int = 65536  # K prototypes; 1024-8192 converge faster on small data
    hidden_dim: int = 2048  # MLP hidden width
    bottleneck_dim: int = 256  # width before the prototypes
    n_layers: int = 3  # MLP layers
    norm_last_layer: bool = True  # prototype magnitudes fixed to 1 (more stable)
    ibot_separate_head: bool = False  # own head for iBOT patches (DINOv2 default: shared)


def build_backbone(config: BackboneConfig) -> nn.Module:
    """A backbone with ``embed_dim`` and ``supports_masking`` attributes, forward -> dict.

    A ViT takes its width and heads from ``arch`` unless ``embed_dim`` / ``num_heads``
    override them.
    """
    config.validate()
    if config.arch == "resnet18":
        return ResNetBackbone(img_size=config.img_size)
    dim, heads = VIT_WIDTHS[config.arch.removeprefix("vit_")]
    if config.embed_dim is not None:
        dim = config.embed_dim
        heads = config.num_heads or max(1, dim // 64)
    elif config.num_heads is not None:
        heads = config.num_heads
    return VisionTransformer(
        img_size=config.img_size,
        patch_size=config.patch_size,
        embed_dim=dim,
        depth=config.depth or DEFAULT_DEPTH,
        num_heads=heads,
        drop_path_rate=config.drop_path_rate,
        layerscale_init=config.layerscale_init,
    )


def build_head(in_dim: int, config: HeadConfig) -> DINOHead:
    """A :class:`DINOHead` from ``config``."""
    return DINOHead(
        in_dim,
        out_dim=config.out_dim,
        hidden_dim=config.hidden_dim,
        bottleneck_dim=config.bottleneck_dim,
        n_layers=config.n_layers,
        norm_last_layer=config.norm_last_layer,
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

    def heads(self) -> list[DINOHead]:
        """Distinct heads (for the last-layer freeze)."""
        return [self.dino_head] + ([self.ibot_head] if self.ibot_head is not None else [])

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
            ``global_patch`` (G * B, N, D) when the backbone has patches;
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


def build_network(backbone_config: BackboneConfig, head_config: HeadConfig) -> DinoNetwork:
    """Student network from configs (the teacher is ``ema.make_teacher(student)``)."""
    backbone = build_backbone(backbone_config)
    dim = int(backbone.embed_dim)  # type: ignore[arg-type]
    ibot_head = build_head(dim, head_config) if head_config.ibot_separate_head else None
    return DinoNetwork(backbone, build_head(dim, head_config), ibot_head)
