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
against the ViT (:func:`fitting_patch_sizes`): a size the patch does not divide is refused
with the patch sizes that would fit, as are views of different sizes within one group.
"""

from __future__ import annotations

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
from dinodiag.errors import ConfigError, PipelineSpecError
from dinodiag.probe.spec import is_pipeline_spec, names_a_file
from dinodiag.recipe.config import ModelConfig, TrainConfig
from dinodiag.recipe.crops import resolve_pipeline

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


@dataclass(frozen=True)
class ViewShapes:
    """Your own pipeline's views as measured on a few images (the same for every image)."""

    global_number: int
    global_size: tuple[int, int]  # (height, width)
    local_number: int
    local_size: tuple[int, int] | None  # None without local crops
    value_range: tuple[float, float]  # min / max of the view values seen
    notes: tuple[str, ...] = ()  # what the wrapper converted or guessed


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
    return ViewShapes(shapes[0], shapes[1], shapes[2], shapes[3], (low, high), tuple(notes))


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


def fitting_patch_sizes(sizes: list[tuple[int, int]], near: int) -> list[int]:
    """Patch sizes that divide every crop side, nearest to ``near`` first (at most 3)."""
    sides = [side for size in sizes for side in size]
    common = math.gcd(*sides)
    divisors = [p for p in range(1, common + 1) if common % p == 0]
    return sorted(divisors, key=lambda p: (abs(p - near), -p))[:3]


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


CROP_KNOBS = {  # data field -> flag: crop overrides of a recipe, which code does not take
    "local_crops": "--local-crops",
    "global_crops_size": "--global-crops-size",
    "local_crops_size": "--local-crops-size",
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
        if config.data.pipeline_kwargs.strip():
            raise ConfigError(
                f"data.pipeline_kwargs is set but data.pipeline = {config.data.pipeline!r} is "
                "not code (file.py:factory): the keyword arguments apply only to a factory."
            )
        return None
    for knob, flag in CROP_KNOBS.items():
        if getattr(config.data, knob) is not None:
            raise ConfigError(
                f"{flag} (data.{knob}) cannot change your own pipeline: its crops come from "
                f"your code ({config.data.pipeline}); pass the sizes to your factory with "
                "--pipeline-kwargs instead, or drop the flag."
            )
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
    pipeline = OwnTrainingPipeline(own)
    shapes = measure_views(pipeline, dataset, config.run.seed, own.label)
    found = find_normalize(pipeline.pipeline.transform)
    if found is not None:
        mean, std = found
        normalisation = f"Normalize(mean={list(mean)}, std={list(std)}) found in the pipeline"
    elif shapes.value_range[0] >= 0.0 and shapes.value_range[1] <= 1.0:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        normalisation = "no Normalize found and views in [0, 1]: k-NN images stay in [0, 1]"
    else:
        mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        normalisation = (
            "no Normalize found but views outside [0, 1]: k-NN images use ImageNet's mean / std"
        )
    if len(mean) == 1:
        mean, std = mean * 3, std * 3
    stand_in = _stand_in(shapes, own.label, config.model, mean, std)
    check_own_crops(shapes, config.model, own.label)
    return RunPipeline(stand_in, own, shapes, normalisation, loaded=pipeline)


def _stand_in(
    shapes: ViewShapes,
    label: str,
    model: ModelConfig,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> PipelineConfig:
    """A :class:`PipelineConfig` with your own pipeline's counts, sizes and normalisation
    (its photometric fields are the defaults and mean nothing: the code makes the views)."""
    height, _width = shapes.global_size
    local = shapes.local_size[0] if shapes.local_size else max(1, height // 2)
    try:
        return PipelineConfig(
            name=f"yours: {label}",
            global_crops_number=shapes.global_number,
            global_crops_size=height,
            local_crops_number=shapes.local_number,
            local_crops_size=local,
            mean=tuple(mean[:3]),  # type: ignore[arg-type]
            std=tuple(std[:3]),  # type: ignore[arg-type]
            patch_size=model.patch_size,
        )
    except ConfigError as exc:
        raise PipelineSpecError(f"pipeline {label}: its views cannot be trained: {exc}") from None


def check_own_crops(shapes: ViewShapes, model: ModelConfig, label: str) -> None:
    """Every crop side must be a multiple of the ViT patch (the positional embeddings then
    interpolate to any grid); DINO needs two views. Refused with the patch sizes that fit."""
    sizes = [shapes.global_size] + ([shapes.local_size] if shapes.local_size else [])
    if model.arch.startswith("vit"):
        p = model.patch_size
        bad = [size for size in sizes if size[0] % p or size[1] % p]
        if bad:
            shown = ", ".join(f"{h}x{w}" for h, w in sizes)
            fits = fitting_patch_sizes(sizes, p)
            raise ConfigError(
                f"pipeline {label} makes crops of {shown} px, which the ViT patch size {p} does "
                f"not divide: use --patch-size {' or '.join(map(str, fits))} (every crop side "
                "must be a multiple of it), or make crops that are multiples of "
                f"{p} px in your code."
            )
    if shapes.global_number + shapes.local_number < 2:
        raise ConfigError(
            f"pipeline {label} makes a single view per image: DINO compares two views of each "
            "image, so return two global crops (or add local crops)."
        )


def adapted_patch_size(config: TrainConfig, dataset: Any) -> tuple[int, str] | None:
    """When no patch size was given: a patch size that fits your own
    pipeline's crops when the preset's does not (the nearest divisor of every side), with a
    sentence saying so; None when nothing needs adapting."""
    own = own_spec(config)
    if own is None or not config.model.arch.startswith("vit"):
        return None
    shapes = measure_views(OwnTrainingPipeline(own), dataset, config.run.seed, own.label)
    sizes = [shapes.global_size] + ([shapes.local_size] if shapes.local_size else [])
    p = config.model.patch_size
    if all(h % p == 0 and w % p == 0 for h, w in sizes):
        return None
    patch = fitting_patch_sizes(sizes, p)[0]
    shown = ", ".join(f"{h}x{w}" for h, w in sizes)
    return patch, (
        f"patch size {patch} instead of {p}: the crops of {own.label} ({shown} px) are not "
        f"multiples of {p} (give --patch-size to choose another)"
    )


def with_adapted_patch(config: TrainConfig, dataset: Any) -> tuple[TrainConfig, str]:
    """``config`` with the patch size your own pipeline's crops need (:func:`adapted_patch_size`)
    and the sentence saying so; ``(config, "")`` when nothing changes. The one rule the
    command line (no ``--patch-size`` given) and the dashboard's plan both apply."""
    found = adapted_patch_size(config, dataset)
    if found is None:
        return config, ""
    return config.with_overrides({"model.patch_size": found[0]}), found[1]


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
