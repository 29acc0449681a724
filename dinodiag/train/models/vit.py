"""Vision Transformer backbone for DINO / DINOv2 training (Dosovitskiy et al., 2021).

One model takes every crop size: the learned positional embeddings are stored for the
``img_size`` grid and interpolated (bicubic) to the grid of each input, so 224 px global and
96 px local crops (or 32 px and 16 px) go through the same weights, one forward per resolution.
A learned mask token replaces the patch tokens selected by ``masks`` (iBOT).

Shapes: B images, D = embed_dim, N = number of patches of the input (h * w), H heads.

    >>> model = build_vit("tiny", patch_size=4, img_size=32, depth=4)
    >>> out = model(torch.randn(2, 3, 32, 32))
    >>> out["cls"].shape, out["patch"].shape
    (torch.Size([2, 192]), torch.Size([2, 64, 192]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dinodiag.errors import ConfigError, TrainingError

#: Width presets: name -> (embed_dim, num_heads). Depth is 12 unless overridden.
VIT_WIDTHS: dict[str, tuple[int, int]] = {
    "tiny": (192, 3),
    "small": (384, 6),
    "base": (768, 12),
}
DEFAULT_DEPTH = 12


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch of a sample with probability ``rate``."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        # One Bernoulli draw per sample, broadcast over tokens and channels: (B, 1, 1).
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT); ``gamma`` starts at ``init``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection and SDPA (no loop over heads)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ConfigError(
                f"ViT embed_dim {dim} is not divisible by num_heads {num_heads}; "
                "pick a width whose dimension is a multiple of the head count."
            )
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, d = x.shape
        # (B, T, 3D) -> (3, B, H, T, hd)
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D) -> (B, T, D)."""
        b, t, d = x.shape
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Explicit softmax(q k^T / sqrt(hd)) for visualisation: x (B, T, D) -> (B, H, T, T)."""
        q, k, _ = self._qkv(x)
        scores = (q.float() @ k.float().transpose(-2, -1)) / math.sqrt(self.head_dim)
        return scores.softmax(dim=-1)


class Block(nn.Module):
    """Pre-norm transformer block: x + drop(ls(attn(norm(x)))), then the same with the MLP."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path_rate: float,
        layerscale_init: float | None,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.ls2: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


class VisionTransformer(nn.Module):
    """ViT with a CLS token, interpolated positional embeddings and an iBOT mask token.

    Args:
        img_size: side of the image the positional embeddings are stored for (pixels).
        patch_size: side of a square patch (pixels); input sides must be multiples of it.
        embed_dim: token width D.
        depth: number of transformer blocks.
        num_heads: attention heads (D must be divisible by it).
        mlp_ratio: MLP hidden width / D.
        drop_path_rate: stochastic depth rate of the last block (linearly increasing from 0).
        layerscale_init: initial LayerScale value (e.g. 1e-5, as in DINOv2); None disables it.
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
        layerscale_init: float | None = None,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        _check_vit_args(img_size, patch_size, depth, drop_path_rate)
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.img_size = img_size
        self.num_heads = num_heads
        self.base_grid = img_size // patch_size
        self.patch_embed = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.base_grid**2, embed_dim))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, rate, layerscale_init) for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
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
        """Positional embeddings for an (h, w) grid: (1, 1 + h * w, D), bicubic-interpolated."""
        if h == self.base_grid and w == self.base_grid:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        g, d = self.base_grid, self.embed_dim
        grid = patch_pos.reshape(1, g, g, d).permute(0, 3, 1, 2)  # (1, D, g, g)
        grid = F.interpolate(grid.float(), size=(h, w), mode="bicubic", align_corners=False)
        patch_pos = grid.to(self.pos_embed.dtype).permute(0, 2, 3, 1).reshape(1, h * w, d)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def prepare_tokens(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, C, H, W) [+ masks (B, N) bool] -> tokens (B, 1 + N, D) with positions."""
        h, w = self.grid_size(x.shape[-2], x.shape[-1])
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
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
        return tokens + self.interpolated_pos_embed(h, w).to(tokens.dtype)

    def forward(
        self, x: torch.Tensor, masks: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x: (B, C, H, W); masks: optional (B, N) bool, True = replace with the mask token.

        Returns ``{"cls": (B, D), "patch": (B, N, D)}``, both after the final LayerNorm.
        """
        tokens = self.prepare_tokens(x, masks)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        return {"cls": tokens[:, 0], "patch": tokens[:, 1:]}

    @torch.no_grad()
    def last_attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax attention of the last block for visualisation: (B, H, 1 + N, 1 + N).

        Row 0 is the CLS token's attention; ``maps[:, :, 0, 1:].reshape(B, H, h, w)`` gives the
        CLS attention map over the patch grid (see :func:`cls_attention_maps`).
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
    return maps[:, :, 0, 1:].reshape(x.shape[0], maps.shape[1], h, w)


def build_vit(
    width: str = "tiny",
    patch_size: int = 16,
    img_size: int = 224,
    depth: int | None = None,
    drop_path_rate: float = 0.0,
    layerscale_init: float | None = None,
) -> VisionTransformer:
    """Build a ViT by width name (``tiny`` 192/3 heads, ``small`` 384/6, ``base`` 768/12).

    ``depth`` overrides the default 12 blocks (smaller is faster on a CPU).
    """
    if width not in VIT_WIDTHS:
        raise ConfigError(
            f"unknown ViT width {width!r}; choose one of {sorted(VIT_WIDTHS)} "
            "(tiny = 192 dim / 3 heads, small = 384 / 6, base = 768 / 12)."
        )
    dim, heads = VIT_WIDTHS[width]
    return VisionTransformer(
        img_size=img_size,
        patch_size=patch_size,
        embed_dim=dim,
        depth=DEFAULT_DEPTH if depth is None else depth,
        num_heads=heads,
        drop_path_rate=drop_path_rate,
        layerscale_init=layerscale_init,
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
