"""dinodiag: see, measure and check the data pipeline of DINOv2 training.

Library entry points (the app, the CLI and the tests call the same functions)::

    import dinodiag
    cfg = dinodiag.load_config("dinov2")          # a preset, a YAML/JSON file or a DINOv2 config
    pipe = dinodiag.build_pipeline(cfg)           # the instrumented multi-crop transform
    sample = pipe(image, seed=0)                  # views + a record of every sampled parameter
    backbone = dinodiag.load_backbone("dinov2_vits14.pth")  # or a DINOv2 / dinodiag run dir
    features = backbone(images)                   # (B, 3, H, W) -> final-norm CLS (B, D)
"""

from typing import Any

from dinodiag.augment.config import PipelineConfig, ViewAugment, load_config_file, save_config
from dinodiag.augment.pipeline import MultiCropPipeline, build_pipeline
from dinodiag.augment.presets import PRESETS, get_preset, load_config
from dinodiag.augment.records import MultiCropSample, ViewRecord, collate_views
from dinodiag.errors import (
    ConfigError,
    DataError,
    DinodiagError,
    PipelineSpecError,
    TrainingError,
)

__all__ = [
    "PRESETS",
    "ConfigError",
    "DataError",
    "DinodiagError",
    "MultiCropPipeline",
    "MultiCropSample",
    "PipelineConfig",
    "PipelineSpecError",
    "TrainingError",
    "ViewAugment",
    "ViewRecord",
    "build_pipeline",
    "collate_views",
    "get_preset",
    "load_backbone",
    "load_config",
    "load_config_file",
    "save_config",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``dinodiag.load_backbone`` is imported on first use: the model loader pulls in the
    training modules, which ``import dinodiag`` (the CLI, the app) does not need."""
    if name == "load_backbone":
        from dinodiag.train.models.load import load_backbone

        return load_backbone
    raise AttributeError(f"module 'dinodiag' has no attribute {name!r}")
