"""What the checks look at, gathered once: samples, their rows, the configs; and result helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.records import MultiCropSample
from dinodiag.checks.report import CheckResult

Check = Callable[["Evidence"], CheckResult]
SCALE_TOLERANCE = 1e-3  # configured ranges closer than this count as equal


@dataclass
class Evidence:
    """What the checks look at: the samples, their rows, and the two configs."""

    samples: list[MultiCropSample]
    rows: list[dict[str, Any]]
    repeat: MultiCropSample  # sample 0 drawn again with the same seed
    expect: PipelineConfig
    expect_name: str
    config: PipelineConfig | None  # None for a brought pipeline
    image_sizes: list[tuple[int, int]]  # (W, H) of the dataset images looked at
    notes: list[str] = field(default_factory=list)

    def group_rows(self, group: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["group"] == group]

    @property
    def views(self) -> list[torch.Tensor]:
        return [v for s in self.samples for v in s.views]


def fmt_range(value: tuple[float, float] | None) -> str:
    return "none" if value is None else f"({value[0]:g}, {value[1]:g})"


def shape_text(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape)


def make_result(
    check_id: str, title: str, status: str, measured: Any, expected: Any, message: str
) -> CheckResult:
    return CheckResult(check_id, title, status, measured, expected, message)
