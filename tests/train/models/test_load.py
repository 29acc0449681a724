"""Loading DINOv2 checkpoints into dinodiag's ViT: key layouts (plain, chunked, wrapped, teacher
and training-state files), architectures read off the shapes (ViT-S/14 with registers, SwiGLU,
ViT-g), the features equal to the source model's and again after a reload, the refusals, and
dinodiag's own checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import dinodiag
from dinodiag.errors import TrainingError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.look_inside import load_teacher
from dinodiag.train.engine import run_training
from dinodiag.train.models.dinov2_keys import infer_vit_shape, to_dinodiag_keys, unchunk_blocks
from dinodiag.train.models.head import DINOHead
from dinodiag.train.models.load import find_checkpoints, load_backbone
from dinodiag.train.models.vit import VisionTransformer
from dinodiag.train.models.vit_layers import swiglu_hidden
from tests.runs.dinov2_fakes import dinov2_layout, head_layout, run_config, vit_small, write_teacher


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    torch.manual_seed(5)
    return torch.randn(2, 3, 224, 224)


def cls(model: VisionTransformer, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)["cls"]


@pytest.fixture(scope="module")
def vits14_reg4() -> VisionTransformer:
    return vit_small(patch=14, grid=37, depth=12, registers=4)


@pytest.mark.parametrize("chunks", [0, 4])
def test_a_public_vits14_reg4_file_loads_with_equal_features_and_reloads(
    tmp_path: Path, vits14_reg4: VisionTransformer, images: torch.Tensor, chunks: int
) -> None:
    source = vits14_reg4
    source.interpolate_offset, source.interpolate_antialias = 0.0, True  # the hub's reg settings
    path = tmp_path / "dinov2_vits14_reg4_pretrain.pth"
    torch.save(dinov2_layout(source, chunks), path)
    backbone = load_backbone(path)
    vit = backbone.vit
    assert (vit.embed_dim, len(vit.blocks), vit.num_heads, vit.patch_size) == (384, 12, 6, 14)
    assert vit.num_register_tokens == 4 and vit.base_grid == 37
    assert (vit.interpolate_offset, vit.interpolate_antialias) == (0.0, True)
    assert (
        "4 registers" in backbone.description and "37x37 positions (518 px)" in backbone.description
    )
    assert not backbone.training and not any(p.requires_grad for p in backbone.parameters())
    features = backbone(images)  # (B, D): the final-norm CLS token, as DINOv2's forward
    assert features.shape == (2, 384)
    torch.testing.assert_close(features, cls(source, images), rtol=0, atol=1e-5)
    # reload: the loaded model written back in DINOv2's layout loads to the same features
    again = tmp_path / "again.pth"
    torch.save(dinov2_layout(vit, chunks=3), again)
    torch.testing.assert_close(load_backbone(again)(images), features, rtol=0, atol=1e-6)


def test_a_chunked_swiglu_teacher_checkpoint_loads_with_equal_features(
    tmp_path: Path, images: torch.Tensor
) -> None:
    source = vit_small(patch=14, grid=16, depth=4, registers=0, ffn="swiglu", seed=3)
    assert source.blocks[0].mlp.w12.out_features == 2 * swiglu_hidden(1536) == 2 * 1024
    path = write_teacher(tmp_path / "eval" / "training_1249" / "teacher_checkpoint.pth", source, 2)
    backbone = load_backbone(tmp_path)  # the run directory: its latest teacher checkpoint
    assert backbone.kind == "teacher" and backbone.iteration == 1249
    assert backbone.source == path
    assert "SwiGLU 1024 hidden" in backbone.description and "0 registers" in backbone.description
    torch.testing.assert_close(backbone(images), cls(source, images), rtol=0, atol=1e-5)


def test_a_wrong_block_order_would_change_the_features(tmp_path: Path, images: torch.Tensor):
    """The round trips above would pass with blocks in any order only if the blocks did not
    matter: swapping two blocks' weights changes the features."""
    source = vit_small(patch=14, grid=16, depth=2, registers=0)
    state = dinov2_layout(source)
    swapped = {}
    for key, value in state.items():
        if key.startswith("blocks."):
            _, index, rest = key.split(".", 2)
            key = f"blocks.{1 - int(index)}.{rest}"
        swapped[key] = value
    torch.save(swapped, tmp_path / "swapped.pth")
    assert not torch.allclose(load_backbone(tmp_path / "swapped.pth")(images), cls(source, images))


def test_vit_g14_shapes_are_read_without_building_it() -> None:
    """ViT-g/14 (1536 wide, 40 blocks, SwiGLU 4096, 37 x 37 positions), on meta tensors."""
    meta = {"device": "meta"}
    dim, hidden = 1536, 4096
    state = {
        "cls_token": torch.empty(1, 1, dim, **meta),
        "pos_embed": torch.empty(1, 1 + 37 * 37, dim, **meta),
        "mask_token": torch.empty(1, dim, **meta),
        "patch_embed.proj.weight": torch.empty(dim, 3, 14, 14, **meta),
        "norm.weight": torch.empty(dim, **meta),
    }
    for i in range(40):
        state[f"blocks.{i}.mlp.w12.weight"] = torch.empty(2 * hidden, dim, **meta)
        state[f"blocks.{i}.ls1.gamma"] = torch.empty(dim, **meta)
    shape = infer_vit_shape(state)
    assert (shape.embed_dim, shape.depth, shape.num_heads, shape.patch_size) == (1536, 40, 24, 14)
    assert shape.ffn_layer == "swiglu" and shape.ffn_hidden == 4096 and shape.layerscale
    assert swiglu_hidden(int(dim * shape.mlp_ratio)) == hidden  # the ViT rebuilds that width
    assert shape.img_size == 518


def test_chunks_with_local_or_global_indices_flatten_in_order() -> None:
    t = [torch.tensor(float(i)) for i in range(4)]
    global_index = {"blocks.0.0.w": t[0], "blocks.0.1.w": t[1], "blocks.1.2.w": t[2]}
    local_index = {"blocks.0.0.w": t[0], "blocks.0.1.w": t[1], "blocks.1.0.w": t[2]}
    for state in (global_index, local_index):
        flat = unchunk_blocks(state)
        assert sorted(flat) == ["blocks.0.w", "blocks.1.w", "blocks.2.w"]
        assert [float(flat[f"blocks.{i}.w"]) for i in range(3)] == [0.0, 1.0, 2.0]
    with pytest.raises(TrainingError, match="mixes chunked blocks"):
        unchunk_blocks({"blocks.0.0.norm1.weight": t[0], "blocks.1.norm1.weight": t[1]})


def test_wrapper_prefixes_and_the_heads_weight_norm_keys_map(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    head = DINOHead(32, out_dim=64, hidden_dim=48, bottleneck_dim=16)
    with torch.no_grad():
        head.last_layer.parametrizations.weight.original0.uniform_(0.5, 2.0)
    dinov2 = {f"module.dino_head._fsdp_wrapped_module.{k}": v for k, v in head_layout(head).items()}
    assert "module.dino_head._fsdp_wrapped_module.last_layer.weight_g" in dinov2
    mapped = to_dinodiag_keys(dinov2)
    rebuilt = DINOHead(32, out_dim=64, hidden_dim=48, bottleneck_dim=16)
    rebuilt.load_state_dict({k.removeprefix("dino_head."): v for k, v in mapped.items()})
    x = torch.randn(3, 32)
    torch.testing.assert_close(rebuilt(x), head(x))


def test_a_training_state_gives_the_teacher_or_the_student(tmp_path: Path, images) -> None:
    teacher = vit_small(patch=14, grid=16, depth=2, registers=0, seed=1)
    student = vit_small(patch=14, grid=16, depth=2, registers=0, seed=2)
    model = {f"teacher.backbone.{k}": v for k, v in dinov2_layout(teacher).items()}
    model.update({f"student.backbone.{k}": v for k, v in dinov2_layout(student).items()})
    path = tmp_path / "model_0000499.rank_0.pth"
    torch.save({"model": model, "iteration": 499}, path)
    loaded = load_backbone(path)
    assert loaded.kind == "training-state" and loaded.iteration == 499
    torch.testing.assert_close(loaded(images), cls(teacher, images), rtol=0, atol=1e-5)
    torch.testing.assert_close(
        load_backbone(path, network="student")(images), cls(student, images), rtol=0, atol=1e-5
    )


def test_the_head_count_comes_from_the_config_or_the_caller(tmp_path: Path, images) -> None:
    torch.manual_seed(0)
    source = VisionTransformer(img_size=224, patch_size=14, embed_dim=384, depth=2, num_heads=12)
    torch.save(dinov2_layout(source), tmp_path / "odd.pth")
    assert load_backbone(tmp_path / "odd.pth").vit.num_heads == 6  # DINOv2's 64-wide heads
    assert not torch.allclose(load_backbone(tmp_path / "odd.pth")(images), cls(source, images))
    given = load_backbone(tmp_path / "odd.pth", num_heads=12)
    torch.testing.assert_close(given(images), cls(source, images), rtol=0, atol=1e-5)
    # a config.yaml next to the checkpoint names the arch and the interpolation
    run = tmp_path / "run"
    config = run_config(student={"arch": "vit_small", "interpolate_offset": 0.0})
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    write_teacher(run / "eval" / "training_9" / "teacher_checkpoint.pth", vit_small(14, 16, 2))
    loaded = load_backbone(run)
    assert loaded.vit.interpolate_offset == 0.0 and "student.arch of" in loaded.description
    assert loaded.image_size == 224


def test_what_cannot_be_mapped_is_refused_naming_the_file_and_keys(tmp_path: Path) -> None:
    state = dinov2_layout(vit_small(patch=14, grid=16, depth=2, registers=0))
    cases = {
        "extra.pth": ({**state, "head.weight": torch.zeros(10, 384)}, "head.weight"),
        "nobias.pth": (
            {k: v for k, v in state.items() if k != "blocks.1.attn.qkv.bias"},
            "blocks.1.attn.qkv.bias",
        ),
        "resnet.pth": ({"conv1.weight": torch.zeros(64, 3, 7, 7)}, "not a DINOv2 ViT backbone"),
        "odd_grid.pth": ({**state, "pos_embed": torch.zeros(1, 1 + 15, 384)}, "not a square"),
        "shapes.pth": (
            {**state, "blocks.1.mlp.fc1.weight": torch.zeros(100, 384)},
            "blocks.1.mlp.fc1.weight",
        ),
    }
    for name, (content, expected) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(TrainingError) as info:
            load_backbone(tmp_path / name)
        assert expected in str(info.value) and name in str(info.value), (name, info.value)
    (tmp_path / "damaged.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(TrainingError, match="damaged.pth"):
        load_backbone(tmp_path / "damaged.pth")
    with pytest.raises(TrainingError, match="does not exist"):
        load_backbone(tmp_path / "missing.pth")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(TrainingError, match="holds no checkpoint"):
        load_backbone(tmp_path / "empty_run")


class NotWeights:
    """Stands for the objects FSDP's sharded files pickle (weights_only refuses them)."""


def test_files_holding_objects_are_never_unpickled(tmp_path: Path) -> None:
    path = tmp_path / "model_0000099.rank_3.pth"
    torch.save({"model": NotWeights()}, path)
    with pytest.raises(TrainingError) as info:
        load_backbone(path)
    assert str(path) in str(info.value) and "teacher_checkpoint.pth" in str(info.value)


def test_find_checkpoints_orders_by_iteration(tmp_path: Path) -> None:
    for name in ("training_1249", "training_249", "manual"):
        (tmp_path / "eval" / name).mkdir(parents=True)
        (tmp_path / "eval" / name / "teacher_checkpoint.pth").write_bytes(b"")
    (tmp_path / "model_0000999.rank_0.pth").write_bytes(b"")
    (tmp_path / "model_0000999.rank_1.pth").write_bytes(b"")
    found = find_checkpoints(tmp_path)
    assert [(c.kind, c.iteration) for c in found] == [
        ("teacher", 249),
        ("teacher", 1249),
        ("teacher", None),
        ("training-state", 999),
    ]


def test_a_dinodiag_run_loads_its_teacher_as_look_inside_does(tmp_path: Path) -> None:
    config = get_train_preset("tiny-test").config.with_overrides({"run.max_steps": 2})
    assert run_training(config, tmp_path / "run", progress=None).state == "finished"
    backbone = dinodiag.load_backbone(tmp_path / "run")
    # the step its checkpoint holds, from status.json (open-run listed it as "dinodiag (?)")
    assert [(c.kind, c.iteration) for c in find_checkpoints(tmp_path / "run")] == [("dinodiag", 2)]
    teacher = load_teacher(tmp_path / "run")
    assert backbone.kind == "dinodiag" and backbone.iteration == 2 and backbone.image_size == 16
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), teacher.backbone(x)["cls"])
    assert backbone.mean == teacher.pipeline.mean
