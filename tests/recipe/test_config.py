"""TrainConfig: defaults, round trip, overrides, validation messages, the resolved pipeline."""

from __future__ import annotations

import json

import pytest

from dinodiag.errors import ConfigError
from dinodiag.recipe.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)
from dinodiag.recipe.crops import pipeline_file_patch_size, resolve_pipeline
from tests.facts import assert_mentions


def test_round_trip_through_json():
    cfg = TrainConfig(name="x", optim=OptimConfig(mask_ratio=(0.2, 0.4)))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["optim"]["mask_ratio"] == [0.2, 0.4]
    assert TrainConfig.from_dict(data) == cfg


def test_overrides_convert_text_and_validate():
    cfg = TrainConfig().with_overrides(
        {
            "optim.base_lr": "1e-3",
            "run.max_steps": "20",
            "run.compile": "true",
            "optim.mask_ratio": "0.1,0.3",
            "model.depth": "none",
            "name": "mine",
        }
    )
    assert cfg.optim.base_lr == 1e-3 and cfg.run.max_steps == 20 and cfg.run.compile is True
    assert cfg.optim.mask_ratio == (0.1, 0.3) and cfg.model.depth is None and cfg.name == "mine"
    with pytest.raises(ConfigError, match="Did you mean 'base_lr'"):
        TrainConfig().with_overrides({"optim.base_lrr": 1})
    with pytest.raises(ConfigError, match="section.field"):
        TrainConfig().with_overrides({"lr": 1})
    with pytest.raises(ConfigError, match="expected an integer"):
        TrainConfig().with_overrides({"run.max_steps": "2.5"})


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ModelConfig(arch="vit_giant"), "model.arch"),
        (lambda: ModelConfig(embed_dim=100, num_heads=3), "model.embed_dim"),
        (lambda: ModelConfig(num_prototypes=1), "model.num_prototypes"),
        (lambda: OptimConfig(base_lr=0), "optim.base_lr"),
        (lambda: OptimConfig(momentum_start=1.5), "optim.momentum_start"),
        (lambda: OptimConfig(centering="mean"), "optim.centering"),
        (lambda: OptimConfig(mask_ratio=(0.5, 0.1)), "optim.mask_ratio"),
        (lambda: DataConfig(batch_size=0), "data.batch_size"),
        (lambda: RunConfig(device="tpu"), "run.device"),
        (lambda: RunConfig(log_every=0), "run.log_every"),
        (lambda: RunConfig(max_seconds=-1), "run.max_seconds"),
        (lambda: RunConfig(epoch_length=0), "run.epoch_length"),
        (lambda: ModelConfig(ffn_layer="geglu"), "model.ffn_layer"),
        (lambda: ModelConfig(head_style="v3"), "model.head_style"),
        (lambda: ModelConfig(num_register_tokens=-1), "model.num_register_tokens"),
        (lambda: ModelConfig(interpolate_offset=1.0), "model.interpolate_offset"),
        (lambda: ModelConfig(ibot_head_layers=0), "model.ibot_head_layers"),
        (lambda: ModelConfig(ibot_head_bottleneck_dim=64), "model.ibot_head_bottleneck_dim"),
        (lambda: OptimConfig(layerwise_decay=0), "optim.layerwise_decay"),
        (lambda: OptimConfig(patch_embed_lr_mult=2), "optim.patch_embed_lr_mult"),
        (lambda: OptimConfig(dino_normalisation="mean"), "optim.dino_normalisation"),
        (lambda: OptimConfig(ibot_normalisation="all"), "optim.ibot_normalisation"),
    ],
)
def test_invalid_fields_are_named(make, field):
    with pytest.raises(ConfigError) as info:
        make()
    assert str(info.value).startswith(f"{field} = ")  # the field first, then its value


def test_from_dict_refuses_unknown_sections_and_types():
    with pytest.raises(ConfigError, match="Did you mean 'optim'"):
        TrainConfig.from_dict({"optimm": {}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_dict({"model": 3})
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"run": {"compile": "maybe"}})
    assert str(info.value).startswith("run.compile = 'maybe' ")
    assert_mentions(str(info.value), "wrong type", "true or false")


def test_resolve_pipeline_applies_overrides_and_patch_size():
    cfg = TrainConfig(
        model=ModelConfig(patch_size=4),
        data=DataConfig(
            pipeline="small-images", local_crops=3, global_crops_size=24, local_crops_size=12
        ),
    )
    pipe = resolve_pipeline(cfg)
    assert (pipe.global_crops_size, pipe.local_crops_size, pipe.local_crops_number) == (24, 12, 3)
    assert pipe.patch_size == 4


def test_crop_sizes_must_fit_the_patch_size():
    cfg = TrainConfig(model=ModelConfig(patch_size=12), data=DataConfig(pipeline="small-images"))
    with pytest.raises(ConfigError) as info:
        resolve_pipeline(cfg)
    # the size, the patch, the sizes that fit and the flags that set them
    assert_mentions(str(info.value), "global_crops_size = 32", "patch size 12", "24 or 36")
    assert_mentions(str(info.value), "--global-crops-size", "--patch-size")
    # ResNet has no patches: any size goes.
    resnet = TrainConfig(
        model=ModelConfig(arch="resnet18", patch_size=16), data=DataConfig(pipeline="small-images")
    )
    assert resolve_pipeline(resnet).global_crops_size == 32


def test_single_view_pipeline_is_refused():
    cfg = TrainConfig(
        model=ModelConfig(patch_size=4), data=DataConfig(pipeline="small-images", local_crops=0)
    ).with_overrides({})
    assert resolve_pipeline(cfg).local_crops_number == 0  # 2 globals: fine
    from dinodiag.recipe.crops import check_crops

    one = resolve_pipeline(cfg).replace(global_crops_number=1)
    with pytest.raises(ConfigError, match="single view"):
        check_crops(one, cfg.model)


def test_dinov2_knob_defaults():
    model, optim = ModelConfig(), OptimConfig()
    assert (model.drop_path_uniform, model.num_register_tokens, model.ffn_layer) == (True, 0, "mlp")
    assert (model.head_style, model.ibot_separate_head, model.interpolate_offset) == (
        "dinov2",
        False,
        0.1,
    )
    assert (optim.layerwise_decay, optim.patch_embed_lr_mult) == (0.9, 0.2)
    assert (optim.mask_probability, optim.mask_ratio) == (0.5, (0.1, 0.5))
    assert (optim.dino_normalisation, optim.ibot_normalisation) == ("dinov2", "global_crops")
    assert optim.freeze_last_layer_epochs == 1.0 and optim.koleo_across_processes is False
    assert (optim.teacher_temp_start, optim.teacher_temp_end) == (0.04, 0.07)
    assert ModelConfig(ffn_layer="swiglufused").ffn_layer == "swiglu"


def test_configs_written_before_head_style_still_load():
    for old, style in ((True, "dino_v1"), (False, "dinov2")):
        cfg = TrainConfig.from_dict({"model": {"norm_last_layer": old}})
        assert cfg.model.head_style == style


def test_a_pipeline_files_patch_size_must_be_the_models(tmp_path):
    path = tmp_path / "vitl14.yaml"
    path.write_text("student: {patch_size: 14}\ncrops: {local_crops_size: 98}\n")
    cfg = TrainConfig(model=ModelConfig(patch_size=14), data=DataConfig(pipeline=str(path)))
    pipe = resolve_pipeline(cfg)
    assert (pipe.patch_size, pipe.local_crops_size, pipe.global_crops_size) == (14, 98, 224)
    with pytest.raises(ConfigError) as info:
        resolve_pipeline(TrainConfig(data=DataConfig(pipeline=str(path))))
    # the file, its patch, the model's, and the flag that makes them agree
    assert_mentions(str(info.value), str(path), "patch size 14", "model.patch_size is 16")
    assert_mentions(str(info.value), "--patch-size 14")
    assert pipeline_file_patch_size(str(path)) == 14
    short = tmp_path / "vitl16_short.yaml"  # no crops: section, no patch size: DINOv2's 16
    short.write_text("train: {batch_size_per_gpu: 64}\nstudent: {block_chunks: 4}\n")
    assert pipeline_file_patch_size(str(short)) == 16
    assert (
        resolve_pipeline(TrainConfig(data=DataConfig(pipeline=str(short)))).local_crops_number == 8
    )
    assert pipeline_file_patch_size("dinov2") is None
