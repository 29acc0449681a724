"""The multi-crop recipe on a batch of decoded uint8 images, on the GPU (or any torch device).

Modules: ``params`` (per-view random parameters of a whole batch, drawn at once, and their
records), ``photometric`` (the recipe's colour operations on a batch, one parameter per
view) and ``multicrop`` (:class:`GPUMultiCrop`: cut, resize and colour every view).
"""

from dinodiag.augment.gpu.multicrop import GPUMultiCrop, MultiCropBatch

__all__ = ["GPUMultiCrop", "MultiCropBatch"]
