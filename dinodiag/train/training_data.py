"""What a plan asks of the machine and the data (:class:`dinodiag.recipe.plan.TrainingData`),
answered here where torch and the datasets are: the training split opened once, your own
pipeline measured once per spec, the GPUs counted.

    data = TrainingImages()
    plan = plan_run(base, overrides, data)       # dinodiag.recipe.plan
"""

from __future__ import annotations

from typing import Any

from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import ViewShapes
from dinodiag.recipe.plan import Measured
from dinodiag.train.pipelines import measure_own, own_spec


class TrainingImages:
    """The training data of the configs a plan is made for (opened once per dataset)."""

    def __init__(self) -> None:
        self._datasets: dict[tuple[str, str], Any] = {}
        self._views: dict[tuple[Any, ...], ViewShapes] = {}

    def dataset(self, config: TrainConfig) -> Any:
        """The training split of ``config.data`` (:class:`DataError` when no image loads)."""
        key = (config.data.data, config.data.train_split)
        if key not in self._datasets:
            self._datasets[key] = open_train_set(config)
        return self._datasets[key]

    def measure(self, config: TrainConfig, *, images: bool, views: bool, gpus: bool) -> Measured:
        """What :func:`dinodiag.recipe.plan.plan_run` asks: the training images counted, your
        own code's views measured on them, the GPUs counted (each only when asked)."""
        dataset = self.dataset(config) if images or views else None
        shapes = None
        if views:
            own = own_spec(config)
            if own is None:
                raise ValueError(f"data.pipeline = {config.data.pipeline!r} is not your own code.")
            key = (own, config.data.data, config.data.train_split, config.run.seed)
            if key not in self._views:
                self._views[key] = measure_own(own, dataset, config.run.seed)[0]
            shapes = self._views[key]
        return Measured(
            images=len(dataset) if images and dataset is not None else None,
            views=shapes,
            gpus=gpu_count() if gpus else None,
        )


def open_train_set(config: TrainConfig) -> Any:
    """The training split of ``data.data``; :class:`DataError` before any training when no
    image of it can be loaded (a folder of only damaged files). The CPU path keeps its images
    once read (:class:`~dinodiag.train.data.CachedImages`), the on-device path its decoded
    ones."""
    from dinodiag.data import open_dataset

    dataset = open_dataset(config.data.data, split=config.data.train_split)
    if len(dataset):
        _image, _label = dataset[0]  # the first usable one: DataError naming the files if none
    return dataset


def gpu_count() -> int:
    """CUDA GPUs torch sees here (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
