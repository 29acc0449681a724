"""The loop's batch stream, timed: :class:`BatchFeed` wraps either backend's batches (CPU
workers, :mod:`dinodiag.train.data`, or decoded batches augmented on the device,
:mod:`dinodiag.train.device_augment`), times the wait on the loader and the augmentation, and
sums what was sampled, for the train rows (``data_time``, ``iter_time`` as DINOv2 logs them,
``augment_time``, ``sampled_*``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch

from dinodiag.train.data import summarise_records


class BatchFeed:
    """The loop's batches: ``next(feed) -> (epoch, batch)`` from either backend's stream, with
    the on-device augmentation applied (``augment``), timed, and what was sampled summed.

    :meth:`window` returns the means since its last call, for a train row:

    - ``data_time``: seconds a step waited for the loader (``next`` on the DataLoader);
    - ``augment_time``: seconds of on-device augmentation per step (CUDA events: device time,
      read once the step has synchronised; wall time on a CPU); absent on the CPU path;
    - ``iter_time``: median seconds between consecutive batches (a whole step);
    - ``sampled_*``: :data:`SAMPLED_KEYS` over the window's views (when the batches say).
    """

    def __init__(self, stream: Iterator[tuple[int, dict[str, Any]]], augment: Any = None):
        self.stream = stream
        self.augment = augment
        self._reset()
        self._last: float | None = None

    def _reset(self) -> None:
        self._waits: list[float] = []
        self._intervals: list[float] = []
        self._augment_seconds: list[float] = []
        self._events: list[tuple[Any, Any]] = []
        self._sampled: dict[str, list[float]] = {}

    def __iter__(self) -> BatchFeed:
        return self

    def __next__(self) -> tuple[int, dict[str, Any]]:
        start = time.perf_counter()
        if self._last is not None:
            self._intervals.append(start - self._last)
        self._last = start
        epoch, batch = next(self.stream)
        self._waits.append(time.perf_counter() - start)
        if self.augment is not None:
            batch = self._augmented(batch)
        sampled = batch.get("sampled")
        if sampled is None and batch.get("records"):
            sampled = summarise_records(batch["records"])
        for key, (total, count) in (sampled or {}).items():
            acc = self._sampled.setdefault(key, [0.0, 0])
            acc[0] += total
            acc[1] += count
        return epoch, batch

    def _augmented(self, batch: dict[str, Any]) -> dict[str, Any]:
        device = getattr(self.augment, "device", torch.device("cpu"))
        if device.type == "cuda":
            begin, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            begin.record()
            batch = self.augment(batch)
            end.record()
            self._events.append((begin, end))
            return batch
        start = time.perf_counter()
        batch = self.augment(batch)
        self._augment_seconds.append(time.perf_counter() - start)
        return batch

    def window(self) -> dict[str, float]:
        """Means since the last call (see the class docstring); then starts a new window."""
        out: dict[str, float] = {}
        if self._waits:
            out["data_time"] = sum(self._waits) / len(self._waits)
        if self._intervals:
            out["iter_time"] = statistics.median(self._intervals)
        seconds = list(self._augment_seconds)
        for begin, end in self._events:
            end.synchronize()  # done already: the step read its loss back to the CPU
            seconds.append(begin.elapsed_time(end) / 1000.0)
        if seconds:
            out["augment_time"] = sum(seconds) / len(seconds)
        for key, (total, count) in self._sampled.items():
            if count:
                out[key] = total / count
        self._reset()
        return out
