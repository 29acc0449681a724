"""A DINOv2 training config as a TrainConfig: every key that shapes training lands in its field,
DINOv2's defaults fill the rest, what dinodiag cannot train is refused, and the gpu preset is
DINOv2's recipe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dinodiag.augment.dinov2_config import DINOV2_DEFAULTS
from dinodiag.errors import ConfigError
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.recipe.dinov2 import FIELD_MAP, recipe_from_file
from dinodiag.recipe.plan import check_device
from dinodiag.recipe.presets import get_train_preset
from tests.facts import assert_mentions

# The shape of DINOv2's configs/train files.
VITL14 = """
dino: {head_n_prototypes: 131072, head_bottleneck_dim: 384}
ibot: {separate_head: true, head_n_prototypes: 131072}
train: {batch_size_per_gpu: 32, dataset_path: ImageNet22k, centering: sinkhorn_knopp}
student: {arch: vit_large, patch_size: 14, drop_path_rate: 0.4, ffn_layer: swiglufused,
          block_chunks: 4}
teacher: {momentum_teacher: 0.994}
optim: {epochs: 500, weight_decay_end: 0.2, base_lr: 2.0e-04, warmup_epochs: 80,
        layerwise_decay: 1.0}
crops: {local_crops_size: 98}
"""
SHORT = """
train: {dataset_path: "ImageNet:split=TRAIN", batch_size_per_gpu: 64}
student: {block_chunks: 4}
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_vitl14_lands_in_its_fields(tmp_path: Path) -> None:
    recipe = recipe_from_file(_write(tmp_path, "vitl14.yaml", VITL14))
    cfg = recipe.config
    assert cfg.name == "vitl14" and cfg.data.pipeline.endswith("vitl14.yaml")
    m, o, r = cfg.model, cfg.optim, cfg.run
    assert (m.arch, m.patch_size, m.drop_path_rate, m.ffn_layer) == ("vit_large", 14, 0.4, "swiglu")
    assert (m.num_prototypes, m.head_bottleneck_dim, m.ibot_separate_head) == (131072, 384, True)
    assert (m.ibot_num_prototypes, m.ibot_head_bottleneck_dim) == (131072, 256)  # ibot's own
    assert (m.layerscale_init, m.drop_path_uniform, m.num_register_tokens) == (1e-5, True, 0)
    assert (o.centering, o.momentum_start, o.base_lr, o.weight_decay_end) == (
        "sinkhorn",
        0.994,
        2e-4,
        0.2,
    )
    assert (o.warmup_epochs, o.layerwise_decay, o.patch_embed_lr_mult) == (80, 1.0, 0.2)
    assert (r.epochs, r.epoch_length, r.keep_full_schedules) == (500, 1250, True)
    assert cfg.data.batch_size == 32
    pipeline = resolve_pipeline(cfg)
    assert (pipeline.patch_size, pipeline.local_crops_size, pipeline.global_crops_size) == (
        14,
        98,
        224,
    )
    assert recipe.origins["model.patch_size"] == ("student.patch_size", "file")
    assert recipe.origins["optim.koleo_weight"] == ("dino.koleo_loss_weight", "DINOv2 default")
    shown = recipe.describe()
    assert shown["from_file"]["student.patch_size"] == {"field": "model.patch_size", "value": 14}
    assert shown["from_dinov2_defaults"]["ibot.mask_ratio_min_max"]["value"] == [0.1, 0.5]
    assert any("block_chunks" in note for note in shown["not_used"])
    assert any("dataset_path" in note for note in shown["not_used"])


def test_a_file_that_sets_little_trains_dinov2s_defaults(tmp_path: Path) -> None:
    cfg = recipe_from_file(_write(tmp_path, "vitl16_short.yaml", SHORT)).config
    d = DINOV2_DEFAULTS
    assert cfg.model.arch == d["student"]["arch"] and cfg.model.patch_size == 16
    assert cfg.model.drop_path_rate == d["student"]["drop_path_rate"]
    assert cfg.model.num_prototypes == d["dino"]["head_n_prototypes"]
    assert cfg.optim.centering == "center" and cfg.optim.ibot_weight == d["ibot"]["loss_weight"]
    assert cfg.optim.mask_ratio == tuple(d["ibot"]["mask_ratio_min_max"])
    assert cfg.optim.teacher_temp_warmup_epochs == d["teacher"]["warmup_teacher_temp_epochs"]
    assert cfg.optim.freeze_last_layer_epochs == d["optim"]["freeze_last_layer_epochs"]
    assert cfg.run.epochs == d["optim"]["epochs"] and cfg.run.seed == d["train"]["seed"]
    assert cfg.data.workers is None  # DINOv2's 10 workers only when the file asks for them
    assert resolve_pipeline(cfg).local_crops_number == 8


def test_every_mapped_key_is_a_dinov2_default_key() -> None:
    for key in FIELD_MAP:
        section, _, name = key.partition(".")
        assert name in DINOV2_DEFAULTS[section], key


@pytest.mark.parametrize(
    ("text", "facts"),
    [
        ("student: {qkv_bias: false}", ["student.qkv_bias = False", "cannot be trained"]),
        ("student: {pretrained_weights: w.pth}", ["student.pretrained_weights", "from scratch"]),
        ("optim: {scaling_rule: linear}", ["optim.scaling_rule = 'linear'", "sqrt_wrt_1024"]),
        ("train: {centering: mean}", ["train.centering = 'mean'", "sinkhorn_knopp"]),
        ("student: {arch: vit_huge}", ["student.arch = 'vit_huge'", "vit_giant2"]),
        ("student: {ffn_layer: identity}", ["student.ffn_layer", "= 'identity'", "swiglu"]),
        ("ibot: {head_n_prototypes: 4096}", ["= 4096", "= 65536", "ibot.separate_head: true"]),
        # the field and its range, and the DINOv2 key it came from
        (
            "student: {drop_path_rate: 1.5}",
            ["model.drop_path_rate = 1.5", "[0, 1)", "student.drop_path_rate"],
        ),
        ("crops: {local_crop_size: 96}", ["'crops.local_crop_size'", "'local_crops_size'"]),
    ],
)
def test_what_cannot_be_trained_is_refused(tmp_path: Path, text: str, facts: list[str]) -> None:
    path = _write(tmp_path, "my.yaml", text)
    with pytest.raises(ConfigError) as info:
        recipe_from_file(path)
    assert str(info.value).startswith(f"{path}: "), info.value  # every refusal names the file
    assert_mentions(str(info.value), *facts)


def test_unknown_keys_and_sections_are_noted_not_dropped(tmp_path: Path) -> None:
    notes = recipe_from_file(
        _write(tmp_path, "fork.yaml", "dino: {my_trick: 3}\nmy_section: {a: 1}\n")
    ).notes
    assert any("dino.my_trick" in n for n in notes) and any("my_section" in n for n in notes)
    with pytest.raises(ConfigError, match="does not exist"):
        recipe_from_file(tmp_path / "missing.yaml")


def test_vit_g_on_a_cpu_is_refused_with_what_to_change() -> None:
    cfg = get_train_preset("tiny-test").config
    giant = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, arch="vit_giant2"))
    with pytest.raises(ConfigError) as info:
        check_device(giant, gpus=0)
    # what is too big for where, and the two ways out: a GPU or a smaller student
    assert_mentions(
        str(info.value), "vit_giant2", "ViT-g", "CPU", "--device cuda", "--arch vit_small"
    )
    check_device(giant, gpus=1)  # auto picks the GPU
    check_device(cfg, gpus=0)  # a small ViT is fine anywhere
    on_cpu = dataclasses.replace(giant, run=dataclasses.replace(giant.run, device="cpu"))
    with pytest.raises(ConfigError, match="ViT-g"):
        check_device(on_cpu, gpus=1)


def test_gpu_preset_is_dinov2s_recipe() -> None:
    """Every recipe value of the gpu preset is DINOv2's default (arch and batch excepted)."""
    gpu = get_train_preset("gpu").config
    d = DINOV2_DEFAULTS
    assert gpu.model.drop_path_rate == d["student"]["drop_path_rate"]
    assert gpu.model.layerscale_init == d["student"]["layerscale"]
    assert gpu.model.drop_path_uniform is d["student"]["drop_path_uniform"]
    assert gpu.model.ffn_layer == d["student"]["ffn_layer"] and gpu.model.head_style == "dinov2"
    assert gpu.model.num_prototypes == d["dino"]["head_n_prototypes"]
    assert gpu.model.head_hidden_dim == d["dino"]["head_hidden_dim"]
    assert gpu.model.ibot_separate_head is d["ibot"]["separate_head"]
    o = gpu.optim
    assert (o.base_lr, o.min_lr, o.warmup_epochs) == (
        d["optim"]["base_lr"],
        d["optim"]["min_lr"],
        d["optim"]["warmup_epochs"],
    )
    assert (o.weight_decay_start, o.weight_decay_end) == (0.04, 0.4)
    assert (o.layerwise_decay, o.patch_embed_lr_mult) == (0.9, 0.2)
    assert o.freeze_last_layer_epochs == d["optim"]["freeze_last_layer_epochs"]
    assert (o.momentum_start, o.momentum_end) == (0.992, 1.0)
    assert (o.teacher_temp_start, o.teacher_temp_end, o.teacher_temp_warmup_epochs) == (
        0.04,
        0.07,
        30,
    )
    assert (o.koleo_weight, o.ibot_weight, o.mask_probability) == (0.1, 1.0, 0.5)
    assert (o.dino_normalisation, o.ibot_normalisation, o.centering) == (
        "dinov2",
        "global_crops",
        "center",
    )
    assert gpu.data.pipeline == "dinov2"


@pytest.mark.parametrize(
    ("blur", "probabilities"),
    [("released", (0.0, 0.9, 0.5)), ("published", (1.0, 0.1, 0.5))],
)
def test_a_dinov2_file_trains_the_released_blur_unless_told_published(
    tmp_path: Path, blur: str, probabilities: tuple[float, float, float]
) -> None:
    """DINOv2's GaussianBlur passes 1 - p to RandomApply: its code blurs 0 / 0.9 / 0.5 where the
    paper and the config say 1.0 / 0.1 / 0.5. "Train as DINOv2 would" is the code's by default;
    the published one is `--dinov2-blur published`; the pipeline's name says which."""
    cfg = recipe_from_file(_write(tmp_path, "vitl14.yaml", VITL14)).config
    if blur != "released":
        cfg = cfg.with_overrides({"data.dinov2_blur": blur})
    assert cfg.data.dinov2_blur == blur and cfg.to_dict()["data"]["dinov2_blur"] == blur
    pipeline = resolve_pipeline(cfg)
    got = (pipeline.global1.blur_p, pipeline.global2.blur_p, pipeline.local.blur_p)
    assert got == pytest.approx(probabilities)
    assert pipeline.name == f"vitl14, {blur} blur"
    assert pipeline.global2.solarize_p == 0.2  # only the blur differs from the recipe


def test_the_dinov2_blur_choice_leaves_presets_alone_and_refuses_other_values() -> None:
    cfg = get_train_preset("tiny-test").config.with_overrides({"data.pipeline": "dinov2"})
    assert resolve_pipeline(cfg).global1.blur_p == 1.0  # the dinov2 preset is the published one
    with pytest.raises(ConfigError, match="dinov2_blur"):
        cfg.with_overrides({"data.dinov2_blur": "inverted"})
