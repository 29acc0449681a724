"""k-NN evaluation during training: teacher backbone CLS features, weighted k-NN (knn.py).

The memory bank is a fixed random subset of the training split, the test set a fixed random
subset of the held-out split, both centre-cropped at the global crop size and normalised like
the training crops. Small sets are transformed once, batched (:func:`eval_images`, no
torchvision import), and kept as tensors (32 px: 12 KiB an image), so an evaluation is only the
forward passes.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from dinodiag.augment.config import PipelineConfig
from dinodiag.errors import DataError
from dinodiag.recipe.config import DataConfig
from dinodiag.train.eval.knn import eval_images, eval_transform, extract_features, knn_classify

#: Eval images are kept in memory as tensors when they take less than this.
CACHE_LIMIT_BYTES = 1 << 30


class _EvalItems(Dataset):
    """``(transformed image, label)`` for chosen indices of a dataset: centre crops of side
    ``size`` normalised with ``mean`` / ``std`` (:func:`eval_transform`, built on first use)."""

    def __init__(
        self,
        dataset: Any,
        indices: list[int],
        size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
    ) -> None:
        self.dataset, self.indices = dataset, indices
        self.size, self.mean, self.std = size, mean, std
        self._transform: Any = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self._transform is None:
            self._transform = eval_transform(self.size, self.mean, self.std)
        image, label = self.dataset[self.indices[i]]
        return self._transform(image), int(label)

    def as_tensors(self) -> TensorDataset:
        """All the items transformed at once (:func:`eval_images`): ``(N, 3, S, S)`` + labels."""
        pairs = [self.dataset[i] for i in self.indices]
        images = eval_images([image for image, _ in pairs], self.size, self.mean, self.std)
        labels = torch.tensor([int(label) for _, label in pairs], dtype=torch.long)
        return TensorDataset(images, labels)


def subset_indices(n: int, limit: int, seed: int) -> list[int]:
    """A fixed random subset of ``range(n)`` of size ``min(n, limit)``, sorted."""
    if n <= limit:
        return list(range(n))
    generator = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=generator)[:limit].tolist())


class KnnEvaluator:
    """Weighted k-NN top-1 / top-5 of a backbone on (bank, test) image sets."""

    def __init__(
        self,
        bank: Dataset,
        test: Dataset,
        *,
        k: int,
        temperature: float,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        workers: int = 0,
        batch_size: int = 256,
    ) -> None:
        self.sets = [_maybe_cache(bank), _maybe_cache(test)]
        self.k, self.temperature = k, temperature
        self.device, self.autocast_dtype = device, autocast_dtype
        self.workers, self.batch_size = workers, batch_size
        self.sizes = (len(bank), len(test))
        self.last_seconds = 0.0

    def _loader(self, dataset: Dataset) -> DataLoader:
        cached = isinstance(dataset, TensorDataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=0 if cached else self.workers,
            pin_memory=self.device.type == "cuda",
        )

    def evaluate(self, backbone: nn.Module) -> dict[str, float]:
        """``{"knn_top1", "knn_top5"}`` in percent, plus the set sizes and the seconds taken."""
        start = time.monotonic()
        feats = [
            extract_features(
                backbone, self._loader(ds), device=self.device, autocast_dtype=self.autocast_dtype
            )
            for ds in self.sets
        ]
        (bank_x, bank_y), (test_x, test_y) = feats
        if bank_y is None or test_y is None:
            raise DataError("k-NN evaluation: the images carry no labels.")
        result = knn_classify(
            bank_x, bank_y, test_x, test_y, k=self.k, temperature=self.temperature
        )
        self.last_seconds = time.monotonic() - start
        return {
            "knn_top1": float(result["top1"]),
            "knn_top5": float(result["top5"]),
            "knn_k": int(result["k"]),
            "knn_bank": self.sizes[0],
            "knn_test": self.sizes[1],
            "eval_seconds": round(self.last_seconds, 3),
        }


def _maybe_cache(items: _EvalItems | Dataset) -> Dataset:
    """The transformed images as one tensor when small enough, else the lazy dataset."""
    if not isinstance(items, _EvalItems) or not len(items):
        return items
    if 3 * 4 * items.size**2 * len(items) > CACHE_LIMIT_BYTES:
        return items
    return items.as_tensors()


def build_evaluator(
    train_set: Any,
    data: DataConfig,
    pipeline: PipelineConfig,
    *,
    seed: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
    workers: int,
) -> tuple[KnnEvaluator | None, str]:
    """The evaluator, or None and the reason k-NN is skipped (unlabelled data, no held-out
    split, too few labelled images)."""
    from dinodiag.data import open_dataset

    try:
        test_set = open_dataset(data.data, split=data.eval_split)
    except DataError as exc:
        return None, (
            f"k-NN evaluation is skipped: the held-out split {data.eval_split!r} of {data.data} "
            f"cannot be opened ({exc}). Set --eval-split to a labelled split, or ignore this "
            "and judge the run by its diagnostics."
        )
    for which, ds in (("training", train_set), ("held-out", test_set)):
        if not getattr(ds, "has_labels", True):
            return None, (
                f"k-NN evaluation is skipped: the {which} split of {data.data} has no labels "
                "(a flat folder of images?). Put images in one sub-folder per class to get k-NN "
                "accuracy; meanwhile watch the collapse diagnostics (entropy, effective rank)."
            )
    if len(test_set) == 0:
        return None, (
            f"k-NN evaluation is skipped: the held-out split {data.eval_split!r} of {data.data} "
            "is empty, and k-NN needs labelled images the model does not train on. An image "
            "folder keeps ~20% of each class for 'val' (none of a class of 1-2 images): add "
            "images, set --eval-split to another labelled split, or --eval-every 0 to silence "
            "this."
        )
    if len(train_set) < 2:
        return None, (
            f"k-NN evaluation is skipped: the training split of {data.data} has "
            f"{len(train_set)} image(s); the k-NN memory bank needs at least 2."
        )
    shape = (pipeline.global_crops_size, tuple(pipeline.mean), tuple(pipeline.std))
    bank = _EvalItems(train_set, subset_indices(len(train_set), data.knn_train_max, seed), *shape)
    test = _EvalItems(test_set, subset_indices(len(test_set), data.knn_test_max, seed + 1), *shape)
    evaluator = KnnEvaluator(
        bank,
        test,
        k=data.knn_k,
        temperature=data.knn_temperature,
        device=device,
        autocast_dtype=autocast_dtype,
        workers=workers,
    )
    return evaluator, ""
