"""TrainConfig: defaults, round trip, overrides, validation messages, the resolved pipeline."""

from __future__ import annotations

import json

import pytest

from dinodiag.errors import ConfigError
from dinodiag.train.config import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    resolve_pipeline,
)


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
    ],
)
def test_invalid_fields_are_named(make, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        make()


def test_from_dict_refuses_unknown_sections_and_types():
    with pytest.raises(ConfigError, match="Did you mean 'optim'"):
        TrainConfig.from_dict({"optimm": {}})
    with pytest.raises(ConfigError, match="must be a mapping"):
        TrainConfig.from_dict({"model": 3})
    with pytest.raises(ConfigError, match=r"run\.compile = 'maybe' .*expected true or false"):
        TrainConfig.from_dict({"run": {"compile": "maybe"}})


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
    with pytest.raises(ConfigError, match="not a multiple of the ViT patch size 12"):
        resolve_pipeline(cfg)
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
    from dinodiag.train.config import check_crops

    one = resolve_pipeline(cfg).replace(global_crops_number=1)
    with pytest.raises(ConfigError, match="single view"):
        check_crops(one, cfg.model)
