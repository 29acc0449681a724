"""ResNet-18 backbone (torchvision, random init) with a stem adapted to small images.

For images of 64 px or less the 7x7 stride-2 stem and the max-pool would shrink a 32 px crop
to 8 px before the first block, so they are replaced by a 3x3 stride-1 convolution and no
pooling (the usual CIFAR variant). The backbone returns only pooled features: there are no
patch tokens, so iBOT is not available with it (``supports_masking = False``).
"""

from __future__ import annotations

import torch
from torch import nn

from dinodiag.errors import TrainingError

#: Image side (px) at or below which the small-image stem is used.
SMALL_IMAGE_MAX = 64


class ResNetBackbone(nn.Module):
    """torchvision ResNet-18 without its classifier: (B, 3, H, W) -> {"cls": (B, 512)}.

    Args:
        img_size: the global crop size; <= 64 switches to the small-image stem.
    """

    supports_masking = False
    embed_dim = 512

    def __init__(self, img_size: int = 224) -> None:
        super().__init__()
        from torchvision.models import resnet18  # imported here: torchvision is slow to import

        net = resnet18(weights=None)
        self.small_stem = img_size <= SMALL_IMAGE_MAX
        if self.small_stem:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
            net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.img_size = img_size

    def forward(
        self, x: torch.Tensor, masks: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """x: (B, 3, H, W) -> ``{"cls": (B, 512)}`` (global-average-pooled features)."""
        if masks is not None:
            raise TrainingError(
                "iBOT masks were passed to the ResNet-18 backbone, which has no patch tokens: "
                "disable the iBOT loss (ibot weight 0) or use a ViT architecture."
            )
        return {"cls": self.net(x)}
