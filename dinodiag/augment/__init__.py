"""The multi-crop augmentation: its config, the reference presets, the records of what was
sampled, the instrumented CPU pipeline, the exact PIL operations and the on-device backend.

Modules: ``config`` (:class:`PipelineConfig` and its YAML / JSON / DINOv2 files),
``presets`` (named references), ``records`` (:class:`ViewRecord`, :class:`MultiCropSample`,
batching), ``pipeline`` (the CPU pipeline), ``photometric`` (torchvision's PIL operations
on numpy arrays, pixel for pixel) and ``gpu/`` (the same recipe on a batch, on any device).
"""

from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.pipeline import MultiCropPipeline, build_pipeline
from dinodiag.augment.records import MultiCropSample, ViewRecord, collate_views

__all__ = [
    "MultiCropPipeline",
    "MultiCropSample",
    "PipelineConfig",
    "ViewAugment",
    "ViewRecord",
    "build_pipeline",
    "collate_views",
]
