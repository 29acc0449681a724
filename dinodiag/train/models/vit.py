"""Vision Transformer backbone for DINO / DINOv2 training (Dosovitskiy et al., 2021; Oquab et al.,
2024), with DINOv2's options: register tokens (Darcet et al., 2024), SwiGLU FFN, LayerScale,
stochastic depth uniform over depth.

One model takes every crop size: the learned positional embeddings are stored for the
``img_size`` grid and interpolated (bicubic) to the grid of each input, so 224 px global and
96 px local crops (or 32 px and 16 px) go through the same weights, one forward per resolution.
A learned mask token replaces the patch tokens selected by ``masks`` (iBOT).

Token order: ``[CLS, registers (R), patches (N)]``; positions are added to CLS and the patches
before the registers are inserted (registers have no position). Shapes: B images, D =
embed_dim, N = number of patches of the input (h * w), H heads.

State-dict keys follow DINOv2's ``DinoVisionTransformer`` (``cls_token``, ``pos_embed``,
``register_tokens``, ``mask_token``, ``patch_embed.proj``, ``blocks.N.{norm1, attn.qkv,
attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2 | mlp.w12, mlp.w3, ls2.gamma}``, ``norm``).

    >>> model = build_vit("tiny", patch_size=4, img_size=32, depth=4)
    >>> out = model(torch.randn(2, 3, 32, 32))
    >>> out["cls"].shape, out["patch"].shape
    (torch.Size([2, 192]), torch.Size([2, 64, 192]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.models.vit_layers import (
    SUBSET_DROP_ABOVE,
    Block,
    PatchEmbed,
    drop_path_rates,
)

#: Width presets (DINOv2's ``vit_*`` functions): name -> (embed_dim, num_heads).
VIT_WIDTHS: dict[str, tuple[int, int]] = {
    "tiny": (192, 3),
    "small": (384, 6),
    "base": (768, 12),
    "large": (1024, 16),
    "giant2": (1536, 24),
}
#: Blocks of each width unless overridden.
VIT_DEPTHS: dict[str, int] = {"tiny": 12, "small": 12, "base": 12, "large": 24, "giant2": 40}
DEFAULT_DEPTH = 12


class VisionTransformer(nn.Module):
    """ViT with a CLS token, optional register tokens, interpolated positional embeddings and
    an iBOT mask token.

    Args:
        img_size: side of the image the positional embeddings are stored for (pixels).
        patch_size: side of a square patch (pixels); input sides must be multiples of it.
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads (D must be divisible by it).
        mlp_ratio: FFN hidden width / D (SwiGLU takes 2/3 of it, see :func:`swiglu_hidden`).
        drop_path_rate: stochastic depth rate (of every block, or of the last one of a ramp).
        drop_path_uniform: the same rate in every block (DINOv2) instead of a 0 -> rate ramp.
        subset_drop_above: rates above it run each branch on a subset of the batch (DINOv2's
            student: any rate above 0, the default); at or below it, per-sample drop path
            (0.1 is DINOv2's single-tensor call).
        layerscale_init: initial LayerScale value (e.g. 1e-5, as in DINOv2); None disables it.
        num_register_tokens: R extra learned tokens after CLS (DINOv2 with registers: 4).
        ffn_layer: ``mlp`` or ``swiglu`` (DINOv2's ``swiglufused`` is the same layer).
        interpolate_offset: DINOv2's positional-embedding resampling offset: the grid is scaled
            by (h + offset) / grid rather than resized to h (0 = plain resize).
        interpolate_antialias: antialias when resampling the positional embeddings.
        in_chans: input channels.

    Attributes ``embed_dim``, ``patch_size`` and ``supports_masking = True`` are read by the
    training loop.
    """

    supports_masking = True

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 192,
        depth: int = DEFAULT_DEPTH,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        drop_path_uniform: bool = True,
        layerscale_init: float | None = None,
        num_register_tokens: int = 0,
        ffn_layer: str = "mlp",
        interpolate_offset: float = 0.1,
        interpolate_antialias: bool = False,
        in_chans: int = 3,
        subset_drop_above: float = SUBSET_DROP_ABOVE,
    ) -> None:
        super().__init__()
        _check_vit_args(img_size, patch_size, depth, drop_path_rate)
        if num_register_tokens < 0:
            raise ConfigError(f"num_register_tokens must be >= 0, got {num_register_tokens}.")
        if not 0.0 <= interpolate_offset < 1.0:
            raise ConfigError(f"interpolate_offset must be in [0, 1), got {interpolate_offset}.")
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.img_size = img_size
        self.num_heads = num_heads
        self.num_register_tokens = num_register_tokens
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias
        self.base_grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.base_grid**2, embed_dim))
        self.register_tokens = (
            nn.Parameter(torch.zeros(1, num_register_tokens, embed_dim))
            if num_register_tokens
            else None
        )
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))
        rates = drop_path_rates(drop_path_rate, depth, drop_path_uniform)
        self.blocks = nn.ModuleList(
            Block(
                embed_dim, num_heads, mlp_ratio, rate, layerscale_init, ffn_layer, subset_drop_above
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=1e-6)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patch grid (h, w) of an input of ``height`` x ``width`` pixels."""
        p = self.patch_size
        if height % p or width % p:
            raise TrainingError(
                f"input of {height}x{width} px is not a multiple of the ViT patch size {p}: "
                f"use crop sizes divisible by {p} (e.g. {max(p, height // p * p)} px), "
                "or change the patch size."
            )
        return height // p, width // p

    def interpolated_pos_embed(self, h: int, w: int) -> torch.Tensor:
        """Positional embeddings for an (h, w) grid: (1, 1 + h * w, D), bicubic-resampled in
        float32 (by the scale (h + offset) / grid as DINOv2 does, or to the size when the
        offset is 0)."""
        if h == self.base_grid and w == self.base_grid:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        g, d = self.base_grid, self.embed_dim
        grid = patch_pos.float().reshape(1, g, g, d).permute(0, 3, 1, 2)  # (1, D, g, g)
        if self.interpolate_offset:
            offset = self.interpolate_offset
            scale = ((h + offset) / g, (w + offset) / g)
            grid = F.interpolate(
                grid, scale_factor=scale, mode="bicubic", antialias=self.interpolate_antialias
            )
        else:
            grid = F.interpolate(
                grid, size=(h, w), mode="bicubic", antialias=self.interpolate_antialias
            )
        patch_pos = grid.to(self.pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, h * w, d)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def prepare_tokens(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) [+ masks (B, N) bool] -> tokens (B, 1 + R + N, D): CLS and the
        patches with their positions, the R registers between them."""
        h, w = self.grid_size(x.shape[-2], x.shape[-1])
        tokens = self.patch_embed(x)  # (B, N, D)
        if masks is not None:
            if masks.shape != tokens.shape[:2]:
                raise TrainingError(
                    f"iBOT masks have shape {tuple(masks.shape)} but the input has "
                    f"{tokens.shape[0]} images of {h}x{w}={h * w} patches; build the masks "
                    "for the global crop grid (image size / patch size) of each global crop."
                )
            # Masked positions get the learned mask token (before positions are added).
            tokens = torch.where(masks.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        tokens = torch.cat([cls, tokens], dim=1)
        tokens = tokens + self.interpolated_pos_embed(h, w).to(tokens.dtype)
        if self.register_tokens is None:
            return tokens
        registers = self.register_tokens.expand(tokens.shape[0], -1, -1).to(tokens.dtype)
        return torch.cat([tokens[:, :1], registers, tokens[:, 1:]], dim=1)

    def forward(
        self, x: torch.Tensor, masks: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x: (B, C, H, W); masks: optional (B, N) bool, True = replace with the mask token.

        Returns ``{"cls": (B, D), "patch": (B, N, D)}`` (plus ``"registers": (B, R, D)`` when
        R > 0), all after the final LayerNorm; the patch tokens exclude the registers.
        """
        tokens = self.prepare_tokens(x, masks)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        first_patch = 1 + self.num_register_tokens
        out = {"cls": tokens[:, 0], "patch": tokens[:, first_patch:]}
        if self.num_register_tokens:
            out["registers"] = tokens[:, 1:first_patch]
        return out

    @torch.no_grad()
    def last_attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention of the last block for visualisation: (B, H, 1 + R + N, 1 + R + N).

        Row 0 is the CLS token's attention; ``maps[:, :, 0, 1 + R:].reshape(B, H, h, w)`` gives
        the CLS attention map over the patch grid (see :func:`cls_attention_maps`).
        """
        tokens = self.prepare_tokens(x)
        for block in self.blocks[:-1]:
            tokens = block(tokens)
        last = self.blocks[-1]
        assert isinstance(last, Block)
        return last.attn.attention_weights(last.norm1(tokens))


def cls_attention_maps(model: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    """CLS-token attention of the last block over the patch grid: (B, C, H, W) -> (B, heads, h, w).

    Runs the model in eval mode (restoring its previous mode) without gradients.
    """
    was_training = model.training
    model.eval()
    try:
        maps = model.last_attention_maps(x)
    finally:
        model.train(was_training)
    h, w = model.grid_size(x.shape[-2], x.shape[-1])
    first_patch = 1 + model.num_register_tokens
    return maps[:, :, 0, first_patch:].reshape(x.shape[0], maps.shape[1], h, w)


def build_vit(
    width: str = "tiny",
    patch_size: int = 16,
    img_size: int = 224,
    depth: int | None = None,
    drop_path_rate: float = 0.0,
    layerscale_init: float | None = None,
    **options: object,
) -> VisionTransformer:
    """Build a ViT by width name (``tiny`` 192/3 heads, ``small`` 384/6, ``base`` 768/12,
    ``large`` 1024/16, ``giant2`` 1536/24).

    ``depth`` overrides the width's blocks (12; large 24, giant2 40; fewer is faster on a CPU);
    ``options`` go to :class:`VisionTransformer` (``num_register_tokens``, ``ffn_layer`` ...).
    """
    if width not in VIT_WIDTHS:
        raise ConfigError(
            f"unknown ViT width {width!r}; choose one of {sorted(VIT_WIDTHS)} "
            "(tiny = 192 dim / 3 heads, small = 384 / 6, base = 768 / 12, large = 1024 / 16, "
            "giant2 = 1536 / 24)."
        )
    dim, heads = VIT_WIDTHS[width]
    return VisionTransformer(
        img_size=img_size,
        patch_size=patch_size,
        embed_dim=dim,
        depth=VIT_DEPTHS[width] if depth is None else depth,
        num_heads=heads,
        drop_path_rate=drop_path_rate,
        layerscale_init=layerscale_init,
        **options,  # type: ignore[arg-type]
    )


def _check_vit_args(img_size: int, patch_size: int, depth: int, drop_path_rate: float) -> None:
    if patch_size < 1:
        raise ConfigError(f"ViT patch_size must be >= 1, got {patch_size}.")
    if img_size < patch_size or img_size % patch_size:
        raise ConfigError(
            f"ViT img_size {img_size} must be a positive multiple of patch_size {patch_size} "
            "(it sets the positional-embedding grid; use the global crop size)."
        )
    if depth < 1:
        raise ConfigError(f"ViT depth must be >= 1, got {depth}.")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ConfigError(
            f"drop_path_rate must be in [0, 1), got {drop_path_rate} "
            "(DINOv2 uses 0.3 for large models, DINO v1 0.1; use 0-0.1 for tiny models)."
        )
