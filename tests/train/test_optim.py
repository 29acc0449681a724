"""AdamW groups as DINOv2 makes them (layer-wise lr decay, patch-embedding multiplier, decay of
the tokens, last-layer flag), schedule application, last-layer freeze at lr 0, clipping."""

from __future__ import annotations

import pytest
import torch

from dinodiag.train.models.network import build_network
from dinodiag.train.optim import (
    apply_schedule,
    build_adamw,
    clip_gradients,
    clip_gradients_per_part,
    param_groups,
)
from tests.train.tiny import tiny_model

DEPTH = 3


def _net(**changes):
    torch.manual_seed(0)
    model = tiny_model(
        num_prototypes=16, head_bottleneck_dim=8, depth=DEPTH, layerscale_init=1e-5, **changes
    )
    return build_network(model, 16)


def expected_multipliers(name: str, rate: float, patch_mult: float) -> tuple[float, float]:
    """DINOv2's rule as its docs state it, written out per name: (lr multiplier, wd multiplier).

    Backbone: embeddings / tokens are layer 0, blocks.i is layer i + 1, the rest (final norm)
    layer depth + 1; lr x rate ** (depth + 1 - layer), patch_embed x patch_mult; heads x 1.
    No weight decay for biases, norms and gammas only."""
    lr = 1.0
    if name.startswith("backbone."):
        inner = name[len("backbone.") :]
        if inner.startswith(("pos_embed", "patch_embed", "cls_token", "mask_token", "register")):
            layer = 0
        elif inner.startswith("blocks."):
            layer = int(inner.split(".")[1]) + 1
        else:
            layer = DEPTH + 1
        lr = rate ** (DEPTH + 1 - layer)
        if "patch_embed" in inner:
            lr *= patch_mult
    no_decay = name.endswith(".bias") or "norm" in name or "gamma" in name
    return lr, 0.0 if no_decay else 1.0


@pytest.mark.parametrize("rate,patch_mult", [(0.9, 0.2), (1.0, 1.0), (0.75, 0.5)])
def test_every_parameter_gets_dinov2s_multipliers(rate: float, patch_mult: float) -> None:
    net = _net(num_register_tokens=2)
    groups = param_groups(net, layerwise_decay=rate, patch_embed_lr_mult=patch_mult)
    seen = {}
    for group in groups:
        for param in group["params"]:
            seen[id(param)] = group
    names = [name for name, p in net.named_parameters() if p.requires_grad]
    assert len(seen) == len(names)
    for name, param in net.named_parameters():
        group = seen[id(param)]
        lr, wd = expected_multipliers(name, rate, patch_mult)
        assert group["lr_multiplier"] == pytest.approx(lr), name
        assert group["wd_multiplier"] == wd, name
        assert group["is_last_layer"] == ("last_layer" in name), name


def test_the_tokens_are_decayed_and_the_prototype_norms_trained() -> None:
    net = _net(num_register_tokens=1)
    groups = param_groups(net, 0.9, 0.2)
    group_of = {id(p): g for g in groups for p in g["params"]}
    by_name = {n: group_of[id(p)] for n, p in net.named_parameters() if id(p) in group_of}
    for name in ("backbone.pos_embed", "backbone.cls_token", "backbone.mask_token"):
        assert by_name[name]["wd_multiplier"] == 1.0, name  # DINOv2 decays them
    assert by_name["backbone.register_tokens"]["wd_multiplier"] == 1.0
    assert by_name["backbone.patch_embed.proj.weight"]["lr_multiplier"] == pytest.approx(
        0.9 ** (DEPTH + 1) * 0.2
    )
    assert by_name["backbone.norm.weight"]["lr_multiplier"] == 1.0
    magnitude = "dino_head.last_layer.parametrizations.weight.original0"
    assert by_name[magnitude]["wd_multiplier"] == 1.0  # g: trainable, with weight decay
    assert by_name[magnitude]["is_last_layer"]
    # a dino_v1 head has fixed norms: not optimised at all
    v1 = _net(head_style="dino_v1")
    optimised = {id(p) for group in param_groups(v1) for p in group["params"]}
    frozen = v1.dino_head.last_layer.parametrizations.weight.original0
    assert id(frozen) not in optimised


def test_apply_schedule_sets_lr_weight_decay_and_last_layer_lr() -> None:
    net = _net()
    optimizer = build_adamw(net, layerwise_decay=0.9, patch_embed_lr_mult=0.2)
    apply_schedule(optimizer, lr=0.01, weight_decay=0.04, last_layer_lr=0.0)
    for group in optimizer.param_groups:
        base = 0.0 if group["is_last_layer"] else 0.01
        assert group["lr"] == pytest.approx(base * group["lr_multiplier"])
        assert group["weight_decay"] == pytest.approx(0.04 * group["wd_multiplier"])
    apply_schedule(optimizer, lr=0.01, weight_decay=0.04)  # no freeze: the same lr everywhere
    assert all(g["lr"] == pytest.approx(0.01 * g["lr_multiplier"]) for g in optimizer.param_groups)


def test_frozen_last_layer_keeps_its_weights_but_adam_state_moves() -> None:
    """DINOv2 freezes with lr 0, not by dropping the gradient: AdamW's moments still update, so
    the first unfrozen step starts from warm moments."""
    net = _net()
    optimizer = build_adamw(net)
    direction = net.dino_head.last_layer.parametrizations.weight.original1
    before = direction.detach().clone()
    for _ in range(2):
        apply_schedule(optimizer, lr=1e-2, weight_decay=0.04, last_layer_lr=0.0)
        net(torch.randn(4, 3, 16, 16))["cls_logits"].logsumexp(-1).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    assert torch.equal(direction, before)  # lr 0: no update, no weight decay
    state = optimizer.state[direction]
    assert int(state["step"]) == 2 and torch.count_nonzero(state["exp_avg"]) > 0
    qkv = net.backbone.blocks[0].attn.qkv.weight
    assert optimizer.state[qkv]["exp_avg"].abs().sum() > 0
    apply_schedule(optimizer, lr=1e-2, weight_decay=0.04, last_layer_lr=1e-2)
    net(torch.randn(4, 3, 16, 16))["cls_logits"].logsumexp(-1).sum().backward()
    optimizer.step()
    assert not torch.equal(direction, before)


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


def test_each_part_is_clipped_on_its_own() -> None:
    """DINOv2 clips the backbone and each head separately: a large head gradient does not shrink
    the backbone's."""
    backbone, head = torch.nn.Linear(2, 2, bias=False), torch.nn.Linear(2, 1, bias=False)
    backbone.weight.grad = torch.full((2, 2), 0.5)  # norm 1.0 < 3: untouched
    head.weight.grad = torch.full((1, 2), 30.0)  # norm 42.4 > 3: clipped to 3
    total = clip_gradients_per_part([backbone, head], max_norm=3.0)
    assert total == pytest.approx((1.0 + 1800.0) ** 0.5)
    assert torch.allclose(backbone.weight.grad, torch.full((2, 2), 0.5))
    assert float(head.weight.grad.norm()) == pytest.approx(3.0, rel=1e-4)
