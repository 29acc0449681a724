"""What a run trains with: a dinodiag recipe (preset or config file) or the user's own code.

``data.pipeline`` names a preset, a YAML / JSON / DINOv2 file, or a spec
``path/to/file.py:factory`` / ``package.module:factory`` whose factory is called with
``data.pipeline_kwargs`` (a JSON object). Your own pipeline runs behind
:class:`~dinodiag.probe.OwnPipeline`, the inspector's own wrapper: every call is seeded,
its output split into global / local views and recorded as :class:`ViewRecord` s, so the
run's metrics show what it sampled (crop scales) as the inspector shows it.

    run = resolve_run_pipeline(config, dataset)   # RunPipeline: recipe or own
    run.config                                    # PipelineConfig: the recipe, or the
                                                  # measured shapes of your own pipeline
    run.make()                                    # the per-image callable of the loader
    run.record()                                  # what config.json stores about it

The spec is what travels, never the transform: :class:`OwnTrainingPipeline` pickles as its spec
and rebuilds the transform in each DataLoader worker. Your own pipeline's views are measured
on a few images of the training set (counts, sizes, value range), its ``Normalize`` found in
its object graph (the k-NN images are normalised the same way), and its crop sizes checked
against the ViT (:func:`dinodiag.recipe.crops.check_view_shapes`): a size the patch does not
divide is refused with the patch sizes that would fit, as are views of different sizes within
one group.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import MultiCropSample
from dinodiag.errors import PipelineSpecError
from dinodiag.probe.spec import is_pipeline_spec, names_a_file
from dinodiag.recipe.config import CROP_KNOBS, TrainConfig
from dinodiag.recipe.crops import (
    ViewShapes,
    check_view_shapes,
    own_normalisation,
    resolve_pipeline,
    stand_in_pipeline,
)

MEASURED_IMAGES = 4  # images your own pipeline is called on to measure its views
_WALK_DEPTH = 8  # how deep find_normalize looks into a transform's attributes


@dataclass(frozen=True)
class OwnSpec:
    """The user's pipeline as a run stores it: the spec, its arguments, its file's hash."""

    spec: str  # as given: "examples/seed_pipeline.py:build_two_view_augment"
    kwargs: str = ""  # the factory's keyword arguments as a JSON object ("" = none)
    file: str | None = None  # absolute path of the code's file (None: no file found)
    sha256: str | None = None  # of that file's bytes when the run started

    @classmethod
    def of(cls, spec: str, kwargs: str = "") -> OwnSpec:
        """The spec with its file located and hashed (a module spec: the module's file)."""
        spec, kwargs = spec.strip(), (kwargs or "").strip()
        _parse_kwargs(kwargs, spec)  # bad JSON is refused before anything is imported
        path = spec_file(spec)
        if path is not None and not path.is_file():
            raise PipelineSpecError(f"pipeline spec {spec!r}: file {str(path)!r} does not exist.")
        return cls(spec, kwargs, str(path) if path else None, file_sha256(path) if path else None)

    @property
    def factory(self) -> str:
        return self.spec.rpartition(":")[2]

    @property
    def label(self) -> str:
        """Short name for run lists: ``seed_pipeline.py:build_two_view_augment``."""
        target = self.spec.rpartition(":")[0]
        return f"{Path(target).name if target.endswith('.py') else target}:{self.factory}"

    def loadable(self) -> str:
        """The spec with the absolute file, so a resume from another folder finds it."""
        target = self.spec.rpartition(":")[0]
        if self.file and target.endswith(".py"):
            return f"{self.file}:{self.factory}"
        return self.spec

    def load(self) -> Any:
        """The user's transform behind :class:`~dinodiag.probe.OwnPipeline`."""
        from dinodiag.probe import load_pipeline_spec

        return load_pipeline_spec(self.loadable(), self.kwargs or None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "kwargs": _parse_kwargs(self.kwargs, self.spec),
            "kwargs_json": self.kwargs,
            "file": self.file,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OwnSpec:
        kwargs = str(data.get("kwargs_json") or "")
        return cls(str(data["spec"]), kwargs, data.get("file"), data.get("sha256"))


def _parse_kwargs(kwargs: str, spec: str) -> dict[str, Any]:
    from dinodiag.probe import parse_kwargs

    return parse_kwargs(kwargs or None, spec)


def spec_file(spec: str) -> Path | None:
    """The file holding a spec's code: the ``.py`` path, or an importable module's file."""
    target = spec.strip().rpartition(":")[0]
    if names_a_file(target):
        return Path(target).expanduser().resolve()
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        return None
    origin = getattr(found, "origin", None)
    return Path(origin) if origin and origin not in ("built-in", "frozen") else None


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class OwnTrainingPipeline:
    """``pipeline(image, seed) -> MultiCropSample`` for the user's code; pickles as its spec,
    so a DataLoader worker started with *spawn* imports the code again (with *fork* it keeps
    the parent's). The transform itself may not pickle (lambdas, open files)."""

    def __init__(self, spec: OwnSpec, n_global: int | None = None) -> None:
        self.spec, self.n_global = spec, n_global
        self._pipeline: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "n_global": self.n_global}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec, self.n_global, self._pipeline = state["spec"], state["n_global"], None

    def set_global_count(self, n_global: int) -> None:
        """How many leading views of a list output are global crops (as measured)."""
        self.n_global = n_global
        if self._pipeline is not None:
            self._pipeline.n_global = n_global

    @property
    def pipeline(self) -> Any:
        """The :class:`~dinodiag.probe.OwnPipeline`, imported on first use."""
        if self._pipeline is None:
            self._pipeline = self.spec.load()
            self._pipeline.n_global = self.n_global
        return self._pipeline

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        return self.pipeline(image, seed=seed)


def measure_views(pipeline: Any, dataset: Any, seed: int, name: str) -> ViewShapes:
    """Call ``pipeline`` on the first :data:`MEASURED_IMAGES` images of ``dataset``; the view
    counts and sizes, which must be the same for every image (a batch stacks them)."""
    shapes: tuple[Any, ...] | None = None
    low, high = math.inf, -math.inf
    notes: list[str] = []
    for index in range(min(MEASURED_IMAGES, len(dataset))):
        image, _ = dataset[index]
        sample = pipeline(image, seed=seed + index)
        for note in sample.notes:
            if note not in notes:
                notes.append(note)
        groups = [("global", sample.global_crops), ("local", sample.local_crops)]
        for group, views in groups:
            for i, view in enumerate(views):
                if view.ndim != 3 or view.shape[0] != 3:
                    raise PipelineSpecError(
                        f"pipeline {name}: {group} view {i} has shape {tuple(view.shape)}; the "
                        "model takes (3, H, W) images: convert to RGB before ToTensor."
                    )
                if len({tuple(v.shape) for v in views}) > 1:
                    sizes = ", ".join(f"{v.shape[1]}x{v.shape[2]}" for v in views)
                    raise PipelineSpecError(
                        f"pipeline {name}: its {group} views have different sizes ({sizes}); a "
                        "training batch stacks each group, so give every view of a group one "
                        "size (e.g. RandomResizedCrop(size) in each)."
                    )
        now = (
            len(sample.global_crops),
            tuple(sample.global_crops[0].shape[1:]) if sample.global_crops else None,
            len(sample.local_crops),
            tuple(sample.local_crops[0].shape[1:]) if sample.local_crops else None,
        )
        if shapes is not None and now != shapes:
            raise PipelineSpecError(
                f"pipeline {name}: image 0 gave {_describe(shapes)} but image {index} gave "
                f"{_describe(now)}; a training batch needs the same views from every image."
            )
        shapes = now
        for view in sample.views:
            low, high = min(low, float(view.min())), max(high, float(view.max()))
    if shapes is None or not shapes[0]:
        raise PipelineSpecError(f"pipeline {name} made no global view of the first images.")
    return ViewShapes(
        shapes[0], shapes[1], shapes[2], shapes[3], (low, high), tuple(notes), label=name
    )


def measure_own(own: OwnSpec, dataset: Any, seed: int) -> tuple[ViewShapes, OwnTrainingPipeline]:
    """Your own pipeline loaded and measured on the first images of ``dataset``, with the
    ``Normalize`` found in its transform."""
    pipeline = OwnTrainingPipeline(own)
    shapes = measure_views(pipeline, dataset, seed, own.label)
    found = find_normalize(pipeline.pipeline.transform)
    return dataclasses.replace(shapes, normalize=found), pipeline


def _describe(shapes: tuple[Any, ...]) -> str:
    g, gs, n, ls = shapes
    text = f"{g} global view(s) of {gs[0]}x{gs[1]} px" if gs else f"{g} global views"
    return text + (f" + {n} local of {ls[0]}x{ls[1]} px" if ls else "")


def find_normalize(transform: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """``(mean, std)`` of the first ``Normalize`` (torchvision v1 / v2 or alike) found in a
    transform's attributes, lists and dicts; None when it has none."""
    for obj in _walk(transform, _WALK_DEPTH, set()):
        if type(obj).__name__ == "Normalize":
            mean, std = getattr(obj, "mean", None), getattr(obj, "std", None)
            try:
                values = tuple(map(float, mean)), tuple(map(float, std))  # type: ignore[arg-type]
            except TypeError:  # not a sequence of numbers: some other class of that name
                continue
            if len(values[0]) == len(values[1]) in (1, 3):
                return values
    return None


def _walk(obj: Any, depth: int, seen: set[int]) -> Iterator[Any]:
    if depth < 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool)):
        return
    seen.add(id(obj))
    yield obj
    if isinstance(obj, dict):
        children: Any = list(obj.values())
    elif isinstance(obj, (list, tuple, set)):
        children = list(obj)
    else:
        children = list(getattr(obj, "__dict__", {}).values())
    for child in children:
        yield from _walk(child, depth - 1, seen)


@dataclass(frozen=True)
class RunPipeline:
    """The pipeline of a run: a recipe, or your own pipeline with what was measured."""

    config: PipelineConfig  # the recipe; for your own pipeline its measured shape (counts,
    # sizes, normalisation), which the model, the masks and the k-NN images are built from
    own: OwnSpec | None = None
    shapes: ViewShapes | None = None  # measured views of your own pipeline
    normalisation: str = ""  # where your own pipeline's mean / std come from
    loaded: Any = field(default=None, compare=False, repr=False)  # the OwnTrainingPipeline measured

    @property
    def global_grid_size(self) -> tuple[int, int]:
        """(height, width) of a global crop in pixels."""
        if self.shapes is not None:
            return self.shapes.global_size
        return self.config.global_crops_size, self.config.global_crops_size

    @property
    def label(self) -> str:
        return self.own.label if self.own else self.config.name

    def make(self) -> Callable[..., MultiCropSample]:
        """The per-image callable of the training loader (records every view's parameters)."""
        if self.own is not None:
            assert self.shapes is not None
            pipeline = self.loaded or OwnTrainingPipeline(self.own)
            pipeline.set_global_count(self.shapes.global_number)  # as measured: no guess
            return pipeline
        from dinodiag.augment.pipeline import build_pipeline

        return build_pipeline(self.config, record=True)

    def record(self) -> dict[str, Any] | None:
        """What config.json keeps about your own pipeline (None for a recipe)."""
        if self.own is None or self.shapes is None:
            return None
        s = self.shapes
        return {
            **self.own.to_dict(),
            "label": self.own.label,
            "global_crops": {"number": s.global_number, "size": list(s.global_size)},
            "local_crops": {
                "number": s.local_number,
                "size": list(s.local_size) if s.local_size else None,
            },
            "value_range": [round(v, 4) for v in s.value_range],
            "mean": list(self.config.mean),
            "std": list(self.config.std),
            "normalisation": self.normalisation,
            "notes": list(s.notes),
        }


def with_own_pipeline(config: TrainConfig, spec: str, kwargs: str = "") -> TrainConfig:
    """``config`` training the code ``spec`` (with its JSON ``kwargs``): the preset's crop
    overrides are dropped, since the code makes the crops."""
    changes: dict[str, Any] = {f"data.{knob}": None for knob in CROP_KNOBS}
    return config.with_overrides(
        {**changes, "data.pipeline": spec, "data.pipeline_kwargs": kwargs_json(kwargs)}
    )


def own_spec(config: TrainConfig) -> OwnSpec | None:
    """Your own pipeline ``data.pipeline`` names (None for a preset or a file)."""
    if not is_pipeline_spec(config.data.pipeline):
        return None
    return OwnSpec.of(config.data.pipeline, config.data.pipeline_kwargs)


def resolve_run_pipeline(
    config: TrainConfig, dataset: Any, own: OwnSpec | None = None
) -> RunPipeline:
    """The run's pipeline; your own one is imported, called on the first images of
    ``dataset`` and checked against the model (``own``: a stored spec, on resume).

    Raises :class:`ConfigError` / :class:`PipelineSpecError` with what to change.
    """
    own = own or own_spec(config)
    if own is None:
        return RunPipeline(resolve_pipeline(config))
    shapes, pipeline = measure_own(own, dataset, config.run.seed)
    return measured_pipeline(config, own, shapes, loaded=pipeline)


def measured_pipeline(
    config: TrainConfig, own: OwnSpec, shapes: ViewShapes, loaded: Any = None
) -> RunPipeline:
    """Your own pipeline as ``shapes`` measured it (here, or by the plan): the stand-in recipe
    the model is built from, checked against the ViT, and where its normalisation comes from."""
    stand_in = stand_in_pipeline(shapes, config.model)
    check_view_shapes(shapes, config.model)
    normalisation = own_normalisation(shapes)[2]
    return RunPipeline(stand_in, own, shapes, normalisation, loaded=loaded)


def check_unchanged(saved: OwnSpec, allow_change: bool) -> tuple[OwnSpec, str | None]:
    """On resume: the stored spec, refused when its file is gone or changed (unless
    ``allow_change``); returns the spec to train with and an event message when it changed."""
    if saved.file is None:
        return saved, None
    path = Path(saved.file)
    if not path.is_file():
        raise PipelineSpecError(
            f"cannot resume: the run trains the pipeline {saved.spec}, whose file {path} is "
            "gone. Put the file back to continue the run."
        )
    now = file_sha256(path)
    if now == saved.sha256:
        return saved, None
    change = f"sha256 {str(saved.sha256)[:12]}… when the run started, {now[:12]}… now"
    if not allow_change:
        raise PipelineSpecError(
            f"cannot resume: the pipeline file {path} changed since the run started ({change}), "
            "so the rest of the run would train other crops than its first steps. Restore the "
            "file, or resume with --allow-pipeline-change to go on with the new code (the run "
            "then mixes both)."
        )
    updated = OwnSpec(saved.spec, saved.kwargs, saved.file, now)
    return updated, f"the pipeline file {path} changed ({change}); resumed with the new code"


def kwargs_json(kwargs: dict[str, Any] | str | None) -> str:
    """Keyword arguments as the compact JSON text ``data.pipeline_kwargs`` holds."""
    if kwargs is None or kwargs == "":
        return ""
    if isinstance(kwargs, str):
        return kwargs.strip()
    return json.dumps(kwargs, sort_keys=True)
