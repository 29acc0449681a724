"""The building blocks of the ViT (:mod:`dinodiag.train.models.vit`): patch embedding,
attention, the FFNs (GELU MLP, SwiGLU), LayerScale, stochastic depth and the block.

Names of parameters follow DINOv2's layers (``proj``, ``qkv``, ``fc1`` / ``fc2``, ``w12`` /
``w3``, ``gamma``), so state dicts line up. Shapes: B samples, T tokens, D width.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import FFN_LAYERS

#: Above this stochastic-depth rate a branch runs on a subset of the batch. DINOv2's student
#: calls its backbone on a list of crops, and that call takes the subset form at any rate
#: above 0 (the default here); 0.1 is its single-tensor call's threshold (per-sample drop path
#: up to 0.1), the named option ``subset_drop_above=0.1``.
SUBSET_DROP_ABOVE = 0.0
DINOV2_SINGLE_TENSOR_SUBSET_ABOVE = 0.1


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


def add_residual_on_subset(
    x: torch.Tensor, branch: Callable[[torch.Tensor], torch.Tensor], rate: float
) -> torch.Tensor:
    """Stochastic depth as DINOv2's student runs it: the branch sees a random subset of
    ``max(int(B * (1 - rate)), 1)`` samples and its output, scaled by B / subset, is added to
    those samples; the others skip the branch (same expectation as :class:`DropPath`, less work).

    x: (B, T, D) -> (B, T, D).
    """
    b = x.shape[0]
    keep = max(int(b * (1.0 - rate)), 1)
    chosen = torch.randperm(b, device=x.device)[:keep]
    out = branch(x[chosen])  # (keep, T, D)
    return torch.index_add(x, 0, chosen, out.to(x.dtype), alpha=b / keep)


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT); ``gamma`` starts at ``init``."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: (B, C, H, W) -> (B, h * w, D), one strided conv."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """The ViT feed-forward layer: fc1 -> GELU -> fc2, (..., D) -> (..., D)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def swiglu_hidden(hidden: int) -> int:
    """DINOv2's SwiGLU width for an MLP of ``hidden`` units: 2/3 of it (the same number of
    weights as the GELU MLP), rounded up to a multiple of 8 (4096 for ViT-g's 6144)."""
    return (int(hidden * 2 / 3) + 7) // 8 * 8


class SwiGLUFFN(nn.Module):
    """SwiGLU feed-forward (Shazeer, 2020): w3(silu(a) * b) with (a, b) = w12(x) split in two;
    (..., D) -> (..., D). ``hidden`` is the width of a and b."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


def build_ffn(ffn_layer: str, dim: int, mlp_ratio: float) -> nn.Module:
    """``mlp`` (hidden = mlp_ratio * dim) or ``swiglu`` (hidden by :func:`swiglu_hidden`)."""
    hidden = int(dim * mlp_ratio)
    if ffn_layer == "mlp":
        return Mlp(dim, hidden)
    if ffn_layer in ("swiglu", "swiglufused"):
        return SwiGLUFFN(dim, swiglu_hidden(hidden))
    raise ConfigError(f"ffn_layer must be one of {', '.join(FFN_LAYERS)}, got {ffn_layer!r}.")


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
    """Pre-norm transformer block: x + drop(ls(attn(norm(x)))), then the same with the FFN.

    Stochastic depth (training only): above ``subset_drop_above`` the DINOv2 subset form
    (:func:`add_residual_on_subset`), at or below it per-sample dropping (:class:`DropPath`).
    The default 0 is DINOv2's student (a list call: the subset form at any rate); 0.1 is
    DINOv2's single-tensor call.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        drop_path_rate: float,
        layerscale_init: float | None,
        ffn_layer: str = "mlp",
        subset_drop_above: float = SUBSET_DROP_ABOVE,
    ) -> None:
        super().__init__()
        self.subset_drop_above = subset_drop_above
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = build_ffn(ffn_layer, dim, mlp_ratio)
        self.ls2: nn.Module = LayerScale(dim, layerscale_init) if layerscale_init else nn.Identity()
        self.drop_path = DropPath(drop_path_rate)

    def attn_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.ls1(self.attn(self.norm1(x)))

    def ffn_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.ls2(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rate = self.drop_path.rate
        if self.training and rate > 0.0 and rate > self.subset_drop_above:
            x = add_residual_on_subset(x, self.attn_branch, rate)
            return add_residual_on_subset(x, self.ffn_branch, rate)
        x = x + self.drop_path(self.attn_branch(x))
        return x + self.drop_path(self.ffn_branch(x))


def drop_path_rates(rate: float, depth: int, uniform: bool) -> list[float]:
    """Per-block stochastic depth: ``rate`` everywhere (DINOv2's ``drop_path_uniform``) or a
    linear ramp from 0 at the first block to ``rate`` at the last (DINO v1, timm)."""
    if uniform:
        return [rate] * depth
    return [rate * i / max(depth - 1, 1) for i in range(depth)]
