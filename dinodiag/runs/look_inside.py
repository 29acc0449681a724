"""Look inside a trained teacher: CLS attention maps and a PCA of patch features, on a CPU.

    teacher = load_teacher("runs/demo")                 # from checkpoint.pt, eval mode, CPU
    result = inspect_image(teacher, pil_image)          # Inspection
    result.mean_overlay, result.head_overlays, result.pca_image

The attention maps are the last block's CLS-token attention over the patch grid
(:func:`dinodiag.train.models.vit.cls_attention_maps`), min-max scaled per map and upsampled to the
image. The PCA projects the patch features of the image on their first three principal
components (each min-max scaled to a colour channel); with a foreground threshold the
patches whose first component is below it are painted black and the colours come from a
PCA of the remaining (foreground) patches, as in the DINOv2 paper's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image

from dinodiag.augment.config import PipelineConfig, config_from_dict
from dinodiag.errors import TrainingError
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.rundir import CHECKPOINT_FILE, read_config
from dinodiag.train.builders import build_student
from dinodiag.train.checkpoint import CHECKPOINT_VERSION
from dinodiag.train.models.load import read_state_file
from dinodiag.train.models.vit import VisionTransformer, cls_attention_maps


@dataclass
class Teacher:
    """The EMA teacher's backbone of a run, ready for inference on the CPU."""

    backbone: VisionTransformer  # eval mode, no gradients
    config: TrainConfig  # the run's training config
    pipeline: PipelineConfig  # the crops it trained on (mean / std, global crop size)
    step: int  # the checkpoint's step
    run_dir: Path

    @property
    def train_size(self) -> int:
        """The global crop side it was trained at (px)."""
        return self.pipeline.global_crops_size


def load_teacher(run_dir: str | Path) -> Teacher:
    """The teacher backbone from ``run_dir/checkpoint.pt`` (CPU). :class:`TrainingError` when
    there is no checkpoint or the run trained a ResNet (no attention, no patches)."""
    run_dir = Path(run_dir)
    state = _read_checkpoint(run_dir)
    data = state.get("config") or read_config(run_dir) or {}
    config = TrainConfig.from_dict(
        {k: v for k, v in data.items() if k in ("name", "model", "optim", "data", "run")}
    )
    if not config.model.arch.startswith("vit"):
        raise TrainingError(
            f"run {run_dir.name} trained a {config.model.arch}: attention maps and patch "
            "features need a ViT (vit_tiny / vit_small / vit_base)."
        )
    saved = (read_config(run_dir) or {}).get("pipeline")
    pipeline = config_from_dict(saved) if saved else resolve_pipeline(config)
    network = build_student(config.model, pipeline)
    try:
        network.load_state_dict(state["teacher"])
    except (RuntimeError, KeyError) as exc:
        raise TrainingError(
            f"the teacher weights of {run_dir / 'checkpoint.pt'} do not fit the model of its "
            f"config ({str(exc).splitlines()[0][:200]})."
        ) from None
    backbone = network.backbone
    assert isinstance(backbone, VisionTransformer)
    backbone.eval().requires_grad_(False)
    return Teacher(backbone, config, pipeline, int(state["step"]), run_dir)


LOOK_KEYS = ("version", "step", "teacher")  # what Look inside reads of a checkpoint


def _read_checkpoint(run_dir: Path) -> dict[str, Any]:
    """``run_dir/checkpoint.pt`` (weights only, CPU), with errors worded for looking inside a
    run, not for resuming it."""
    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        raise TrainingError(
            f"run {run_dir.name} has no {CHECKPOINT_FILE} yet, so there is no teacher to look "
            "inside: a run writes it every run.checkpoint_every steps and when it ends; come "
            "back after its first checkpoint, or pick another run."
        )
    state = read_state_file(path)  # refuses damaged files and files that need unpickling
    missing = [k for k in LOOK_KEYS if k not in state] if isinstance(state, dict) else LOOK_KEYS
    if missing:
        raise TrainingError(
            f"{path} is not a checkpoint of a dinodiag run (missing {', '.join(missing)}): Look "
            "inside reads the teacher a dinodiag training run saves."
        )
    if state["version"] != CHECKPOINT_VERSION:
        raise TrainingError(
            f"{path} has checkpoint version {state['version']}; this dinodiag reads version "
            f"{CHECKPOINT_VERSION}: look inside it with the dinodiag version that wrote it."
        )
    return state


def square_image(image: Image.Image, size: int) -> Image.Image:
    """The centred square of ``image``, resized to ``size`` x ``size`` (bicubic)."""
    image = image.convert("RGB")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def to_tensor(image: Image.Image, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """RGB PIL image -> normalised (1, 3, H, W) float tensor."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return ((tensor - mean_t) / std_t).unsqueeze(0)


def minmax(values: np.ndarray, axis: tuple[int, ...] | None = None) -> np.ndarray:
    """Scale to [0, 1] (over ``axis``); a constant input gives zeros."""
    lo = values.min(axis=axis, keepdims=True)
    span = values.max(axis=axis, keepdims=True) - lo
    return np.where(span > 0, (values - lo) / np.where(span > 0, span, 1), 0.0)


def upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """(h, w) map -> (size, size), bilinear."""
    tensor = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=(size, size), mode="bilinear", align_corners=False)[
        0, 0
    ].numpy()


def heatmap_overlay(
    image: Image.Image, grid: np.ndarray, alpha: float = 0.55, cmap: str = "inferno"
) -> Image.Image:
    """``image`` with a colour map of ``grid`` (h, w; values in [0, 1]) blended over it."""
    side = image.size[0]
    heat = colormaps[cmap](np.clip(upsample(grid, side), 0, 1))[..., :3]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    blend = (1 - alpha) * base + alpha * heat
    return Image.fromarray((blend * 255).round().astype(np.uint8))


def pca_rgb(
    features: np.ndarray,
    grid: tuple[int, int],
    threshold: float | None = None,
    orient: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Patch features (N, D) -> (h, w, 3) colours in [0, 1] and the (h, w) foreground mask.

    Colours are the first three principal components, each min-max scaled. The sign of the
    first component is chosen so that it grows with ``orient`` (N,) (e.g. the CLS attention:
    the attended patches are the foreground), or without it so that fewer than half of the
    patches are high (the object is smaller than the background). With ``threshold`` (in
    [0, 1]) the patches whose min-max scaled first component is below it are background
    (black) and the colours come from a PCA of the foreground patches.
    """
    h, w = grid
    feats = np.asarray(features, dtype=np.float64)
    if feats.shape[0] != h * w:
        raise ValueError(f"{feats.shape[0]} patch features do not fill a {h}x{w} grid.")
    components = _pca(feats, 3)
    first = components[:, 0]
    if orient is not None and np.std(orient) > 0 and np.std(first) > 0:
        flip = np.corrcoef(first, np.asarray(orient, dtype=np.float64).ravel())[0, 1] < 0
    else:
        flip = (minmax(first) > 0.5).mean() > 0.5
    if flip:
        components[:, 0] = -first
    foreground = np.ones(h * w, dtype=bool)
    if threshold is not None:
        foreground = minmax(components[:, 0]) >= threshold
        if foreground.sum() >= 3:
            components = np.zeros_like(components)
            components[foreground] = _pca(feats[foreground], 3)
    colours = np.zeros((h * w, 3))
    colours[foreground] = minmax(components[foreground], axis=(0,))
    return colours.reshape(h, w, 3), foreground.reshape(h, w)


def _pca(feats: np.ndarray, k: int) -> np.ndarray:
    """(N, D) -> (N, k) projections on the first k principal components (zeros past rank)."""
    centred = feats - feats.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = np.zeros((feats.shape[0], k))
    n = min(k, vt.shape[0])
    out[:, :n] = centred @ vt[:n].T
    return out


@dataclass
class Inspection:
    """What the teacher sees in one image."""

    image: Image.Image  # the square input as the model saw it, at display size
    attention: np.ndarray  # (heads, h, w) CLS attention, each map min-max scaled
    head_overlays: list[Image.Image]  # one overlay per head
    mean_overlay: Image.Image  # overlay of the head-averaged attention
    pca_image: Image.Image  # the patch-feature PCA as RGB, upsampled (nearest) to display size
    foreground: np.ndarray  # (h, w) bool: the patches kept by the threshold (all without one)
    input_size: int  # side of the model input (px)


@torch.no_grad()
def inspect_image(
    teacher: Teacher,
    image: Image.Image,
    *,
    input_size: int | None = None,
    display_size: int = 224,
    threshold: float | None = None,
) -> Inspection:
    """Attention maps and feature PCA of ``teacher`` for one image.

    ``input_size`` (default: the training crop size) is rounded down to a multiple of the
    patch size; larger inputs give finer maps (positions are interpolated).
    """
    patch = teacher.backbone.patch_size
    size = input_size or teacher.train_size
    size = max(patch, size // patch * patch)
    square = square_image(image, size)
    x = to_tensor(square, teacher.pipeline.mean, teacher.pipeline.std)  # (1, 3, S, S)
    maps = cls_attention_maps(teacher.backbone, x)[0].float().numpy()  # (heads, h, w)
    maps = minmax(maps, axis=(1, 2))
    patches = teacher.backbone(x)["patch"][0].float().numpy()  # (h * w, D)
    grid = (size // patch, size // patch)
    colours, foreground = pca_rgb(patches, grid, threshold, orient=maps.mean(axis=0).ravel())
    shown = square_image(image, display_size)
    pca = Image.fromarray((colours * 255).round().astype(np.uint8)).resize(
        (display_size, display_size), Image.NEAREST
    )
    return Inspection(
        image=shown,
        attention=maps,
        head_overlays=[heatmap_overlay(shown, m) for m in maps],
        mean_overlay=heatmap_overlay(shown, minmax(maps.mean(axis=0))),
        pca_image=pca,
        foreground=foreground,
        input_size=size,
    )
