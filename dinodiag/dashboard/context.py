"""What the sidebar resolved on this script run, as the pages read it: the dataset, the
pipeline, the reference and the seed, each part usable or carrying its error message.

``app.py`` builds one :class:`SidebarContext` per run from the sidebar's widgets (see
``dinodiag.dashboard.sidebar``); the pages read it (``pages/_shared.context()``).

    ctx = SidebarContext(dataset, "sample", None, PipelineChoice(), cfg, pipe, key, None,
                         "dinov2", 0)
    ctx.problems()            # [] or ["**Dataset:** ...", "**Pipeline:** ..."]
    ctx.pipeline_line         # "dinov2: 2 × 224 px globals (0.32–1) + ..."
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.presets import get_preset
from dinodiag.dashboard.sidebar import PipelineChoice, describe_config, describe_dataset


@dataclass(frozen=True)
class SidebarContext:
    """What the sidebar resolved: each part is either usable or carries its error message."""

    dataset: Any  # an ImageDataset, or None when dataset_error is set
    dataset_key: str  # cache key of the dataset ("sample", "upload:<sha>", ...)
    dataset_error: str | None
    choice: PipelineChoice
    config: PipelineConfig | None  # None for a brought pipeline or on error
    pipeline: Any  # a callable pipeline (built or brought), None on error
    pipeline_key: str  # cache key of the pipeline (config JSON or spec + kwargs + mtime)
    pipeline_error: str | None
    reference: str  # reference preset name
    seed: int

    @property
    def reference_config(self) -> PipelineConfig:
        return get_preset(self.reference).config

    @property
    def pipeline_label(self) -> str:
        """The pipeline's short name: the config's name, or the brought spec."""
        if self.config is not None:
            return self.config.name
        return self.choice.spec or "pipeline"

    @property
    def pipeline_line(self) -> str:
        """One line saying what the pipeline is (or that it is not usable yet)."""
        if self.config is not None:
            return describe_config(self.config)
        if self.pipeline is not None:
            return (
                f"your code: `{self.choice.spec}` (crops measured from its RandomResizedCrop calls)"
            )
        return "not usable yet (see the sidebar)"

    @property
    def dataset_status(self) -> str:
        """The dataset's line, or its error in red (Markdown)."""
        if self.dataset is None:
            return f":red[{self.dataset_error}]"
        return describe_dataset(self.dataset)

    @property
    def pipeline_status(self) -> str:
        """The pipeline's line, or its error in red (Markdown)."""
        return self.pipeline_line if self.pipeline_error is None else f":red[{self.pipeline_error}]"

    def training_data(self) -> tuple[str | None, str]:
        """(dataset spec a training process can open, or None; a line saying what it is or
        why not). Uploaded images live in this browser session, out of a process's reach."""
        if self.dataset_error:
            return None, f"the sidebar dataset is not usable ({self.dataset_error})"
        if self.dataset_key.startswith("upload:"):
            return None, (
                "uploaded images live in this browser session, a training process cannot "
                "read them: put them in a folder and choose *Image folder*"
            )
        return self.dataset_key, describe_dataset(self.dataset)

    @property
    def trains_on_sidebar_data(self) -> bool:
        """Whether the launch form starts with the sidebar's dataset: when a process can read
        it and it is not the built-in sample (20 images, too few to learn from)."""
        spec, _ = self.training_data()
        return spec is not None and not spec.startswith("sample")

    def problems(self, need_dataset: bool = True, need_pipeline: bool = True) -> list[str]:
        """What stops a page that needs these parts, one Markdown line each (empty: none)."""
        problems = []
        if need_dataset and self.dataset_error:
            problems.append(f"**Dataset:** {self.dataset_error}")
        if need_pipeline and self.pipeline_error:
            problems.append(f"**Pipeline:** {self.pipeline_error}")
        return problems


def spec_stamp(spec: str) -> float:
    """Modification time of a brought spec's ``.py`` file, 0 when there is none to read.

    Part of the pipeline's cache key: an edited file is imported again.
    """
    path = spec.rsplit(":", 1)[0]
    try:
        return os.path.getmtime(path) if path.endswith(".py") else 0.0
    except OSError:
        return 0.0


def brought_pipeline_key(spec: str, kwargs: dict[str, Any], stamp: float) -> str:
    """The cache key of a brought pipeline: spec, its arguments and its file's mtime."""
    return f"byo:{spec}:{sorted(kwargs.items())}:{stamp}"
