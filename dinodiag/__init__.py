"""dinodiag: see, measure and check the data pipeline of DINOv2 training.

Library entry points (the app, the CLI and the tests call the same functions)::

    import dinodiag
    cfg = dinodiag.load_config("dinov2")          # a preset, a YAML/JSON file or a DINOv2 config
    pipe = dinodiag.build_pipeline(cfg)           # the instrumented multi-crop transform
    sample = pipe(image, seed=0)                  # views + a record of every sampled parameter
"""

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
    "load_config",
    "load_config_file",
    "save_config",
]

__version__ = "0.1.0"
