"""A user's own pipeline, measured instead of assumed.

Modules: ``spec`` (load the factory named by ``file.py:factory`` / ``module:factory`` with
JSON keyword arguments), ``outputs`` (what it returned, as global / local view tensors),
``recorder`` (every torchvision transform and container step that ran inside it, with what
it drew: the patching, over ``recording`` (the events), ``torchvision_patches``,
``container_loops`` and ``resampling``), ``effects`` (what an unknown step did, judged from
the image before and after), ``operations`` (one recorded call as an operation record: kind,
applied, parameters),
``attribution`` (which operations made which view, as view records) and ``pipeline``
(:class:`OwnPipeline`: call it seeded and recorded, split its output, attach the records).
"""

from dinodiag.lazy import lazy_attributes

# Imported on first use: the spec rules (dinodiag.probe.spec) are read without torch.
_LAZY = {
    "OwnPipeline": "dinodiag.probe.pipeline",
    "load_pipeline_spec": "dinodiag.probe.pipeline",
    "load_factory": "dinodiag.probe.spec",
    "parse_kwargs": "dinodiag.probe.spec",
}

__all__ = ["OwnPipeline", "load_factory", "load_pipeline_spec", "parse_kwargs"]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
