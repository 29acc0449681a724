"""Weighted k-NN evaluation of frozen features (Wu et al., 2018; the DINO protocol).

Features are the teacher backbone's CLS token on centre-cropped images, L2-normalised. A
test sample's k nearest training samples (cosine similarity) vote for their class with
weight ``exp(similarity / T)`` (k = 20, T = 0.07). Test samples are processed in chunks of
``chunk_size`` rows (by size, so 3 test images work as well as 50,000).

    >>> train_feats, train_labels = extract_features(teacher_backbone, train_set, device="cpu")
    >>> test_feats, test_labels = extract_features(teacher_backbone, test_set, device="cpu")
    >>> knn_classify(train_feats, train_labels, test_feats, test_labels)["top1"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dinodiag.errors import ConfigError, DataError
from dinodiag.train.eval.knn_noise import gain_noise, knn_noise  # noqa: F401 (re-exported)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def knn_classify(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor | None = None,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int = 256,
) -> dict[str, Any]:
    """Weighted k-NN classification.

    Args:
        train_feats: (n_train, D) features (normalised here).
        train_labels: (n_train,) integer labels >= 0.
        test_feats: (n_test, D) features.
        test_labels: (n_test,) labels, or None to only predict.
        k: neighbours; clamped to n_train when larger.
        temperature: vote weight ``exp(sim / temperature)``.
        num_classes: C; default ``max label + 1`` over train (and test) labels.
        chunk_size: test rows per similarity matrix (memory: chunk_size * n_train floats).

    Returns ``{"top1": %, "top5": %, "predictions": (n_test,) long, "k": k used}``. ``top1``
    and ``top5`` are None without test labels. Top-5 counts a sample as correct when its
    class is among the ``min(5, C)`` classes with the most votes and received a vote (with
    fewer than 5 classes: among all classes that received a vote).
    """
    if k < 1:
        raise ConfigError(f"k-NN k must be >= 1, got {k}.")
    if temperature <= 0:
        raise ConfigError(f"k-NN temperature must be > 0, got {temperature}.")
    if chunk_size < 1:
        raise ConfigError(f"k-NN chunk_size must be >= 1, got {chunk_size}.")
    _check_features(train_feats, train_labels, test_feats, test_labels)
    train_labels = train_labels.long().to(train_feats.device)
    if num_classes is None:
        num_classes = int(train_labels.max()) + 1
        if test_labels is not None and test_labels.numel():
            num_classes = max(num_classes, int(test_labels.max()) + 1)
    k = min(k, train_feats.shape[0])
    top = min(5, num_classes)
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float().to(train.device), dim=1)

    top1_pred, top_hits = [], []
    for start in range(0, test.shape[0], chunk_size):
        sims, idx = (test[start : start + chunk_size] @ train.T).topk(k, dim=1)  # (c, k)
        votes = torch.zeros(sims.shape[0], num_classes, device=train.device)
        votes.scatter_add_(1, train_labels[idx], (sims / temperature).exp())  # (c, C)
        top_votes, top_classes = votes.topk(top, dim=1)
        top1_pred.append(votes.argmax(dim=1))
        top_hits.append(top_classes.masked_fill(top_votes <= 0, -1))
    predictions = torch.cat(top1_pred).cpu() if top1_pred else torch.zeros(0, dtype=torch.long)
    result: dict[str, Any] = {"top1": None, "top5": None, "predictions": predictions, "k": k}
    if test_labels is not None and test.shape[0] > 0:
        labels = test_labels.long().cpu()
        candidates = torch.cat(top_hits).cpu()  # (n_test, top), -1 = no vote
        result["top1"] = 100.0 * float((predictions == labels).float().mean())
        result["top5"] = 100.0 * float((candidates == labels[:, None]).any(dim=1).float().mean())
    return result


def _check_features(
    train_feats: torch.Tensor,
    train_labels: torch.Tensor,
    test_feats: torch.Tensor,
    test_labels: torch.Tensor | None,
) -> None:
    if train_feats.ndim != 2 or test_feats.ndim != 2:
        raise DataError(
            f"k-NN features must be 2-D (n, D); got train {tuple(train_feats.shape)} and "
            f"test {tuple(test_feats.shape)}."
        )
    if train_feats.shape[0] == 0:
        raise DataError(
            "k-NN needs at least one labelled training sample; the train split is empty."
        )
    if train_feats.shape[1] != test_feats.shape[1]:
        raise DataError(
            f"k-NN train features have dimension {train_feats.shape[1]} but test features "
            f"{test_feats.shape[1]}: extract both with the same backbone."
        )
    if train_labels.shape != (train_feats.shape[0],):
        raise DataError(
            f"k-NN got {train_feats.shape[0]} train features but train labels of shape "
            f"{tuple(train_labels.shape)}."
        )
    if test_labels is not None and test_labels.shape != (test_feats.shape[0],):
        raise DataError(
            f"k-NN got {test_feats.shape[0]} test features but test labels of shape "
            f"{tuple(test_labels.shape)}."
        )
    if int(train_labels.min()) < 0 or (
        test_labels is not None and test_labels.numel() and int(test_labels.min()) < 0
    ):
        raise DataError("k-NN labels must be integers >= 0 (unlabelled samples cannot be used).")


def eval_transform(
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    resize_ratio: float = 256 / 224,
) -> Callable[[Any], torch.Tensor]:
    """Evaluation transform: resize the short side to ``image_size * 256 / 224`` (bicubic),
    centre-crop ``image_size``, to float tensor (3, S, S), normalise. PIL or tensor input."""
    from torchvision.transforms import v2  # imported here: torchvision is slow to import

    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(
                int(round(image_size * resize_ratio)),
                interpolation=v2.InterpolationMode.BICUBIC,
                antialias=True,
            ),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def eval_images(
    images: Sequence[Any],
    image_size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    resize_ratio: float = 256 / 224,
) -> torch.Tensor:
    """:func:`eval_transform` of many PIL images at once: ``(N, 3, S, S)`` float32.

    The same resize (short side to ``round(S * ratio)``, bicubic, antialiased, in 8 bits as
    torchvision resizes 8-bit images), centre crop and normalisation, but batched per source
    size and without importing torchvision (2-3 s of a run's set-up on a CPU).
    """
    side = int(round(image_size * resize_ratio))
    mean_t = torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1)
    arrays = [np.array(image.convert("RGB"), dtype=np.uint8) for image in images]  # (H, W, 3)
    out = torch.empty(len(arrays), 3, image_size, image_size)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, array in enumerate(arrays):
        by_size.setdefault(array.shape[:2], []).append(i)
    for (h, w), rows in by_size.items():
        batch = torch.from_numpy(np.stack([arrays[i] for i in rows])).permute(0, 3, 1, 2)
        new_h, new_w = (int(side * h / w), side) if w <= h else (side, int(side * w / h))
        if (new_h, new_w) != (h, w):
            # On uint8 input torch resamples in 8 bits, exactly as torchvision's Resize does.
            batch = F.interpolate(batch, size=(new_h, new_w), mode="bicubic", antialias=True)
        if new_h < image_size or new_w < image_size:
            raise DataError(
                f"k-NN images: image {rows[0]} ({w}x{h} px) resized to {new_w}x{new_h} is "
                f"smaller than the {image_size} px centre crop: resize_ratio = {resize_ratio:g} "
                "must be at least 1 (the short side is resized to the crop size x the ratio)."
            )
        top = int(round((new_h - image_size) / 2.0))
        left = int(round((new_w - image_size) / 2.0))
        crop = batch[:, :, top : top + image_size, left : left + image_size].float() / 255.0
        out[rows] = (crop - mean_t) / std_t
    return out


class _TransformedDataset(Dataset):
    """Wraps a map-style dataset of ``image`` or ``(image, label, ...)`` items with a transform."""

    def __init__(self, dataset: Any, transform: Callable[[Any], torch.Tensor] | None) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        item = self.dataset[index]
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, -1)
        if self.transform is not None:
            image = self.transform(image)
        if not isinstance(image, torch.Tensor):
            raise DataError(
                f"k-NN feature extraction: item {index} is a {type(image).__name__}, not a "
                "tensor, after the transform; pass transform=eval_transform(size)."
            )
        return image, -1 if label is None else int(label)


def _split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        return batch["image"], batch.get("label")
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], labels
    raise DataError(
        f"k-NN feature extraction cannot read a batch of type {type(batch).__name__}: the loader "
        "must yield image tensors (B, 3, H, W), (images, labels) or {'image', 'label'}."
    )


@torch.no_grad()
def extract_features(
    model: nn.Module,
    dataset_or_loader: Any,
    transform: Callable[[Any], torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 128,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Backbone CLS features of a dataset: returns ((n, D) float32 on CPU, (n,) labels or None).

    Args:
        model: a backbone returning ``{"cls": (B, D)}`` (or a (B, D) tensor); it is run in
            eval mode and its mode is restored afterwards.
        dataset_or_loader: a map-style dataset of ``image`` or ``(image, label)`` items (PIL or
            tensor images; ``transform`` is applied to each), or a DataLoader whose batches are
            already tensors (then ``transform`` must be None: put it in the dataset).
        transform: per-image transform for a dataset; typically ``eval_transform(size)``.
        device: where the model runs.
        batch_size: images per forward when given a dataset.
        autocast_dtype: e.g. ``torch.bfloat16`` to run the backbone under autocast.

    Labels are None when no item carries one; items without a label get -1 otherwise.
    """
    if isinstance(dataset_or_loader, DataLoader):
        if transform is not None:
            raise ConfigError(
                "extract_features got a DataLoader and a transform: the loader's batches are "
                "used as they are, so put the transform in the loader's dataset instead."
            )
        batches: Iterable[Any] = dataset_or_loader
    else:
        if not hasattr(dataset_or_loader, "__len__") or not hasattr(
            dataset_or_loader, "__getitem__"
        ):
            raise DataError(
                f"extract_features needs a map-style dataset or a DataLoader, got "
                f"{type(dataset_or_loader).__name__}."
            )
        batches = DataLoader(
            _TransformedDataset(dataset_or_loader, transform), batch_size=batch_size, shuffle=False
        )
    device = torch.device(device)
    was_training = model.training
    model.eval()
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    any_label = False
    try:
        for batch in batches:
            images, batch_labels = _split_batch(batch)
            with torch.autocast(
                device.type,
                dtype=autocast_dtype or torch.bfloat16,
                enabled=autocast_dtype is not None,
            ):
                out = model(images.to(device, non_blocking=True))
            cls = out["cls"] if isinstance(out, dict) else out
            feats.append(cls.float().cpu())
            if batch_labels is None:
                batch_labels = torch.full((images.shape[0],), -1, dtype=torch.long)
            any_label = any_label or bool((batch_labels >= 0).any())
            labels.append(batch_labels.long().cpu())
    finally:
        model.train(was_training)
    if not feats:
        raise DataError("extract_features got an empty dataset: there is nothing to evaluate.")
    return torch.cat(feats), (torch.cat(labels) if any_label else None)
