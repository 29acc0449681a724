"""A user's own pipeline, measured instead of assumed.

Modules: ``spec`` (load the factory named by ``file.py:factory`` / ``module:factory`` with
JSON keyword arguments), ``outputs`` (what it returned, as global / local view tensors),
``recorder`` (every torchvision transform and container step that ran inside it, with what
it drew), ``effects`` (what an unknown step did, judged from the image before and after),
``operations`` (one recorded call as an operation record: kind, applied, parameters),
``attribution`` (which operations made which view, as view records) and ``pipeline``
(:class:`ForeignPipeline`: call it seeded and recorded, split its output, attach the records).
"""

from dinodiag.probe.pipeline import ForeignPipeline, load_pipeline_spec
from dinodiag.probe.spec import load_factory, parse_kwargs

__all__ = ["ForeignPipeline", "load_factory", "load_pipeline_spec", "parse_kwargs"]
