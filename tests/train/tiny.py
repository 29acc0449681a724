"""The tiny model configs the network, EMA, optimiser and loss tests build (milliseconds each)."""

from __future__ import annotations

import dataclasses
from typing import Any

from dinodiag.recipe.config import ModelConfig

# ViT-tiny width (192 / 3 heads), one block, no stochastic depth (deterministic forwards),
# 8 px patches and K = 32 prototypes behind a 32 / 16 wide head.
TINY_MODEL = ModelConfig(
    arch="vit_tiny",
    patch_size=8,
    depth=1,
    drop_path_rate=0.0,
    num_prototypes=32,
    head_hidden_dim=32,
    head_bottleneck_dim=16,
)


def tiny_model(**changes: Any) -> ModelConfig:
    """:data:`TINY_MODEL` with ``changes`` (validated like any ModelConfig)."""
    return dataclasses.replace(TINY_MODEL, **changes)
