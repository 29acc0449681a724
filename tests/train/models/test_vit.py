"""ViT backbone: shapes, positional-embedding interpolation, mask token, attention maps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.models.vit import (
    Attention,
    VisionTransformer,
    build_vit,
    cls_attention_maps,
)


def _tiny(**kwargs) -> VisionTransformer:
    torch.manual_seed(0)
    return build_vit("tiny", patch_size=4, img_size=32, depth=2, **kwargs).eval()


def test_output_shapes_and_widths() -> None:
    model = _tiny()
    out = model(torch.randn(2, 3, 32, 32))
    assert out["cls"].shape == (2, 192) and out["patch"].shape == (2, 64, 192)
    for width, dim, heads in [("small", 384, 6), ("base", 768, 12)]:
        vit = build_vit(width, patch_size=8, img_size=16, depth=1)
        assert vit.embed_dim == dim and vit.blocks[0].attn.num_heads == heads
        assert vit(torch.randn(1, 3, 16, 16))["cls"].shape == (1, dim)
    assert len(build_vit("tiny", patch_size=8, img_size=16).blocks) == 12
    with pytest.raises(ConfigError, match="width"):
        build_vit("huge")
    with pytest.raises(ConfigError, match="multiple"):
        build_vit("tiny", patch_size=5, img_size=32)


def test_one_model_takes_smaller_and_larger_crops() -> None:
    model = _tiny()
    for size, n in [(16, 16), (48, 144), (32, 64)]:
        out = model(torch.randn(3, 3, size, size))
        assert out["patch"].shape == (3, n, 192)
        assert torch.isfinite(out["cls"]).all()
    assert model(torch.randn(1, 3, 16, 24))["patch"].shape == (1, 24, 192)  # non-square
    with pytest.raises(TrainingError, match="patch size 4"):
        model(torch.randn(1, 3, 18, 18))


def test_pos_embed_interpolation_is_bicubic_of_stored_grid() -> None:
    model = _tiny()
    assert model.interpolated_pos_embed(8, 8) is model.pos_embed  # native grid: no resampling
    small = model.interpolated_pos_embed(4, 4)
    grid = model.pos_embed[:, 1:].reshape(1, 8, 8, 192).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
    assert torch.allclose(small[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 16, 192))
    assert torch.equal(small[:, :1], model.pos_embed[:, :1])  # CLS position unchanged


def test_mask_token_replaces_masked_patches_only() -> None:
    model = _tiny()
    x = torch.randn(2, 3, 32, 32)
    none = torch.zeros(2, 64, dtype=torch.bool)
    assert torch.allclose(model(x)["cls"], model(x, masks=none)["cls"])
    masks = none.clone()
    masks[0, :10] = True
    tokens = model.prepare_tokens(x, masks)
    pos = model.pos_embed
    assert torch.allclose(tokens[0, 1:11], model.mask_token[0] + pos[0, 1:11])
    assert torch.allclose(tokens[1], model.prepare_tokens(x)[1])
    with torch.no_grad():
        model.mask_token.fill_(1.0)
    assert not torch.allclose(model(x, masks=masks)["cls"][0], model(x)["cls"][0])
    with pytest.raises(TrainingError, match="masks"):
        model(x, masks=torch.zeros(2, 16, dtype=torch.bool))


def test_explicit_attention_matches_sdpa() -> None:
    torch.manual_seed(0)
    attn = Attention(24, 3)
    x = torch.randn(2, 5, 24)
    weights = attn.attention_weights(x)  # (B, H, T, T)
    assert weights.shape == (2, 3, 5, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5), atol=1e-6)
    _, _, v = attn._qkv(x)
    manual = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 24))
    assert torch.allclose(manual, attn(x), atol=1e-5)


def test_last_attention_maps_and_cls_maps() -> None:
    model = _tiny()
    x = torch.randn(2, 3, 16, 32)
    maps = model.last_attention_maps(x)
    assert maps.shape == (2, 3, 1 + 32, 1 + 32)
    assert torch.allclose(maps.sum(-1), torch.ones(2, 3, 33), atol=1e-5)
    model.train()
    cls_maps = cls_attention_maps(model, x)
    assert cls_maps.shape == (2, 3, 4, 8)
    assert model.training  # mode restored
    assert torch.allclose(cls_maps.flatten(2), maps[:, :, 0, 1:], atol=1e-6)


def test_drop_path_layerscale_and_bf16() -> None:
    model = _tiny(drop_path_rate=0.5, layerscale_init=1e-5)
    assert model.blocks[0].drop_path.rate == 0.0 and model.blocks[-1].drop_path.rate == 0.5
    assert torch.allclose(model.blocks[0].ls1.gamma, torch.full((192,), 1e-5))
    x = torch.randn(8, 3, 32, 32)
    assert torch.equal(model(x)["cls"], model(x)["cls"])  # eval: deterministic
    model.train()
    torch.manual_seed(1)
    a = model(x)["cls"]
    torch.manual_seed(2)
    assert not torch.allclose(a, model(x)["cls"])  # train: stochastic depth
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert torch.isfinite(out["cls"].float()).all()
    assert math.isclose(float(model.blocks[0].ls2.gamma[0].detach()), 1e-5, rel_tol=1e-6)
