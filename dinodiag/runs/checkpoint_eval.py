"""What a checkpoint has learned, on images of the user's choice: weighted k-NN accuracy
(the DINO protocol, :mod:`dinodiag.train.eval.knn`), the spread and effective rank of its
features (:mod:`dinodiag.train.diagnostics`), and for a ViT the views of "look inside"
(:mod:`dinodiag.runs.look_inside`): CLS attention per head and a PCA of the patch features.

    data = open_eval_data("sample")                    # train split = bank, val split = test
    backbone = load_backbone("/out/dinov2_run")        # the latest teacher checkpoint
    result = evaluate(backbone, data)                  # CheckpointEvaluation
    curve = knn_frame(evaluate_checkpoints(run.checkpoints, data))   # k-NN per checkpoint
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Subset

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import DataError
from dinodiag.recipe.config import TrainConfig
from dinodiag.runs.look_inside import Inspection, Teacher, inspect_image
from dinodiag.train.diagnostics import effective_rank, feature_std, mean_pairwise_cosine
from dinodiag.train.eval.evaluator import subset_indices
from dinodiag.train.eval.knn import eval_transform, extract_features, knn_classify
from dinodiag.train.eval.knn_noise import knn_interval, min_test_images
from dinodiag.train.models.load import CheckpointFile, LoadedBackbone, load_backbone


@dataclass
class EvalData:
    """The images a checkpoint is evaluated on: a memory bank and a labelled test set."""

    name: str  # the dataset spec, for captions
    bank: Any  # the train split (a map-style dataset of (image, label))
    test: Any | None  # the held-out split; None when there is none
    skip_reason: str  # why k-NN cannot run ("" when it can)


def open_eval_data(
    spec: str = "sample", *, bank_max: int = 5000, test_max: int = 1000, seed: int = 0
) -> EvalData:
    """The train split of ``spec`` as the k-NN memory bank and its held-out ``val`` split as
    test images (fixed random subsets of at most ``bank_max`` / ``test_max``). :class:`DataError`
    when the dataset cannot be opened; an unlabelled one evaluates spread and rank only."""
    from dinodiag.data import open_dataset

    bank = open_dataset(spec, split="train")
    if len(bank) == 0:
        raise DataError(f"the train split of {spec} has no images: nothing to evaluate on.")
    reason, test = "", None
    try:
        test = open_dataset(spec, split="val")
    except DataError as exc:
        reason = f"k-NN needs a held-out split: {exc}"
    if test is not None and not getattr(test, "has_labels", True):
        reason = (
            f"{spec} has no labels (a flat folder?): put images in one sub-folder per class "
            "for k-NN accuracy; spread and effective rank are shown without it."
        )
    elif test is not None and len(test) == 0:
        reason = f"the held-out split of {spec} is empty: k-NN needs at least one image there."
    bank = Subset(bank, subset_indices(len(bank), bank_max, seed))
    if test is not None and len(test):
        test = Subset(test, subset_indices(len(test), test_max, seed + 1))
    return EvalData(spec, bank, test if not reason else None, reason)


@dataclass
class CheckpointEvaluation:
    """What one checkpoint's features show on an :class:`EvalData`."""

    label: str  # "teacher checkpoint at iteration 12500"
    description: str  # the architecture in words (LoadedBackbone.description)
    iteration: int | None
    path: str
    knn_top1: float | None  # % (None without labels or a held-out split)
    knn_top5: float | None
    knn_k: int | None
    feature_std: float  # mean per-dim std of the L2-normalised features (-> 0: collapse)
    effective_rank: float  # RankMe of the features (-> 1: collapse), at most min(n, D)
    mean_cosine: float  # mean pairwise cosine (-> 1: collapse)
    images: int  # feature vectors the spread was measured on
    image_size: int  # evaluation side (px)
    seconds: float
    note: str  # why k-NN is missing, or ""
    test_images: int = 0  # held-out images the k-NN was measured on
    bank_images: int = 0  # memory-bank images
    knn_low: float | None = None  # 95% Wilson interval of top-1 (points)
    knn_high: float | None = None
    collapse: str = ""  # "" | "complete" | "dimensional" (see feature_collapse)
    knn_status: str = ""  # "ok" | "too_few" | "meaningless" | "none"

    @property
    def knn_meaningful(self) -> bool:
        """A k-NN figure to read as accuracy: features not collapsed, enough test images."""
        return self.knn_status == "ok"

    def row(self) -> dict[str, Any]:
        """A metrics row (``kind`` "eval", ``step``, ``knn_test``) that the k-NN panel draws
        with its noise band; on collapsed features the k-NN is left out (meaningless, not an
        accuracy)."""
        values = asdict(self)
        if self.knn_status == "meaningless":
            values.update(knn_top1=None, knn_top5=None)
        return {"kind": "eval", "step": self.iteration, "knn_test": self.test_images, **values}


COMPLETE_STD = 1e-3  # mean per-dim std of unit features below this: every image the same
COMPLETE_RANK = 1.5  # effective rank at most this: one direction
DIMENSIONAL_RANK = 4.0  # effective rank at most this: a handful of directions


def feature_collapse(std: float, rank: float, cosine: float, images: int) -> str:
    """``complete`` when every image maps to (nearly) one feature (std below 1e-3 or effective
    rank <= 1.5), ``dimensional`` when the features span only a few directions (effective rank
    <= 4 on at least 16 images), else "". A random-weights ViT is neither (its rank is tens)."""
    if std < COMPLETE_STD or rank <= COMPLETE_RANK or cosine > 0.9999:
        return "complete"
    if images >= 16 and rank <= DIMENSIONAL_RANK:
        return "dimensional"
    return ""


@torch.no_grad()
def evaluate(
    backbone: LoadedBackbone,
    data: EvalData,
    *,
    k: int = 20,
    temperature: float = 0.07,
    image_size: int | None = None,
    batch_size: int = 32,
    label: str | None = None,
) -> CheckpointEvaluation:
    """k-NN top-1 / top-5 (bank = train split, test = val split), feature spread, effective
    rank and mean cosine of ``backbone`` on centre crops of ``image_size`` px (default: the size
    it trained at), normalised as it was trained."""
    start = time.monotonic()
    size = image_size or backbone.image_size
    transform = eval_transform(size, backbone.mean, backbone.std)
    bank_x, bank_y = extract_features(backbone, data.bank, transform, batch_size=batch_size)
    feats, top1, top5, used_k, note = bank_x, None, None, None, data.skip_reason
    if data.test is not None:
        test_x, test_y = extract_features(backbone, data.test, transform, batch_size=batch_size)
        feats = torch.cat([bank_x, test_x])
        if bank_y is None or test_y is None:
            note = f"{data.name} carries no labels: k-NN accuracy needs one sub-folder per class."
        else:
            result = knn_classify(bank_x, bank_y, test_x, test_y, k=k, temperature=temperature)
            top1, top5, used_k = result["top1"], result["top5"], int(result["k"])
    std, rank, cosine = feature_std(feats), effective_rank(feats), mean_pairwise_cosine(feats)
    n_test = len(data.test) if data.test is not None else 0
    collapse = feature_collapse(std, rank, cosine, int(feats.shape[0]))
    interval = knn_interval(top1, n_test) if top1 is not None else None
    status = "none" if top1 is None else "meaningless" if collapse == "complete" else "ok"
    if status == "ok" and n_test < min_test_images():
        status = "too_few"
    return CheckpointEvaluation(
        test_images=n_test,
        bank_images=len(data.bank),
        knn_low=interval[0] if interval else None,
        knn_high=interval[1] if interval else None,
        collapse=collapse,
        knn_status=status,
        label=label or _label(backbone),
        description=backbone.description,
        iteration=backbone.iteration,
        path=str(backbone.source),
        knn_top1=top1,
        knn_top5=top5,
        knn_k=used_k,
        feature_std=std,
        effective_rank=rank,
        mean_cosine=cosine,
        images=int(feats.shape[0]),
        image_size=size,
        seconds=round(time.monotonic() - start, 2),
        note=note,
    )


def _label(backbone: LoadedBackbone) -> str:
    at = f" at iteration {backbone.iteration}" if backbone.iteration is not None else ""
    return f"{backbone.kind} checkpoint{at}"


def evaluate_checkpoints(
    checkpoints: list[CheckpointFile],
    data: EvalData,
    *,
    progress: Callable[[int, int, CheckpointFile], None] | None = None,
    **options: Any,
) -> list[CheckpointEvaluation]:
    """:func:`evaluate` on each checkpoint, in the order given (oldest first for a curve);
    ``options`` go to :func:`evaluate`; ``progress(i, n, checkpoint)`` is called before each."""
    results = []
    for i, checkpoint in enumerate(checkpoints):
        if progress is not None:
            progress(i, len(checkpoints), checkpoint)
        backbone = load_backbone(checkpoint.path)
        # a name without the iteration (checkpoint.pt) gets the one the file holds
        label = checkpoint.label if checkpoint.iteration is not None else None
        results.append(evaluate(backbone, data, label=label, **options))
    return results


def knn_frame(evaluations: list[CheckpointEvaluation]) -> pd.DataFrame:
    """One ``eval`` row per evaluation (``step`` = the checkpoint's iteration, ``knn_top1`` ...),
    the rows the k-NN panel draws as a curve over checkpoints."""
    return pd.DataFrame([e.row() for e in evaluations])


def inspect(
    backbone: LoadedBackbone,
    image: Image.Image,
    *,
    input_size: int | None = None,
    threshold: float | None = None,
) -> Inspection:
    """The "look inside" views of a ViT checkpoint on one image (CLS attention per head, patch
    PCA), through :func:`dinodiag.runs.look_inside.inspect_image`."""
    vit = backbone.vit
    size = max(vit.patch_size, backbone.image_size // vit.patch_size * vit.patch_size)
    # inspect_image reads the backbone, the training size and the normalisation only.
    pipeline = PipelineConfig(
        name=backbone.kind,
        global_crops_size=size,
        local_crops_number=0,
        patch_size=vit.patch_size,
        mean=backbone.mean,  # type: ignore[arg-type]
        std=backbone.std,  # type: ignore[arg-type]
    )
    teacher = Teacher(vit, TrainConfig(), pipeline, backbone.iteration or 0, backbone.source)
    return inspect_image(teacher, image, input_size=input_size, threshold=threshold)
