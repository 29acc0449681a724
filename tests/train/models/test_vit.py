"""ViT backbone: shapes, positional-embedding interpolation, mask token, attention maps, and
DINOv2's options: register tokens, SwiGLU, uniform / subset stochastic depth, state-dict keys."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.train.models.vit import (
    VIT_DEPTHS,
    VisionTransformer,
    build_vit,
    cls_attention_maps,
)
from dinodiag.train.models.vit_layers import (
    Attention,
    Block,
    SwiGLUFFN,
    add_residual_on_subset,
    swiglu_hidden,
)


def _tiny(**kwargs) -> VisionTransformer:
    torch.manual_seed(0)
    return build_vit("tiny", patch_size=4, img_size=32, depth=2, **kwargs).eval()


def test_output_shapes_and_widths() -> None:
    model = _tiny()
    out = model(torch.randn(2, 3, 32, 32))
    assert out["cls"].shape == (2, 192) and out["patch"].shape == (2, 64, 192)
    for width, dim, heads in [("small", 384, 6), ("base", 768, 12), ("large", 1024, 16)]:
        vit = build_vit(width, patch_size=8, img_size=16, depth=1)
        assert vit.embed_dim == dim and vit.blocks[0].attn.num_heads == heads
        assert vit(torch.randn(1, 3, 16, 16))["cls"].shape == (1, dim)
    assert len(build_vit("tiny", patch_size=8, img_size=16).blocks) == 12
    assert VIT_DEPTHS == {"tiny": 12, "small": 12, "base": 12, "large": 24, "giant2": 40}
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
    model = _tiny(interpolate_offset=0.0)
    assert model.interpolated_pos_embed(8, 8) is model.pos_embed  # native grid: no resampling
    small = model.interpolated_pos_embed(4, 4)
    grid = model.pos_embed[:, 1:].reshape(1, 8, 8, 192).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
    assert torch.allclose(small[:, 1:], expected.permute(0, 2, 3, 1).reshape(1, 16, 192))
    assert torch.equal(small[:, :1], model.pos_embed[:, :1])  # CLS position unchanged


def test_dinov2_interpolation_offset_scales_the_grid() -> None:
    """DINOv2 resamples by the scale factor (h + 0.1) / grid (its interpolate_offset), which
    samples slightly different positions than resizing to h."""
    model = _tiny()  # offset 0.1, DINOv2's default
    grid = model.pos_embed[:, 1:].reshape(1, 8, 8, 192).permute(0, 3, 1, 2)
    for h, w in [(4, 4), (4, 6)]:
        expected = F.interpolate(grid, scale_factor=((h + 0.1) / 8, (w + 0.1) / 8), mode="bicubic")
        got = model.interpolated_pos_embed(h, w)[:, 1:]
        assert torch.allclose(got, expected.permute(0, 2, 3, 1).reshape(1, h * w, 192))
    by_size = F.interpolate(grid, size=(4, 4), mode="bicubic").permute(0, 2, 3, 1)
    assert not torch.allclose(
        model.interpolated_pos_embed(4, 4)[:, 1:], by_size.reshape(1, 16, 192)
    )


def test_mask_token_replaces_masked_patches_only() -> None:
    model = _tiny()
    x = torch.randn(2, 3, 32, 32)
    none = torch.zeros(2, 64, dtype=torch.bool)
    assert torch.allclose(model(x)["cls"], model(x, masks=none)["cls"])
    masks = none.clone()
    masks[0, :10] = True
    tokens = model.prepare_tokens(x, masks)
    pos = model.pos_embed
    assert model.mask_token.shape == (1, 192)  # DINOv2's shape
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
    assert [b.drop_path.rate for b in model.blocks] == [0.5, 0.5]  # uniform (DINOv2 default)
    ramp = _tiny(drop_path_rate=0.5, drop_path_uniform=False)
    assert ramp.blocks[0].drop_path.rate == 0.0 and ramp.blocks[-1].drop_path.rate == 0.5
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


@pytest.mark.parametrize("batch,rate", [(8, 0.3), (10, 0.4), (3, 0.9)])
def test_high_rates_run_the_branch_on_a_subset_as_dinov2(batch: int, rate: float) -> None:
    """Above 0.1, DINOv2 runs a branch on max(int(B * (1 - rate)), 1) random samples and adds
    it scaled by B / subset; the other samples pass unchanged."""
    x = torch.randn(batch, 5, 4)
    seen: list[int] = []

    def branch(t: torch.Tensor) -> torch.Tensor:
        seen.append(t.shape[0])
        return torch.ones_like(t)

    out = add_residual_on_subset(x, branch, rate)
    keep = max(int(batch * (1 - rate)), 1)
    assert seen == [keep]
    changed = ~torch.isclose(out, x).all(dim=(1, 2))
    assert int(changed.sum()) == keep
    assert torch.allclose(out[changed] - x[changed], torch.full((keep, 5, 4), batch / keep))
    block = Block(16, 2, 4.0, drop_path_rate=0.3, layerscale_init=None).train()
    calls = []
    block.mlp.register_forward_hook(lambda _m, inputs, _o: calls.append(inputs[0].shape[0]))
    block(torch.randn(10, 3, 16))
    assert calls == [7]  # int(10 * 0.7) samples through the FFN


def test_register_tokens_sit_after_cls_and_leave_the_patches() -> None:
    model = _tiny(num_register_tokens=4)
    x = torch.randn(2, 3, 32, 32)
    tokens = model.prepare_tokens(x)
    assert tokens.shape == (2, 1 + 4 + 64, 192)
    assert torch.allclose(tokens[:, 1:5], model.register_tokens.expand(2, -1, -1))  # no position
    plain = tokens[:, [0, *range(5, 69)]]
    without = _tiny()
    without.load_state_dict({k: v for k, v in model.state_dict().items() if k != "register_tokens"})
    assert torch.allclose(plain, without.prepare_tokens(x))
    out = model(x)
    assert out["patch"].shape == (2, 64, 192) and out["registers"].shape == (2, 4, 192)
    maps = cls_attention_maps(model, x)
    assert maps.shape == (2, 3, 8, 8)
    assert torch.allclose(maps.flatten(2), model.last_attention_maps(x)[:, :, 0, 5:], atol=1e-6)
    assert "registers" not in without(x)


def test_swiglu_ffn_follows_dinov2s_width_rule() -> None:
    assert swiglu_hidden(4 * 1536) == 4096  # ViT-g: w12 (8192, 1536), w3 (1536, 4096)
    assert swiglu_hidden(4 * 1024) == 2736 and swiglu_hidden(4 * 192) == 512
    torch.manual_seed(0)
    ffn = SwiGLUFFN(8, 16)
    x = torch.randn(3, 8)
    a, b = (x @ ffn.w12.weight.T + ffn.w12.bias).split(16, dim=-1)
    manual = (a * torch.sigmoid(a) * b) @ ffn.w3.weight.T + ffn.w3.bias
    assert torch.allclose(ffn(x), manual, atol=1e-6)
    model = build_vit("tiny", patch_size=4, img_size=16, depth=1, ffn_layer="swiglufused")
    assert model.blocks[0].mlp.w12.weight.shape == (2 * 512, 192)
    with pytest.raises(ConfigError, match="ffn_layer"):
        build_vit("tiny", patch_size=4, img_size=16, depth=1, ffn_layer="identity")


def test_state_dict_keys_are_dinov2s() -> None:
    """The keys of DINOv2's DinoVisionTransformer (block_chunks 0), so its checkpoints line up."""
    model = build_vit(
        "tiny", patch_size=4, img_size=16, depth=2, layerscale_init=1e-5, num_register_tokens=4
    )
    per_block = [
        "norm1.weight",
        "norm1.bias",
        "attn.qkv.weight",
        "attn.qkv.bias",
        "attn.proj.weight",
        "attn.proj.bias",
        "ls1.gamma",
        "norm2.weight",
        "norm2.bias",
        "mlp.fc1.weight",
        "mlp.fc1.bias",
        "mlp.fc2.weight",
        "mlp.fc2.bias",
        "ls2.gamma",
    ]
    expected = {
        "cls_token",
        "pos_embed",
        "register_tokens",
        "mask_token",
        "norm.weight",
        "norm.bias",
    }
    expected |= {"patch_embed.proj.weight", "patch_embed.proj.bias"}
    expected |= {f"blocks.{i}.{key}" for i in range(2) for key in per_block}
    assert set(model.state_dict()) == expected
    swiglu = build_vit("tiny", patch_size=4, img_size=16, depth=1, ffn_layer="swiglu")
    assert {k for k in swiglu.state_dict() if ".mlp." in k} == {
        "blocks.0.mlp.w12.weight",
        "blocks.0.mlp.w12.bias",
        "blocks.0.mlp.w3.weight",
        "blocks.0.mlp.w3.bias",
    }


@pytest.mark.parametrize("rate", [0.05, 0.1])
def test_low_rates_take_the_subset_form_as_dinov2s_student_does(rate: float) -> None:
    """DINOv2's student calls its backbone on a list of crops: the subset form at any rate
    above 0 (small-images trains at 0.1). Its single-tensor form (per-sample drop path up to
    0.1) is the named option ``subset_drop_above=0.1``."""
    calls: list[int] = []

    def hook(_m, inputs, _o) -> None:
        calls.append(inputs[0].shape[0])

    block = Block(16, 2, 4.0, drop_path_rate=rate, layerscale_init=None).train()
    block.mlp.register_forward_hook(hook)
    block(torch.randn(10, 3, 16))
    assert calls == [max(int(10 * (1 - rate)), 1)]  # 9 of 10 samples through the FFN
    calls.clear()
    single = Block(16, 2, 4.0, rate, None, subset_drop_above=0.1).train()
    single.mlp.register_forward_hook(hook)
    single(torch.randn(10, 3, 16))
    assert calls == [10]  # per-sample: every sample runs, some outputs are zeroed
    calls.clear()
    Block(16, 2, 4.0, 0.0, None).train()(torch.randn(10, 3, 16))  # rate 0: no drop at all
    model = build_vit("tiny", patch_size=4, img_size=16, depth=2, drop_path_rate=rate)
    assert all(b.subset_drop_above == 0.0 for b in model.blocks)
    option = build_vit("tiny", 4, 16, depth=2, drop_path_rate=rate, subset_drop_above=0.1)
    assert all(b.subset_drop_above == 0.1 for b in option.blocks)
