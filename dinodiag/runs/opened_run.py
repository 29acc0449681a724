"""A training run directory as read for the dashboard and the CLI: :class:`OpenedRun`, what
:func:`dinodiag.runs.dinov2_run.open_run` returns and what the diagnosis rules read (a rule
needs this type only, not the readers of DINOv2's files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.dinov2_config import ResolvedDinov2Config
from dinodiag.runs.console_log import ConsoleLog
from dinodiag.runs.launches import Launch
from dinodiag.train.models.load import CheckpointFile


@dataclass
class OpenedRun:
    """A run directory read for the dashboard and the CLI."""

    path: Path
    kind: str  # "dinov2" or "dinodiag"
    metrics: pd.DataFrame  # rundir.read_metrics layout: kind, step, epoch, time + values
    checkpoints: list[CheckpointFile]  # oldest first (see find_checkpoints)
    pipeline: PipelineConfig | None  # the crops it trained on (None when unknown)
    recipe: str  # which photometric recipe ``pipeline`` has, in words
    num_prototypes: int | None  # K of the DINO head (ln K is the uniform-collapse level)
    dinov2_config: ResolvedDinov2Config | None = None  # DINOv2: config.yaml over the defaults
    own_config: dict[str, Any] | None = None  # dinodiag: config.json
    epoch_length: int | None = None  # DINOv2: train.OFFICIAL_EPOCH_LENGTH
    world_size: int | None = None  # DINOv2: processes, from optim.lr vs base_lr and the batch
    notes: list[str] = field(default_factory=list)  # what was assumed or missing
    launches: list[Launch] = field(default_factory=list)  # DINOv2: every launch of the log
    launch: int | None = None  # the launch diagnosed (metrics = its lineage); None: one run
    sources: dict[str, str] = field(default_factory=dict)  # value -> where it was read
    console: ConsoleLog | None = None  # DINOv2's log.txt, when there is one
    flavour: str = ""  # "dinov2" | "dinov3" | "dino" (v1) for a foreign run
    planned_iterations: int | None = None  # what the diagnosed launch was to run

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

    @property
    def train_rows(self) -> pd.DataFrame:
        if self.metrics.empty or "kind" not in self.metrics:
            return self.metrics
        return self.metrics[self.metrics["kind"] == "train"]
