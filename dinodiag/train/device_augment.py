"""The views of a decoded batch (:mod:`dinodiag.train.decoded_batches`) cut, resized and
coloured on the training device in a handful of batched calls
(:class:`~dinodiag.augment.gpu.GPUMultiCrop`), with per-view parameters drawn on the CPU as the
CPU pipeline draws them.

After :class:`DeviceAugment`, the batch :mod:`dinodiag.train.step` takes (view-major, on the
device)::

    {"global_crops": (G * B, 3, S, S), "local_crops": (L * B, 3, s, s), "masks", "indices",
     "sampled": {"sampled_global_scale": ..., ...}}
"""

from __future__ import annotations

from typing import Any

import torch

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.gpu.multicrop import GPUMultiCrop
from dinodiag.augment.gpu.params import ViewParams
from dinodiag.train.data import SAMPLED_RATES


class DeviceAugment:
    """Decoded batch -> the step's batch: every view cut, resized and coloured on ``device``.

    ``last_params`` keeps the parameters of the latest batch (rows view-major, see
    :class:`~dinodiag.augment.gpu.params.ViewParams`) for tests and inspection.
    """

    def __init__(self, pipeline: PipelineConfig, device: torch.device) -> None:
        self.pipeline = pipeline
        self.device = device
        self.crop = GPUMultiCrop(pipeline, device=device, seed=0, record=False)
        self.last_params: ViewParams | None = None

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        sizes = [(int(w), int(h)) for w, h in batch["sizes"].tolist()]
        images = batch["images"]
        views = self.crop.batch(
            images,
            seed=int(batch["view_seed"]),
            sizes=sizes if isinstance(images, torch.Tensor) else None,
        )
        self.last_params = views.params
        return {
            "global_crops": views.global_crops,
            "local_crops": views.local_crops,
            "masks": batch["masks"],
            "indices": batch["indices"],
            "sampled": summarise_params(self.pipeline, views.params, sizes),
        }


def summarise_params(
    pipeline: PipelineConfig, params: ViewParams, sizes: list[tuple[int, int]]
) -> dict[str, tuple[float, int]]:
    """What a batch sampled, as ``{key: (sum, count)}`` (:data:`dinodiag.train.data.SAMPLED_KEYS`):
    crop area fractions summed per group, and how many views used each random operation."""
    area = torch.tensor([w * h for w, h in sizes], dtype=torch.float64)[params.sample]
    scale = params.box[:, 2] * params.box[:, 3] / area
    is_global = params.slot < pipeline.global_crops_number
    n_views = int(params.slot.numel())
    out: dict[str, tuple[float, int]] = {
        "sampled_global_scale": (float(scale[is_global].sum()), int(is_global.sum())),
        "sampled_local_scale": (float(scale[~is_global].sum()), int((~is_global).sum())),
    }
    for name in SAMPLED_RATES:
        out[f"sampled_{name}_rate"] = (float(getattr(params, name).sum()), n_views)
    return out
