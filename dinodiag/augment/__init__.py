"""The multi-crop augmentation: its config, the reference presets, the records of what was
sampled, the instrumented CPU pipeline, the exact PIL operations and the on-device backend.

Modules: ``config`` (:class:`PipelineConfig` and its YAML / JSON / DINOv2 files),
``presets`` (named references), ``records`` (:class:`ViewRecord`, :class:`MultiCropSample`,
batching), ``pipeline`` (the CPU pipeline), ``photometric`` (torchvision's PIL operations
on numpy arrays, pixel for pixel) and ``gpu/`` (the same recipe on a batch, on any device).
"""

from dinodiag.lazy import lazy_attributes

# name -> module, imported on first use (PEP 562): `import dinodiag.augment.config` (the CLI's
# argument parsing, the recipe) does not pull in torch through the pipeline.
_LAZY = {
    "PipelineConfig": "dinodiag.augment.config",
    "ViewAugment": "dinodiag.augment.config",
    "MultiCropPipeline": "dinodiag.augment.pipeline",
    "build_pipeline": "dinodiag.augment.pipeline",
    "MultiCropSample": "dinodiag.augment.records",
    "ViewRecord": "dinodiag.augment.records",
    "collate_views": "dinodiag.augment.records",
}

__all__ = [
    "MultiCropPipeline",
    "MultiCropSample",
    "PipelineConfig",
    "ViewAugment",
    "ViewRecord",
    "build_pipeline",
    "collate_views",
]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
