"""A user's pipeline behind dinodiag's pipeline interface: :class:`OwnPipeline`.

:func:`load_pipeline_spec` builds the transform from a spec (``path/to/file.py:factory`` or
``package.module:factory`` with JSON keyword arguments, :mod:`dinodiag.probe.spec`).
:class:`OwnPipeline` calls it on a PIL image with every generator seeded, and returns a
:class:`~dinodiag.augment.records.MultiCropSample`: the views split into global / local
groups (:mod:`dinodiag.probe.outputs`) and one record per view with every operation that
made it, in order, applied or not, with what it drew (:mod:`dinodiag.probe.recorder` records
the calls, :mod:`dinodiag.probe.attribution` gives them to the views), so the statistics and
the checks measure the user's code as they measure dinodiag's own pipeline.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image

from dinodiag.augment.records import MultiCropSample
from dinodiag.errors import PipelineSpecError, shown
from dinodiag.probe.attribution import view_records
from dinodiag.probe.outputs import split_views, view_objects
from dinodiag.probe.recorder import record_operations
from dinodiag.probe.spec import USER_CODE_ERRORS, describe_exception, load_factory, parse_kwargs


class OwnPipeline:
    """A user's transform behind the call signature of :class:`~dinodiag.augment.MultiCropPipeline`.

    ``n_global`` says how many leading views of a list output are global crops;
    by default the leading views with the size of the first one, at most 2 (the
    DINO convention), and a note says so.
    """

    def __init__(
        self,
        transform: Callable[[Any], Any],
        spec: str = "<transform>",
        n_global: int | None = None,
    ):
        if not callable(transform):
            raise PipelineSpecError(
                f"pipeline spec {spec!r}: the factory returned a {type(transform).__name__}, not "
                "a callable transform."
            )
        self.transform = transform
        self.spec = spec
        self.n_global = n_global
        self.config = None  # a foreign pipeline has no dinodiag config: checks use measurements

    def __repr__(self) -> str:
        return f"OwnPipeline({self.spec!r})"

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        with _seeded(seed), record_operations() as recording:
            try:
                output = self.transform(image)
            except USER_CODE_ERRORS as exc:
                raise PipelineSpecError(
                    f"pipeline {self.spec!r} raised {describe_exception(exc)} when called on a "
                    f"{image.size[0]}x{image.size[1]} {image.mode} PIL image."
                ) from exc
        notes: list[str] = []
        globals_, locals_ = split_views(output, self.spec, notes, self.n_global)
        raw_globals, raw_locals = view_objects(output, len(globals_))
        views = [
            *(
                ("global", i, v, raw)
                for i, (v, raw) in enumerate(zip(globals_, raw_globals, strict=True))
            ),
            *(
                ("local", i, v, raw)
                for i, (v, raw) in enumerate(zip(locals_, raw_locals, strict=True))
            ),
        ]
        records = view_records(recording, views, image, notes)
        if not any(r.box is not None for r in records):
            notes.append(
                "no torchvision crop (RandomResizedCrop, RandomCrop, CenterCrop) ran inside this "
                "pipeline: crop scales were not measured"
            )
        return MultiCropSample(globals_, locals_, records, image.size, notes)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed torch, random and numpy for one call, restoring the caller's generators after."""
    if seed is None:
        yield
        return
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def load_pipeline_spec(
    spec: str, kwargs: str | dict[str, Any] | None = None, n_global: int | None = None
) -> OwnPipeline:
    """Import ``spec``, call the factory with ``kwargs`` and wrap the transform it returns."""
    factory = load_factory(spec)
    arguments = parse_kwargs(kwargs, spec)
    try:
        transform = factory(**arguments)
    except USER_CODE_ERRORS as exc:
        args = ", ".join(f"{k}={shown(v)}" for k, v in arguments.items())  # <= 80 chars each
        raise PipelineSpecError(
            f"pipeline spec {spec!r}: calling the factory({args}) raised {describe_exception(exc)}"
        ) from exc
    pipeline = OwnPipeline(transform, spec=spec, n_global=n_global)
    # What a worker process rebuilds it from (dinodiag.workers): the spec, never the transform.
    pipeline.rebuild = functools.partial(load_pipeline_spec, spec, arguments, n_global)
    return pipeline
