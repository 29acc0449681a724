"""Training presets: complete :class:`TrainConfig` objects for the usual situations.

- ``cpu-demo``: learns visibly on a 2-core laptop in under 5 minutes (generated shapes,
  32 px, a 4-block ViT of width 64); the k-NN at step 0 is the random-init baseline.
- ``small-images``: 32-96 px datasets (CIFAR-10/100, STL-10) on one GPU.
- ``gpu``: ViT-S/16 with 224 / 96 px crops and the DINOv2 pipeline, bf16, for real datasets.
- ``tiny-test``: seconds-long runs for the test suite (16 px, 1 block of width 32).

    python -m dinodiag train --preset cpu-demo --run-dir runs/demo
"""

from __future__ import annotations

from dataclasses import dataclass

from dinodiag.augment.presets import lookup_preset
from dinodiag.recipe.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig


@dataclass(frozen=True)
class TrainPreset:
    name: str  # what users type: --preset cpu-demo
    description: str  # one line: what it trains and where it runs
    config: TrainConfig


# Tuned on a 2-core CPU (14% -> 38% k-NN top-1 in 270 s): a narrow ViT learns faster per
# second than a wider one; iBOT is off (the k-NN reads the CLS token and every step counts); a
# fast teacher (momentum 0.95 -> 0.99) keeps the evaluated teacher close to the student; a fixed
# sharp teacher temperature and K = 256 break the early uniform phase quickly. The schedules are
# laid out over the steps that fit in max_seconds (fit_to_time), with k-NN every 100 steps and
# a last one before the time limit.
_CPU_DEMO = TrainConfig(
    name="cpu-demo",
    model=ModelConfig(
        arch="vit_tiny",
        patch_size=4,
        embed_dim=64,
        num_heads=4,
        depth=4,  # ~0.4 M weights
        drop_path_rate=0.0,
        num_prototypes=256,
        head_hidden_dim=512,
        head_bottleneck_dim=128,
        head_style="dinov2",  # trainable prototype norms
    ),
    optim=OptimConfig(
        base_lr=0.008,
        warmup_epochs=1.0,
        min_lr=1e-5,  # peak lr 2e-3 at batch 64 (sqrt rule)
        momentum_start=0.95,
        momentum_end=0.99,
        teacher_temp_start=0.04,
        teacher_temp_end=0.04,
        freeze_last_layer_epochs=0.2,
        weight_decay_start=0.04,
        weight_decay_end=0.1,
        ibot_weight=0.0,
    ),
    data=DataConfig(
        data="generated:n=2000,val_n=500,size=32,classes=10",
        pipeline="small-images",
        local_crops=4,
        batch_size=64,
        knn_train_max=2000,
        knn_test_max=500,
    ),
    # One compute thread: small matrices gain little from a second one, and two OpenMP threads
    # slow down 5x as soon as anything else runs; the data loader worker takes the other core.
    run=RunConfig(
        epochs=30,
        max_seconds=270,
        fit_to_time=True,
        eval_every=100,
        log_every=10,
        checkpoint_every=0,
        threads=1,
    ),
)

_SMALL_IMAGES = TrainConfig(
    name="small-images",
    model=ModelConfig(
        arch="vit_small",
        patch_size=4,
        depth=12,
        drop_path_rate=0.1,
        num_prototypes=8192,
    ),
    optim=OptimConfig(
        base_lr=0.004,
        warmup_epochs=10,
        momentum_start=0.996,
        teacher_temp_warmup_epochs=30,
    ),
    data=DataConfig(
        data="generated:n=20000,size=32",
        pipeline="small-images",
        batch_size=256,
        knn_train_max=10000,
        knn_test_max=2000,
    ),
    run=RunConfig(epochs=200, eval_every=2000, log_every=20, checkpoint_every=1000),
)

# DINOv2's recipe (ssl_default_config.yaml) on a ViT-S/16 (DINOv2's default is a ViT-L: pass
# --arch vit_large on big GPUs): layerscale, stochastic depth 0.3 in every block, 65536 shared
# prototypes, iBOT on half the global crops, KoLeo 0.1, layer-wise lr decay 0.9, patch-embedding
# lr x 0.2, last layer at lr 0 for the first epoch. One deviation: 128 images per GPU (DINOv2:
# 64 on each of 16+ GPUs), because centering starves at a global batch of 64.
_GPU = TrainConfig(
    name="gpu",
    model=ModelConfig(
        arch="vit_small",
        patch_size=16,
        drop_path_rate=0.3,
        drop_path_uniform=True,
        layerscale_init=1e-5,
        num_prototypes=65536,
        head_style="dinov2",
    ),
    optim=OptimConfig(
        base_lr=0.004,
        warmup_epochs=10,
        momentum_start=0.992,
        layerwise_decay=0.9,
        patch_embed_lr_mult=0.2,
        freeze_last_layer_epochs=1.0,
    ),
    data=DataConfig(
        data="generated:n=20000,size=128",
        pipeline="dinov2",
        batch_size=128,
        knn_train_max=10000,
        knn_test_max=2000,
    ),
    run=RunConfig(
        epochs=100, eval_every=2000, log_every=20, checkpoint_every=1000, precision="auto"
    ),
)

_TINY_TEST = TrainConfig(
    name="tiny-test",
    model=ModelConfig(
        arch="vit_tiny",
        patch_size=4,
        embed_dim=32,
        num_heads=2,
        depth=1,
        drop_path_rate=0.0,
        num_prototypes=64,
        head_hidden_dim=64,
        head_bottleneck_dim=32,
    ),
    optim=OptimConfig(
        warmup_epochs=0.5, teacher_temp_warmup_epochs=1.0, freeze_last_layer_epochs=0.0
    ),
    data=DataConfig(
        data="generated:n=64,val_n=32,size=16,classes=4",
        pipeline="small-images",
        local_crops=2,
        global_crops_size=16,
        local_crops_size=8,
        batch_size=4,
        workers=0,
        knn_train_max=64,
        knn_test_max=32,
    ),
    run=RunConfig(epochs=1, max_steps=4, eval_every=0, log_every=1, checkpoint_every=0, threads=1),
)

_PRESETS = [
    TrainPreset(
        "cpu-demo",
        "learns on a 2-core CPU in < 5 min: generated shapes, 32 / 16 px crops, "
        "ViT width 64 x 4 blocks, K=256, no iBOT, k-NN every 100 steps",
        _CPU_DEMO,
    ),
    TrainPreset(
        "small-images",
        "32-96 px datasets (CIFAR, STL-10) on one GPU: ViT-S/4, "
        "32 / 16 px crops, K=8192, batch 256",
        _SMALL_IMAGES,
    ),
    TrainPreset(
        "gpu",
        "real datasets on GPUs: DINOv2's recipe on a ViT-S/16, DINOv2 pipeline (224 / 96 px), "
        "K=65536, bf16, batch 128 per GPU",
        _GPU,
    ),
    TrainPreset(
        "tiny-test", "seconds-long smoke runs for tests: 16 px, 1 block of width 32", _TINY_TEST
    ),
]

TRAIN_PRESETS: dict[str, TrainPreset] = {p.name: p for p in _PRESETS}


def train_preset_names() -> list[str]:
    return list(TRAIN_PRESETS)


def get_train_preset(name: str) -> TrainPreset:
    """The training preset called ``name``; a near miss gets a suggestion."""
    return lookup_preset(name, TRAIN_PRESETS, "training preset")
