"""The multi-crop recipe on a batch of decoded images, on the GPU (or any torch device).

A DataLoader only decodes (and can cache) uint8 images; all views of a batch are cut,
resized and coloured on the device in a handful of batched calls, with per-view random
parameters drawn exactly as the CPU pipeline draws them (same distributions: the
10-try RandomResizedCrop box with its centre-crop fallback, vectorised over tries;
flip; ColorJitter in a random order; grayscale; blur sigma; solarize). The parameters
are kept as :class:`ViewRecord` lists, so the inspector and ``run_checks`` work on this
backend too: ``GPUMultiCrop(cfg)(pil_image, seed=0)`` returns a ``MultiCropSample``.

Rendering: everything after the resize is bit-identical to the CPU path on the same
resized pixels (:mod:`dinodiag.augment.gpu.photometric`: Pillow's blends, 8-bit HSV hue, luma,
integer box blur, solarize). The resize (:mod:`dinodiag.augment.gpu.resize`) is the CPU path's
crop-then-resize as two batched matrix products per view slot: the same antialiased filter
taps over the box only, the same pass order, rounded to bytes between the passes; float sums
instead of fixed point put it within one grey level of the CPU path's pixels.

Example::

    gpu = GPUMultiCrop(load_config("dinov2"), device="cuda", seed=0)
    batch = gpu.batch(images_uint8)        # (B, 3, H, W) uint8, or a list of (3, Hi, Wi)
    batch.global_crops.shape               # (2 * B, 3, 224, 224), view-major
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.gpu import photometric
from dinodiag.augment.gpu.params import (
    JITTER_ORDER,
    ViewParams,
    group_index,
    params_from_records,
    records_from_params,
    sample_params,
)
from dinodiag.augment.gpu.resize import check_filter, crop_resize
from dinodiag.augment.records import MultiCropSample, ViewRecord
from dinodiag.errors import DataError

__all__ = ["GPUMultiCrop", "MultiCropBatch", "ViewParams", "params_from_records", "sample_params"]


@dataclass
class MultiCropBatch:
    """Views of a batch, view-major as :func:`dinodiag.augment.collate_views` stacks them."""

    global_crops: torch.Tensor  # (G * B, 3, Sg, Sg) float32, normalised
    local_crops: torch.Tensor  # (L * B, 3, Sl, Sl)
    params: ViewParams
    source_sizes: list[tuple[int, int]]  # (width, height) per sample
    records: list[list[ViewRecord]] | None = None  # per sample, globals first
    notes: list[str] = field(default_factory=list)


def _as_uint8_chw(image: object, index: int) -> torch.Tensor:
    """A PIL image or a (3, H, W) uint8 tensor -> (3, H, W) uint8 tensor (CPU or device)."""
    if isinstance(image, Image.Image):
        return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
    if (
        isinstance(image, torch.Tensor)
        and image.dtype == torch.uint8
        and image.ndim == 3
        and image.shape[0] == 3
    ):
        return image
    shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
    dtype = getattr(image, "dtype", None)
    raise DataError(
        f"image {index}: expected a PIL image or a (3, H, W) uint8 tensor, got {shape} "
        f"{dtype or ''}; "
        "decode images to uint8 RGB (e.g. torchvision.io.decode_image(..., "
        "mode=ImageReadMode.RGB))."
    )


def _check_sizes(
    sizes: list[tuple[int, int]], batch: int, height: int, width: int
) -> list[tuple[int, int]]:
    """The (width, height) of each image of a padded ``(B, 3, H, W)`` batch, checked."""
    sizes = [(int(w), int(h)) for w, h in sizes]
    if len(sizes) != batch:
        raise DataError(
            f"a padded batch of {batch} images came with {len(sizes)} sizes: give one "
            "(width, height) per image."
        )
    for index, (w, h) in enumerate(sizes):
        if not (1 <= w <= width and 1 <= h <= height):
            raise DataError(
                f"image {index}: size {w}x{h} does not fit the padded batch of {width}x{height}: "
                "sizes are (width, height) of each image before padding."
            )
    return sizes


def _stack_images(
    images: torch.Tensor | list,
    device: torch.device,
    sizes: list[tuple[int, int]] | None = None,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """(B, 3, H, W) uint8 or a list of images -> float32 (B, 3, Hmax, Wmax) on ``device`` + sizes.

    Images of different sizes are padded to the largest by repeating their edge
    pixels, so that sampling just outside an image reads its edge, as PIL clamps. A
    ``(B, 3, H, W)`` batch padded that way already (a training loader's, see
    :mod:`dinodiag.train.device_batches`) comes with ``sizes``: each image's (width, height)
    before padding. Copies from pinned CPU memory do not block.
    """
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise DataError(
                f"expected a (B, 3, H, W) uint8 batch, got {tuple(images.shape)} {images.dtype}."
            )
        height, width = (int(v) for v in images.shape[-2:])
        if sizes is None:
            sizes = [(width, height)] * images.shape[0]
        sizes = _check_sizes(sizes, images.shape[0], height, width)
        return images.to(device, non_blocking=True).float(), sizes
    if not images:
        raise DataError("the batch is empty: give at least one image.")
    if sizes is not None:
        raise DataError("sizes go with a padded (B, 3, H, W) batch, not with a list of images.")
    chw = [_as_uint8_chw(image, i).to(device, non_blocking=True) for i, image in enumerate(images)]
    sizes = [(int(t.shape[2]), int(t.shape[1])) for t in chw]
    max_w, max_h = max(w for w, _ in sizes), max(h for _, h in sizes)
    padded = [
        F.pad(t.float().unsqueeze(0), (0, max_w - w, 0, max_h - h), mode="replicate")
        if (w, h) != (max_w, max_h)
        else t.float().unsqueeze(0)
        for t, (w, h) in zip(chw, sizes, strict=True)
    ]
    return torch.cat(padded), sizes


class GPUMultiCrop:
    """The DINO/DINOv2 multi-crop recipe on batches of decoded images, on ``device``.

    ``batch(images, seed=None)`` -> :class:`MultiCropBatch` (views stay on the device);
    ``gpu(pil_image, seed=None)`` -> :class:`MultiCropSample` on the CPU, the call
    signature of :class:`dinodiag.augment.pipeline.MultiCropPipeline` (``run_checks``, the
    statistics and the inspector accept it). Random parameters come from a CPU
    ``torch.Generator`` (seeded by ``seed`` at construction, or per call), so a seed
    gives the same views on every device.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        device: str | torch.device | None = None,
        seed: int | None = None,
        record: bool = True,
    ) -> None:
        self.config = config
        self.interpolation = check_filter(config.interpolation)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.record = record
        self._generator = torch.Generator()
        if seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(seed)
        mean = torch.tensor(config.mean, dtype=torch.float32).view(1, 3, 1, 1)
        std = torch.tensor(config.std, dtype=torch.float32).view(1, 3, 1, 1)
        # ToTensor + Normalize as one multiply-add, with the CPU path's float32 constants.
        self._scale = (1.0 / (255.0 * std)).to(self.device)
        self._shift = (-mean / std).to(self.device)

    def __repr__(self) -> str:
        c = self.config
        return (
            f"GPUMultiCrop({c.name!r} on {self.device}: {c.global_crops_number} x "
            f"{c.global_crops_size}px "
            f"+ {c.local_crops_number} x {c.local_crops_size}px)"
        )

    def __call__(
        self, image: Image.Image | torch.Tensor, seed: int | None = None
    ) -> MultiCropSample:
        batch = self.batch([image], seed=seed)
        globals_ = [v.cpu() for v in batch.global_crops]
        locals_ = [v.cpu() for v in batch.local_crops]
        records = batch.records[0] if batch.records else []
        return MultiCropSample(
            globals_, locals_, records, batch.source_sizes[0], notes=list(batch.notes)
        )

    def batch(
        self,
        images: torch.Tensor | list,
        seed: int | None = None,
        sizes: list[tuple[int, int]] | None = None,
    ) -> MultiCropBatch:
        """Draw parameters for every view of ``images`` and render them on the device.

        ``images``: a ``(B, 3, H, W)`` uint8 batch (``sizes``: each image's (width, height)
        when the batch is edge-padded, else all are H x W) or a list of PIL images / ``(3,
        Hi, Wi)`` uint8 tensors.
        """
        source, sizes = _stack_images(images, self.device, sizes)
        generator = torch.Generator().manual_seed(seed) if seed is not None else self._generator
        params = sample_params(generator, self.config, sizes)
        return self._render(source, sizes, params)

    def render(self, images: torch.Tensor | list, params: ViewParams) -> MultiCropBatch:
        """Render given parameters (e.g. :func:`params_from_records`) on ``images``."""
        source, sizes = _stack_images(images, self.device)
        return self._render(source, sizes, params)

    def _render(
        self, source: torch.Tensor, sizes: list[tuple[int, int]], params: ViewParams
    ) -> MultiCropBatch:
        cfg = self.config
        batch = len(sizes)
        groups = []
        for first, count, size in (
            (0, cfg.global_crops_number, cfg.global_crops_size),
            (cfg.global_crops_number, cfg.local_crops_number, cfg.local_crops_size),
        ):
            rows = slice(first * batch, (first + count) * batch)
            groups.append(self._render_group(source, params, rows, first, count, size))
        batch_out = MultiCropBatch(groups[0], groups[1], params, sizes)
        batch_out.notes.append(
            "rendered by dinodiag.augment.gpu.multicrop: crops resized by separable matrix "
            "products with the CPU path's filter taps (within a grey level of it); every other "
            "operation as the CPU pipeline"
        )
        if self.record:
            batch_out.records = records_from_params(cfg, params, sizes)
        return batch_out

    def _rows(self, flags: torch.Tensor) -> torch.Tensor | None:
        """Indices (on the device) of the True entries of a CPU bool tensor, or None."""
        rows = flags.nonzero().flatten()
        return rows.to(self.device, non_blocking=True) if rows.numel() else None

    def _render_group(
        self,
        source: torch.Tensor,
        params: ViewParams,
        rows: slice,
        first: int,
        count: int,
        size: int,
    ) -> torch.Tensor:
        batch = source.shape[0]
        if count == 0:
            return torch.empty((0, 3, size, size), device=self.device)
        box = params.box[rows]
        views = torch.cat(
            [
                crop_resize(source, box[v * batch : (v + 1) * batch], size, self.interpolation)
                for v in range(count)
            ]
        )
        kinds = [
            self.config.augment_for(*group_index(self.config, first + v)) for v in range(count)
        ]
        enabled = torch.tensor(
            [[getattr(k, n) > 0 for n in JITTER_ORDER] for k in kinds], dtype=torch.bool
        ).repeat_interleave(batch, dim=0)
        # Row selections are computed from the CPU parameters: no device round trips.
        views = photometric.color_jitter(
            views, params.jitter[rows], params.order[rows], params.factors[rows], enabled
        )
        thresholds = torch.tensor([float(k.solarize_threshold) for k in kinds]).repeat_interleave(
            batch
        )
        gray = self._rows(params.grayscale[rows])
        if gray is not None:
            views[gray] = photometric.to_grayscale(views[gray])
        blurred = params.blur[rows].nonzero().flatten()
        if blurred.numel():
            on_device = blurred.to(self.device, non_blocking=True)
            views[on_device] = photometric.gaussian_blur(
                views[on_device], params.sigma[rows][blurred]
            )
        for threshold in thresholds.unique().tolist():
            solar = self._rows(params.solarize[rows] & (thresholds == threshold))
            if solar is not None:
                views[solar] = photometric.solarize(views[solar], threshold)
        flipped = self._rows(params.flip[rows])
        if flipped is not None:
            views[flipped] = views[flipped].flip(-1)
        return views.mul_(self._scale).add_(self._shift)
