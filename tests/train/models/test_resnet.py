"""ResNet-18 backbone: small-image stem, pooled features, no iBOT."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dinodiag.errors import TrainingError
from dinodiag.train.models.resnet import ResNetBackbone


def test_small_image_stem_and_output() -> None:
    model = ResNetBackbone(img_size=32).eval()
    assert model.net.conv1.kernel_size == (3, 3) and model.net.conv1.stride == (1, 1)
    assert isinstance(model.net.maxpool, nn.Identity)
    with torch.no_grad():
        for size in (32, 16):
            out = model(torch.randn(2, 3, size, size))
            assert set(out) == {"cls"} and out["cls"].shape == (2, 512)
    assert model.supports_masking is False and model.embed_dim == 512


def test_large_image_keeps_torchvision_stem() -> None:
    model = ResNetBackbone(img_size=224)
    assert model.net.conv1.kernel_size == (7, 7) and model.net.conv1.stride == (2, 2)
    assert isinstance(model.net.maxpool, nn.MaxPool2d)


def test_masks_are_refused() -> None:
    with pytest.raises(TrainingError, match="iBOT"):
        ResNetBackbone(img_size=32)(
            torch.randn(1, 3, 32, 32), masks=torch.zeros(1, 4, dtype=torch.bool)
        )
