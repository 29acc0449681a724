"""Bring your own pipeline: measure a user's augmentation code instead of assuming it.

A spec names a factory: ``path/to/file.py:factory`` or ``package.module:factory``.
The factory is called with keyword arguments (JSON) and returns the transform.
:class:`ForeignPipeline` calls it on a PIL image, normalises what comes back into
:class:`~dinodiag.augment.pipeline.MultiCropSample` groups, and records the parameters
that every torchvision ``RandomResizedCrop`` (transforms v1 and v2) inside it
actually sampled, with that transform's configured size and scale.

Accepted outputs: a dict with ``global_crops`` / ``local_crops`` (DINOv2), a
list / tuple of views (lightly, the seed's ``build_two_view_augment``), a single
tensor. PIL views are converted with ``ToTensor`` and flagged in ``notes``.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image

from dinodiag.augment.records import MultiCropSample, ViewRecord
from dinodiag.errors import PipelineSpecError
from dinodiag.probe.recorder import record_random_resized_crops
from dinodiag.probe.spec import describe_exception, load_factory, parse_kwargs

# --------------------------------------------------------------------------- the wrapper


class ForeignPipeline:
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
        return f"ForeignPipeline({self.spec!r})"

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        with _seeded(seed), record_random_resized_crops() as crops:
            try:
                output = self.transform(image)
            except Exception as exc:
                raise PipelineSpecError(
                    f"pipeline {self.spec!r} raised {describe_exception(exc)} when called on a "
                    f"{image.size[0]}x{image.size[1]} {image.mode} PIL image."
                ) from exc
        notes: list[str] = []
        globals_, locals_ = self._groups(output, notes)
        records = _assign_records(crops, globals_, locals_, image.size)
        if not crops:
            notes.append(
                "no torchvision RandomResizedCrop ran inside this pipeline: crop scales were not "
                "measured"
            )
        return MultiCropSample(globals_, locals_, records, image.size, notes)

    def _groups(
        self, output: Any, notes: list[str]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if isinstance(output, dict):
            if "global_crops" not in output:
                raise PipelineSpecError(
                    f"pipeline {self.spec!r} returned a dict without 'global_crops' (keys: "
                    f"{sorted(output)}); "
                    "return {'global_crops': [...], 'local_crops': [...]} or a list of views."
                )
            globals_ = self._tensors(output["global_crops"], "global_crops", notes)
            locals_ = self._tensors(output.get("local_crops", []), "local_crops", notes)
            return globals_, locals_
        if isinstance(output, (list, tuple)):
            views = self._tensors(output, "views", notes)
            if self.n_global is not None:
                n_global = self.n_global
            else:
                first = tuple(views[0].shape) if views else None
                n_global = 0
                while n_global < min(2, len(views)) and tuple(views[n_global].shape) == first:
                    n_global += 1
                if len(views) > n_global:
                    notes.append(f"list output: took the first {n_global} views as global crops")
            return views[:n_global], views[n_global:]
        return self._tensors([output], "output", notes), []

    def _tensors(self, views: Any, what: str, notes: list[str]) -> list[torch.Tensor]:
        if isinstance(views, (torch.Tensor, Image.Image)):
            views = [views]
        if not isinstance(views, (list, tuple)):
            raise PipelineSpecError(
                f"pipeline {self.spec!r} returned {what} of type {type(views).__name__}; "
                "expected a list of tensors or PIL images."
            )
        out: list[torch.Tensor] = []
        for i, view in enumerate(views):
            if isinstance(view, Image.Image):
                if not any("PIL images" in n for n in notes):
                    notes.append(
                        "the pipeline returns PIL images, not tensors: dinodiag converted them "
                        "with "
                        "ToTensor (values in [0, 1]); add ToTensor + Normalize to your pipeline"
                    )
                array = np.array(view.convert("RGB"), dtype=np.float32) / 255.0
                out.append(torch.from_numpy(array).permute(2, 0, 1))
            elif isinstance(view, torch.Tensor):
                out.append(view.detach().cpu())
            elif isinstance(view, np.ndarray):
                out.append(torch.from_numpy(np.asarray(view)))
                notes.append(f"{what}[{i}] is a numpy array; DINO training expects torch tensors")
            else:
                raise PipelineSpecError(
                    f"pipeline {self.spec!r} returned {what}[{i}] of type {type(view).__name__}; "
                    "expected a torch tensor or a PIL image."
                )
        return out


def _assign_records(
    crops: list[dict[str, Any]],
    globals_: list[torch.Tensor],
    locals_: list[torch.Tensor],
    source_size: tuple[int, int],
) -> list[ViewRecord]:
    """Turn recorded crops into ViewRecords, matched to views in output order."""
    width, height = source_size
    n_views = len(globals_) + len(locals_)
    global_size = tuple(globals_[0].shape[-2:]) if globals_ else None
    records: list[ViewRecord] = []
    counters = {"global": 0, "local": 0}
    for position, crop in enumerate(crops):
        if len(crops) == n_views:
            group = "global" if position < len(globals_) else "local"
        else:
            group = "global" if crop["configured_size"] == global_size else "local"
        views = globals_ if group == "global" else locals_
        index = counters[group]
        counters[group] += 1
        left, top, w, h = crop["box"]
        src_w, src_h = crop["source_size"]
        out_size = tuple(views[index].shape[-2:]) if index < len(views) else crop["configured_size"]
        records.append(
            ViewRecord(
                group=group,
                index=index,
                source_size=(src_w, src_h),
                out_size=(int(out_size[0]), int(out_size[1])),
                box=crop["box"],
                scale=(w * h) / (src_w * src_h),
                ratio=w / h,
                fallback=crop["fallback"],
                configured_size=crop["configured_size"],
                configured_scale=crop["configured_scale"],
                configured_ratio=crop["configured_ratio"],
                recorded_by=crop["recorded_by"],
            )
        )
        if (src_w, src_h) != (width, height):
            records[-1].recorded_by += " (on a resized input)"
    return records


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
) -> ForeignPipeline:
    """Import ``spec``, call the factory with ``kwargs`` and wrap the transform it returns."""
    factory = load_factory(spec)
    arguments = parse_kwargs(kwargs, spec)
    try:
        transform = factory(**arguments)
    except Exception as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        raise PipelineSpecError(
            f"pipeline spec {spec!r}: calling the factory({shown}) raised {describe_exception(exc)}"
        ) from exc
    return ForeignPipeline(transform, spec=spec, n_global=n_global)
