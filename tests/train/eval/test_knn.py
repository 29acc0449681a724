"""Weighted k-NN: parity with a brute-force loop, tiny datasets, feature extraction."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from dinodiag.errors import ConfigError, DataError
from dinodiag.train.eval.knn import (
    eval_images,
    eval_transform,
    extract_features,
    gain_noise,
    knn_classify,
    knn_noise,
)
from dinodiag.train.models.vit import build_vit
from tests.facts import assert_mentions


def brute_force_knn(train, train_labels, test, test_labels, k, temperature, num_classes):
    """Independent reference: python loops over samples, cosine by hand, dict of votes."""

    def unit(v):
        norm = math.sqrt(sum(float(a) ** 2 for a in v))
        return [float(a) / norm for a in v]

    train_u = [unit(v) for v in train]
    predictions, top1, top5 = [], 0, 0
    for i, row in enumerate(test):
        x = unit(row)
        sims = sorted(
            ((sum(a * b for a, b in zip(x, t, strict=True)), j) for j, t in enumerate(train_u)),
            reverse=True,
        )[: min(k, len(train_u))]
        votes = [0.0] * num_classes
        for sim, j in sims:
            votes[int(train_labels[j])] += math.exp(sim / temperature)
        best = max(range(num_classes), key=lambda c: (votes[c], -c))
        ranked = sorted((c for c in range(num_classes) if votes[c] > 0), key=lambda c: -votes[c])
        predictions.append(best)
        if test_labels is not None:
            top1 += int(best == int(test_labels[i]))
            top5 += int(int(test_labels[i]) in ranked[:5])
    n = len(test)
    return predictions, 100.0 * top1 / n, 100.0 * top5 / n


def _clustered(n: int, classes: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99))
    labels = torch.randint(0, classes, (n,), generator=gen)
    return centres[labels] + 0.9 * torch.randn(n, dim, generator=gen), labels


@pytest.mark.parametrize("k,chunk_size", [(1, 256), (5, 7), (20, 1), (20, 256)])
def test_matches_brute_force(k: int, chunk_size: int) -> None:
    train, train_labels = _clustered(60, 8, 6, seed=0)
    test, test_labels = _clustered(23, 8, 6, seed=1)
    out = knn_classify(train, train_labels, test, test_labels, k=k, chunk_size=chunk_size)
    preds, top1, top5 = brute_force_knn(train, train_labels, test, test_labels, k, 0.07, 8)
    assert out["predictions"].tolist() == preds
    assert out["top1"] == pytest.approx(top1)
    assert out["top5"] == pytest.approx(top5)
    assert 0 < out["top1"] <= out["top5"] <= 100


def test_handful_of_samples_and_k_larger_than_train() -> None:
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    labels = torch.tensor([0, 1, 0])
    test = torch.tensor([[1.0, 0.05], [0.1, 1.0]])
    out = knn_classify(train, labels, test, torch.tensor([0, 1]), k=20)
    assert out["k"] == 3
    assert out["predictions"].tolist() == [0, 1]
    assert out["top1"] == 100.0
    preds, top1, top5 = brute_force_knn(train, labels, test, [0, 1], 20, 0.07, 2)
    assert out["predictions"].tolist() == preds and out["top5"] == top5 == 100.0


def test_top5_with_fewer_than_five_classes_counts_voted_classes() -> None:
    train = torch.tensor([[1.0, 0.0], [0.95, 0.05]])
    labels = torch.tensor([0, 1])
    test = torch.tensor([[1.0, 0.0]])
    # class 2 exists (num_classes=3) but no neighbour votes for it: not a top-5 hit
    miss = knn_classify(train, labels, test, torch.tensor([2]), k=2, num_classes=3)
    assert miss["top1"] == 0.0 and miss["top5"] == 0.0
    hit = knn_classify(train, labels, test, torch.tensor([1]), k=2, num_classes=3)
    assert hit["top1"] == 0.0 and hit["top5"] == 100.0


def test_without_test_labels_only_predicts() -> None:
    train, labels = _clustered(10, 3, 4, seed=2)
    out = knn_classify(train, labels, train[:4])
    assert out["top1"] is None and out["top5"] is None
    assert out["predictions"].shape == (4,)


def test_bad_inputs_raise() -> None:
    train, labels = _clustered(10, 3, 4, seed=2)
    with pytest.raises(DataError, match="dimension"):
        knn_classify(train, labels, torch.randn(2, 5))
    with pytest.raises(DataError, match="empty"):
        knn_classify(train[:0], labels[:0], train)
    with pytest.raises(ConfigError, match="k must"):
        knn_classify(train, labels, train, k=0)
    with pytest.raises(DataError, match=">= 0"):
        knn_classify(train, -labels - 1, train)


@torch.no_grad()
def test_extract_features_from_dataset_and_loader_agree() -> None:
    torch.manual_seed(0)
    model = build_vit("tiny", patch_size=4, img_size=16, depth=1)
    model.train()
    images = [Image.new("RGB", (20, 24), color=(10 * i, 200 - 20 * i, 30)) for i in range(5)]
    dataset = [(img, i % 2) for i, img in enumerate(images)]
    transform = eval_transform(16)
    feats, labels = extract_features(model, dataset, transform, device="cpu", batch_size=2)
    assert feats.shape == (5, 192) and feats.dtype == torch.float32
    assert labels.tolist() == [0, 1, 0, 1, 0]
    assert model.training  # mode restored
    tensors = torch.stack([transform(img) for img in images])
    loader = DataLoader(TensorDataset(tensors, labels), batch_size=3)
    feats2, labels2 = extract_features(model, loader, device="cpu")
    assert torch.allclose(feats, feats2, atol=1e-5) and torch.equal(labels, labels2)
    unlabelled, none = extract_features(model, [img for img in images[:2]], transform)
    assert unlabelled.shape == (2, 192) and none is None
    with pytest.raises(ConfigError, match="DataLoader"):
        extract_features(model, loader, transform)
    # the features feed knn_classify directly
    assert knn_classify(feats, labels, feats, labels, k=1)["top1"] == 100.0


def test_eval_images_equal_the_eval_transform_without_torchvision() -> None:
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for h, w in ((32, 32), (32, 32), (40, 57), (64, 48), (37, 37))
    ]
    images.append(images[0].convert("L"))  # grey images are read as RGB, as the datasets give
    batched = eval_images(images, 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    transform = eval_transform(32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    single = torch.stack([transform(image.convert("RGB")) for image in images])
    assert batched.shape == (6, 3, 32, 32)
    assert torch.allclose(batched, single, atol=1e-5)  # the same 8-bit resize, crop and scale
    with pytest.raises(DataError) as info:
        eval_images(images[:1], 32, resize_ratio=0.5)
    # which image, its size, the size it was resized to, the crop it cannot fill, and the fix
    facts = ["image 0", "32x32", "resized to 16x16", "32 px", "resize_ratio = 0.5", "at least 1"]
    assert_mentions(str(info.value), *facts)


def test_knn_noise_is_the_binomial_spread_in_points() -> None:
    assert knn_noise(40.0, 500) == pytest.approx(100 * (0.4 * 0.6 / 500) ** 0.5)  # ~2.2
    assert knn_noise(40.0, 2000) == pytest.approx(knn_noise(40.0, 500) / 2)
    assert knn_noise(0.0, 100) == pytest.approx(100 * (0.01 * 0.99 / 100) ** 0.5)  # floored
    assert knn_noise(50.0, None) is None and gain_noise(10.0, 20.0, 0) is None
    assert gain_noise(40.0, 40.0, 500) == pytest.approx(2**0.5 * knn_noise(40.0, 500))
