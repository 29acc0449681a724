"""Backbone + heads in one forward: shapes, teacher vs student masking, ResNet, a training step."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from dinodiag.errors import ConfigError, TrainingError
from dinodiag.recipe.config import ARCHS, ModelConfig
from dinodiag.train.ema import ema_update, make_teacher
from dinodiag.train.losses.dino import DINOLoss
from dinodiag.train.losses.ibot import IBOTPatchLoss
from dinodiag.train.losses.koleo import KoLeoLoss
from dinodiag.train.masking import generate_ibot_masks
from dinodiag.train.models.network import build_backbone, build_network
from dinodiag.train.models.vit import VIT_WIDTHS
from dinodiag.train.optim import apply_schedule, build_adamw, clip_gradients
from tests.train.tiny import tiny_model

VIT = tiny_model(patch_size=4, num_prototypes=64, head_hidden_dim=64)


def test_forward_shapes_with_locals_and_masks() -> None:
    torch.manual_seed(0)
    net = build_network(VIT, 16)
    batch = 3
    masks = generate_ibot_masks(2 * batch, (4, 4), generator=torch.Generator().manual_seed(0))
    out = net(torch.randn(2 * batch, 3, 16, 16), torch.randn(4 * batch, 3, 8, 8), masks=masks)
    assert out["global_cls"].shape == (6, 192) and out["local_cls"].shape == (12, 192)
    assert out["cls_logits"].shape == (18, 64)
    assert out["global_patch"].shape == (6, 16, 192)
    assert out["patch_logits"].shape == (int(masks.sum()), 64)
    assert net.patch_head is net.dino_head
    own_head = tiny_model(num_prototypes=8, head_hidden_dim=8, head_bottleneck_dim=4)
    separate = build_network(dataclasses.replace(own_head, ibot_separate_head=True), 16)
    assert separate.patch_head is not separate.dino_head and len(separate.parts()) == 3
    assert net.parts() == [net.backbone, net.dino_head]
    own_k = dataclasses.replace(own_head, ibot_separate_head=True, ibot_num_prototypes=12)
    assert build_network(own_k, 16).patch_head.out_dim == 12


@torch.no_grad()
def test_teacher_sees_unmasked_crops() -> None:
    torch.manual_seed(0)
    net = build_network(VIT, 16).eval()
    crops = torch.randn(2, 3, 16, 16)
    masks = torch.zeros(2, 16, dtype=torch.bool)
    masks[:, :5] = True
    with torch.no_grad():
        net.backbone.mask_token.fill_(3.0)
    teacher_view = net(crops, masks=masks, mask_input=False)
    plain = net.backbone(crops)
    assert torch.allclose(teacher_view["global_cls"], plain["cls"])
    assert torch.allclose(teacher_view["patch_logits"], net.dino_head(plain["patch"][masks]))
    student_view = net(crops, masks=masks)
    assert not torch.allclose(student_view["global_cls"], plain["cls"])


def test_resnet_network_has_no_patches() -> None:
    net = build_network(dataclasses.replace(VIT, arch="resnet18"), 16).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 8, 8))
    assert out["cls_logits"].shape == (4, 64) and "patch_logits" not in out
    with pytest.raises(TrainingError, match="patch tokens"):
        net(torch.randn(2, 3, 16, 16), masks=torch.ones(2, 4, dtype=torch.bool), mask_input=False)


def test_model_config_feeds_the_backbone_and_heads() -> None:
    model = ModelConfig(
        arch="vit_tiny", patch_size=4, embed_dim=48, num_heads=2, depth=3, layerscale_init=1e-5
    )
    net = build_network(model, 16)
    vit = net.backbone
    assert (vit.embed_dim, vit.num_heads, len(vit.blocks), vit.base_grid) == (48, 2, 3, 4)
    assert [b.drop_path.rate for b in vit.blocks] == [model.drop_path_rate] * 3  # uniform
    assert net.dino_head.out_dim == model.num_prototypes
    assert build_backbone(ModelConfig(arch="vit_small", depth=1), 32).embed_dim == 384
    with pytest.raises(ConfigError, match="multiple of patch_size 16"):
        build_backbone(ModelConfig(arch="vit_tiny"), 40)
    with pytest.raises(ConfigError, match="img_size must be >= 1"):
        build_backbone(ModelConfig(arch="resnet18"), 0)
    with pytest.raises(ConfigError, match=r"model\.arch"):
        ModelConfig(arch="vit_giant")


def test_every_vit_arch_has_a_width() -> None:
    assert {a for a in ARCHS if a.startswith("vit_")} == {f"vit_{w}" for w in VIT_WIDTHS}


def test_full_step_updates_student_and_teacher() -> None:
    """One complete DINOv2 step on a tiny model: every term finite, both networks move."""
    torch.manual_seed(0)
    student = build_network(VIT, 16)
    teacher = make_teacher(student)
    optimizer = build_adamw(student)
    apply_schedule(optimizer, lr=1e-3, weight_decay=0.04)
    dino, ibot, koleo = DINOLoss(64), IBOTPatchLoss(64), KoLeoLoss()
    batch = 4
    global_crops, local_crops = torch.randn(2 * batch, 3, 16, 16), torch.randn(2 * batch, 3, 8, 8)
    masks = generate_ibot_masks(2 * batch, (4, 4), generator=torch.Generator().manual_seed(1))
    teacher_before = [p.clone() for p in teacher.parameters()]
    with torch.no_grad():
        t = teacher(global_crops, masks=masks, mask_input=False)
    s = student(global_crops, local_crops, masks=masks)
    terms = {
        "dino": dino(s["cls_logits"], t["cls_logits"], teacher_temp=0.04),
        "ibot": ibot(s["patch_logits"], t["patch_logits"], masks, teacher_temp=0.04),
        "koleo": sum(koleo(chunk) for chunk in s["global_cls"].chunk(2)) / 2,
    }
    loss = terms["dino"] + terms["ibot"] + 0.1 * terms["koleo"]
    loss.backward()
    grad_norm = clip_gradients(student.parameters(), 3.0)
    optimizer.step()
    ema_update(teacher, student, momentum=0.99)
    assert all(torch.isfinite(v) for v in terms.values()) and grad_norm > 0
    assert any(
        not torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True)
    )
    assert torch.count_nonzero(dino.center) > 0 and torch.count_nonzero(ibot.center) > 0


def test_dinov2_model_fields_reach_the_modules() -> None:
    model = tiny_model(
        patch_size=4,
        depth=3,
        drop_path_rate=0.2,
        drop_path_uniform=False,
        num_register_tokens=2,
        ffn_layer="swiglufused",
        interpolate_offset=0.0,
        head_style="dino_v1",
        ibot_separate_head=True,
        ibot_num_prototypes=24,
        ibot_head_bottleneck_dim=8,
    )
    assert model.ffn_layer == "swiglu"  # DINOv2's other name for the same layer
    net = build_network(model, 16)
    vit = net.backbone
    assert vit.num_register_tokens == 2 and vit.interpolate_offset == 0.0
    assert [b.drop_path.rate for b in vit.blocks] == pytest.approx([0.0, 0.1, 0.2])
    assert hasattr(vit.blocks[0].mlp, "w12")
    assert not net.dino_head.last_layer.parametrizations.weight.original0.requires_grad
    ibot_head = net.patch_head
    assert ibot_head.out_dim == 24 and ibot_head.mlp[-1].out_features == 8
    assert net.dino_head.out_dim == 32 and net.dino_head.mlp[-1].out_features == 16
    with pytest.raises(ConfigError, match="ibot_separate_head"):
        tiny_model(ibot_num_prototypes=24)  # a shared head cannot have its own K
