"""AdamW groups (no decay on biases / norms / tokens), schedule application, clipping."""

from __future__ import annotations

import pytest
import torch

from dinodiag.train.models.network import build_network
from dinodiag.train.optim import apply_schedule, build_adamw, clip_gradients, param_groups
from tests.train.tiny import tiny_model


def _net():
    torch.manual_seed(0)
    return build_network(tiny_model(num_prototypes=16, head_bottleneck_dim=8), 16)


def test_groups_split_decay_and_no_decay() -> None:
    net = _net()
    groups = param_groups(net, lr_multipliers={"patch_embed": 0.5})
    names = {id(p): n for n, p in net.named_parameters()}
    by_group = {g["name"]: {names[id(p)] for p in g["params"]} for g in groups}
    no_decay = by_group["no_decay"] | by_group.get("no_decay_lr0.5", set())
    for fragment in (
        "pos_embed",
        "cls_token",
        "mask_token",
        "norm1.weight",
        "qkv.bias",
        "norm.bias",
    ):
        assert any(fragment in n for n in no_decay), fragment
    assert "backbone.blocks.0.attn.qkv.weight" in by_group["decay"]
    assert "backbone.patch_embed.weight" in by_group["decay_lr0.5"]
    all_names = set().union(*by_group.values())
    # the frozen prototype magnitude is not optimised
    assert not any("original0" in n for n in all_names)
    assert "dino_head.last_layer.parametrizations.weight.original1" in by_group["decay"]


def test_apply_schedule_sets_lr_and_weight_decay() -> None:
    net = _net()
    optimizer = build_adamw(net, lr_multipliers={"patch_embed": 0.5})
    apply_schedule(optimizer, lr=0.01, weight_decay=0.04)
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.01 * group["lr_multiplier"])
        assert group["weight_decay"] == pytest.approx(0.04 * group["wd_multiplier"])


def test_clip_returns_norm_before_clipping() -> None:
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(4))]
    params[0].grad = torch.full((3,), 3.0)
    params[1].grad = torch.full((4,), 4.0)
    expected = (9 * 3 + 16 * 4) ** 0.5
    assert clip_gradients(params, max_norm=None) == pytest.approx(expected)
    assert clip_gradients(params, max_norm=1.0) == pytest.approx(expected)
    total = torch.cat([p.grad for p in params]).norm()
    assert float(total) == pytest.approx(1.0, rel=1e-4)
    assert clip_gradients([torch.nn.Parameter(torch.zeros(2))], 1.0) == 0.0
