"""DINOv2 state dicts read into dinodiag's networks: key names, chunked blocks, shapes.

DINOv2's backbone keys (``vision_transformer.py``) are the names dinodiag's ViT uses already
(``cls_token``, ``pos_embed``, ``register_tokens``, ``mask_token``, ``patch_embed.proj``,
``blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1 | mlp.w12, mlp.fc2 | mlp.w3,
ls2.gamma}``, ``norm``). Three things differ in files DINOv2 writes:

- ``block_chunks > 0`` (FSDP wrapping) nests the blocks as ``blocks.C.N``: chunk C holds
  identity placeholders (no weights) and then its own blocks, under their global index N
  (``blocks.1.6.norm1.weight`` is block 6);
- the heads' weight-normed prototype layer stores ``last_layer.weight_g`` / ``weight_v``
  (``torch.nn.utils.weight_norm``) where dinodiag's parametrization stores
  ``last_layer.parametrizations.weight.original0`` / ``original1``;
- wrappers may prefix keys (``module.`` for DDP, ``_fsdp_wrapped_module.`` and
  ``_checkpoint_wrapped_module.`` for FSDP and activation checkpointing).

The architecture is read off the shapes (:func:`infer_vit_shape`): width, depth, patch size,
registers, FFN kind and width, LayerScale, the positional grid. The head count is not in any
shape: every DINOv2 ViT has 64-wide heads (``vit_small`` 384 / 6 ... ``vit_giant2`` 1536 / 24),
which is the default; pass ``num_heads`` (or a config naming the arch) otherwise.

    state = to_dinodiag_keys(torch.load("dinov2_vits14.pth", weights_only=True))
    vit, shape, notes = vit_from_state(state)          # VisionTransformer, eval mode
    shape.describe()   # 'ViT 384 wide, 12 blocks, 6 heads, patch 14, GELU MLP x4, ...'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from dinodiag.errors import TrainingError
from dinodiag.train.models.vit import VisionTransformer
from dinodiag.train.models.vit_layers import swiglu_hidden

# Key segments inserted by process / memory wrappers (DDP, FSDP, activation checkpointing);
# they carry no meaning for the weights.
WRAPPER_SEGMENTS = ("module", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")
# torch.nn.utils.weight_norm names (DINOv2's heads) -> dinodiag's parametrization names.
WEIGHT_NORM_KEYS = {
    "last_layer.weight_g": "last_layer.parametrizations.weight.original0",
    "last_layer.weight_v": "last_layer.parametrizations.weight.original1",
}
HEAD_WIDTH = 64  # every DINOv2 ViT: embed_dim / num_heads
# Keys a backbone file must hold to be a ViT at all (dinodiag names).
REQUIRED_KEYS = ("patch_embed.proj.weight", "pos_embed", "cls_token", "norm.weight")

_CHUNKED = re.compile(r"^(?P<head>(?:.*\.)?)blocks\.(?P<chunk>\d+)\.(?P<index>\d+)\.(?P<rest>.+)$")
_WRAPPERS = re.compile(r"(^|\.)(?:" + "|".join(WRAPPER_SEGMENTS) + r")\.")
_FLAT = re.compile(r"^(?P<head>(?:.*\.)?)blocks\.(?P<index>\d+)\.(?P<rest>[A-Za-z_].*)$")


def strip_wrappers(key: str) -> str:
    """``_fsdp_wrapped_module.blocks.0.module.norm1.weight`` -> ``blocks.0.norm1.weight``."""
    while (stripped := _WRAPPERS.sub(r"\1", key)) != key:  # nested wrappers: repeat
        key = stripped
    return key


def unchunk_blocks(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``blocks.C.N.rest`` -> ``blocks.i.rest`` with ``i`` the rank of (C, N): DINOv2's global
    block index when its chunks number blocks globally, the running count otherwise. Keys
    without chunks pass unchanged; a state dict mixing both layouts is refused."""
    chunked = {k: m for k in state if (m := _CHUNKED.match(k))}
    if not chunked:
        return dict(state)
    flat = [k for k in state if k not in chunked and _FLAT.match(k)]
    if flat:
        raise TrainingError(
            f"the state dict mixes chunked blocks ({next(iter(chunked))}) and plain blocks "
            f"({flat[0]}): it is not one DINOv2 backbone. Give the backbone of one model."
        )
    out = {k: v for k, v in state.items() if k not in chunked}
    for head in {m["head"] for m in chunked.values()}:
        blocks = sorted(
            {(int(m["chunk"]), int(m["index"])) for m in chunked.values() if m["head"] == head}
        )
        order = {pair: i for i, pair in enumerate(blocks)}
        for key, m in chunked.items():
            if m["head"] == head:
                i = order[(int(m["chunk"]), int(m["index"]))]
                out[f"{head}blocks.{i}.{m['rest']}"] = state[key]
    return out


def to_dinodiag_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A DINOv2 state dict (backbone, head or whole teacher) with dinodiag's key names:
    wrappers stripped, chunked blocks flattened, weight-norm keys renamed. Non-tensor entries
    are refused (a file holding them is no state dict)."""
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise TrainingError(
                f"state-dict entry {key!r} is a {type(value).__name__}, not a tensor: this is "
                "not a plain state dict (an FSDP sharded file?). Give a teacher checkpoint "
                "(eval/training_<iter>/teacher_checkpoint.pth) or a backbone .pth file."
            )
        key = strip_wrappers(str(key))
        for old, new in WEIGHT_NORM_KEYS.items():
            if key == old or key.endswith(f".{old}"):
                key = key[: len(key) - len(old)] + new
        renamed[key] = value
    return unchunk_blocks(renamed)


def under(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries whose key starts with ``prefix`` (``"backbone."``), the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class VitShape:
    """A ViT's architecture as read from the shapes of its weights."""

    embed_dim: int  # token width D (patch_embed.proj.weight: (D, C, p, p))
    depth: int  # number of blocks
    num_heads: int  # attention heads (not in any shape: 64-wide heads unless told)
    patch_size: int  # p
    grid: int  # positional-embedding grid side (pos_embed: (1, 1 + grid^2, D))
    num_register_tokens: int  # R (register_tokens: (1, R, D)), 0 without
    ffn_layer: str  # "mlp" (fc1 / fc2) or "swiglu" (w12 / w3)
    ffn_hidden: int  # hidden width of the FFN (of each SwiGLU half)
    mlp_ratio: float  # the ratio that rebuilds ffn_hidden in dinodiag's ViT
    layerscale: bool  # ls1.gamma / ls2.gamma present
    in_chans: int  # input channels
    heads_from: str  # where num_heads came from ("given", "64-wide heads" ...)

    @property
    def img_size(self) -> int:
        """The side the positional embeddings were stored for (518 px for the public 37 x 37
        grids of patch-14 backbones; other sides are interpolated)."""
        return self.grid * self.patch_size

    def describe(self) -> str:
        ffn = "SwiGLU" if self.ffn_layer == "swiglu" else "GELU MLP"
        parts = [
            f"ViT {self.embed_dim} wide, {self.depth} blocks, {self.num_heads} heads "
            f"({self.heads_from}), patch {self.patch_size}",
            f"{ffn} {self.ffn_hidden} hidden",
            f"{self.num_register_tokens} registers",
            "LayerScale" if self.layerscale else "no LayerScale",
            f"{self.grid}x{self.grid} positions ({self.img_size} px)",
        ]
        return ", ".join(parts)


def _shape(state: Mapping[str, torch.Tensor], key: str, ndim: int) -> tuple[int, ...]:
    if key not in state:
        raise TrainingError(f"the backbone has no {key!r}: {_not_a_vit(state)}")
    shape = tuple(state[key].shape)
    if len(shape) != ndim:
        raise TrainingError(f"{key!r} has shape {shape}, a DINOv2 ViT has {ndim} dimensions.")
    return shape


def _not_a_vit(state: Mapping[str, torch.Tensor]) -> str:
    shown = ", ".join(sorted(state)[:6]) or "no keys"
    return (
        f"this is not a DINOv2 ViT backbone (its keys start {shown}). Give a DINOv2 teacher "
        "checkpoint, a backbone file such as dinov2_vits14.pth, or a dinodiag run."
    )


def _block_count(state: Mapping[str, torch.Tensor]) -> int:
    indices = {int(m["index"]) for k in state if (m := _FLAT.match(k)) and not m["head"]}
    if not indices:
        raise TrainingError(f"the backbone has no blocks.N.* weights: {_not_a_vit(state)}")
    missing = sorted(set(range(max(indices) + 1)) - indices)
    if missing:
        raise TrainingError(
            f"the backbone's blocks are not numbered 0..{max(indices)}: blocks {missing[:8]} "
            "have no weights (a partial or sharded state dict?)."
        )
    return len(indices)


def _mlp_ratio(hidden: int, dim: int) -> float:
    """A ratio r with int(dim * r) == hidden (dinodiag's ViT builds the FFN that way)."""
    ratio = hidden / dim
    return ratio if int(dim * ratio) == hidden else (hidden + 0.5) / dim


def _swiglu_ratio(half: int, dim: int) -> float | None:
    """The MLP ratio whose SwiGLU width (DINOv2's 2/3 rounded up to 8) is ``half``, or None."""
    for mlp_hidden in range(max(1, int(half * 1.5) - 16), int(half * 1.5) + 16):
        if swiglu_hidden(mlp_hidden) == half:
            return _mlp_ratio(mlp_hidden, dim)
    return None


def infer_vit_shape(
    state: Mapping[str, torch.Tensor], num_heads: int | None = None, heads_from: str = "given"
) -> VitShape:
    """Read a ViT's architecture off a backbone state dict in dinodiag's names
    (:func:`to_dinodiag_keys`). :class:`TrainingError` naming the key for what does not fit.
    ``heads_from`` says where a given ``num_heads`` came from (for :meth:`VitShape.describe`)."""
    dim, in_chans, patch, patch_w = _shape(state, "patch_embed.proj.weight", 4)
    if patch != patch_w:
        raise TrainingError(f"patch_embed.proj.weight has non-square patches {patch}x{patch_w}.")
    tokens = _shape(state, "pos_embed", 3)[1] - 1
    grid = math.isqrt(tokens)
    if grid * grid != tokens:
        raise TrainingError(
            f"pos_embed holds {tokens} patch positions, not a square grid: a DINOv2 ViT stores "
            "1 + grid^2 positions."
        )
    registers = _shape(state, "register_tokens", 3)[1] if "register_tokens" in state else 0
    depth = _block_count(state)
    if "blocks.0.mlp.fc1.weight" in state:
        ffn, hidden = "mlp", _shape(state, "blocks.0.mlp.fc1.weight", 2)[0]
        ratio: float | None = _mlp_ratio(hidden, dim)
    elif "blocks.0.mlp.w12.weight" in state:
        ffn, hidden = "swiglu", _shape(state, "blocks.0.mlp.w12.weight", 2)[0] // 2
        ratio = _swiglu_ratio(hidden, dim)
        if ratio is None:
            raise TrainingError(
                f"blocks.0.mlp.w12 has a SwiGLU width {hidden} that DINOv2's rule (2/3 of the "
                "MLP width, rounded up to a multiple of 8) never gives: dinodiag cannot rebuild "
                "this FFN."
            )
    else:
        found = sorted(k for k in state if k.startswith("blocks.0.mlp."))
        raise TrainingError(
            "blocks.0.mlp has neither fc1 (GELU MLP) nor w12 (SwiGLU) weights "
            f"(found {found or 'none'}): an identity or other FFN cannot be mapped."
        )
    if num_heads is None:
        if dim % HEAD_WIDTH:
            raise TrainingError(
                f"the width {dim} is not a multiple of DINOv2's 64-wide heads: give num_heads."
            )
        num_heads, heads_from = dim // HEAD_WIDTH, "64-wide heads, as every DINOv2 ViT"
    if num_heads < 1 or dim % num_heads:
        raise TrainingError(f"num_heads = {num_heads} does not divide the width {dim}.")
    return VitShape(
        embed_dim=dim,
        depth=depth,
        num_heads=num_heads,
        patch_size=patch,
        grid=grid,
        num_register_tokens=registers,
        ffn_layer=ffn,
        ffn_hidden=hidden,
        mlp_ratio=float(ratio),
        layerscale="blocks.0.ls1.gamma" in state,
        in_chans=in_chans,
        heads_from=heads_from,
    )


def _listed(keys: list[str], limit: int = 8) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def vit_from_state(
    state: Mapping[str, torch.Tensor],
    *,
    num_heads: int | None = None,
    heads_from: str = "given",
    interpolate_offset: float = 0.1,
    interpolate_antialias: bool = False,
) -> tuple[VisionTransformer, VitShape, list[str]]:
    """dinodiag's ViT with the weights of a backbone state dict (dinodiag key names), in eval
    mode without gradients; returns ``(model, shape, notes)``.

    Every weight must find its place: keys the ViT has no use for (a classifier ``head.*``,
    ``q_bias`` of another ViT ...) and weights it lacks (a missing bias) are refused, naming
    them. Only a missing ``mask_token`` (unused outside iBOT training) is filled with zeros,
    and ``notes`` says so.
    """
    shape = infer_vit_shape(state, num_heads, heads_from)
    model = VisionTransformer(
        img_size=shape.img_size,
        patch_size=shape.patch_size,
        embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.num_heads,
        mlp_ratio=shape.mlp_ratio,
        layerscale_init=1.0 if shape.layerscale else None,  # the value comes from the weights
        num_register_tokens=shape.num_register_tokens,
        ffn_layer=shape.ffn_layer,
        interpolate_offset=interpolate_offset,
        interpolate_antialias=interpolate_antialias,
        in_chans=shape.in_chans,
    )
    wanted = model.state_dict()
    unexpected = sorted(set(state) - set(wanted))
    missing = sorted(set(wanted) - set(state) - {"mask_token"})
    if unexpected:
        raise TrainingError(
            f"{len(unexpected)} weight(s) have no place in a DINOv2 ViT ({shape.describe()}): "
            f"{_listed(unexpected)}. dinodiag maps DINOv2's backbone keys only."
        )
    if missing:
        raise TrainingError(
            f"the backbone lacks {len(missing)} weight(s) a DINOv2 ViT ({shape.describe()}) "
            f"needs: {_listed(missing)} (biases turned off? a partial state dict?)."
        )
    mismatched = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in wanted.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if mismatched:
        raise TrainingError(
            f"weights whose shapes do not fit one ViT ({shape.describe()}): {_listed(mismatched)}."
        )
    notes = []
    if "mask_token" not in state:
        notes.append("no mask_token in the file: set to zeros (it is used only in iBOT training)")
    model.load_state_dict({**wanted, **state}, strict=True)
    model.eval().requires_grad_(False)
    return model, shape, notes
