"""dinodiag: see, measure and check the data pipeline of DINOv2 training.

Library entry points (the app, the CLI and the tests call the same functions)::

    import dinodiag
    cfg = dinodiag.load_config("dinov2")          # a preset, a YAML/JSON file or a DINOv2 config
    pipe = dinodiag.build_pipeline(cfg)           # the instrumented multi-crop transform
    sample = pipe(image, seed=0)                  # views + a record of every sampled parameter
    backbone = dinodiag.load_backbone("dinov2_vits14.pth")  # or a DINOv2 / dinodiag run dir
    features = backbone(images)                   # (B, 3, H, W) -> final-norm CLS (B, D)
"""

from dinodiag.lazy import lazy_attributes

# name -> module: imported on first use (PEP 562), so that `python -m dinodiag --help` and a
# usage error answer before torch is imported.
_LAZY = {
    "PipelineConfig": "dinodiag.augment.config",
    "ViewAugment": "dinodiag.augment.config",
    "load_config_file": "dinodiag.augment.config",
    "save_config": "dinodiag.augment.config",
    "MultiCropPipeline": "dinodiag.augment.pipeline",
    "build_pipeline": "dinodiag.augment.pipeline",
    "PRESETS": "dinodiag.augment.presets",
    "get_preset": "dinodiag.augment.presets",
    "load_config": "dinodiag.augment.presets",
    "MultiCropSample": "dinodiag.augment.records",
    "ViewRecord": "dinodiag.augment.records",
    "collate_views": "dinodiag.augment.records",
    "ConfigError": "dinodiag.errors",
    "DataError": "dinodiag.errors",
    "DinodiagError": "dinodiag.errors",
    "PipelineSpecError": "dinodiag.errors",
    "TrainingError": "dinodiag.errors",
    "load_backbone": "dinodiag.train.models.load",
}

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

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
