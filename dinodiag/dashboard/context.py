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
    config: PipelineConfig | None  # None for your own pipeline or on error
    pipeline: Any  # a callable pipeline (built or own), None on error
    pipeline_key: str  # cache key of the pipeline (config JSON or spec + kwargs + mtime)
    pipeline_error: str | None
    reference: str  # reference preset name
    seed: int
    dataset_waiting: bool = False  # nothing chosen yet (no upload, no path): not an error
    pipeline_waiting: bool = False  # nothing typed yet (empty paste box, no spec)
    # The error of the pipeline typed now, when the pages show the last valid one instead
    # (greyed, marked stale: a typo in a pasted config does not wipe the results).
    pipeline_stale: str | None = None

    @property
    def reference_config(self) -> PipelineConfig:
        return get_preset(self.reference).config

    @property
    def pipeline_label(self) -> str:
        """The pipeline's short name: the config's name, or your own spec."""
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
                f"your code: `{self.choice.spec}` (every operation recorded as it runs: crops, "
                "flips, colour, blur, solarize, per view)"
            )
        return "not usable yet (see the sidebar)"

    @property
    def pipeline_short_label(self) -> str:
        """The pipeline's name for table cells: your own spec's file name and factory
        (``my_augment.py:build``), not its whole path."""
        label = self.pipeline_label
        if self.config is None and ":" in label:
            path, _, factory = label.rpartition(":")
            return f"{path.replace(os.sep, '/').rsplit('/', 1)[-1]}:{factory}"
        return label

    @property
    def dataset_status(self) -> str:
        """The dataset's line, or its error in red (Markdown); a choice not made yet in grey."""
        if self.dataset is None and self.dataset_waiting:
            return f":gray[not chosen yet: {self.dataset_error}]"
        if self.dataset is None:
            return f":red[{self.dataset_error}]"
        return describe_dataset(self.dataset)

    @property
    def pipeline_status(self) -> str:
        """The pipeline's line, or its error in red (Markdown); not chosen yet in grey."""
        if self.pipeline_stale is not None:
            return (
                f":gray[{self.pipeline_line}] :orange-badge[STALE] the sidebar's config is "
                f"not usable: {self.pipeline_stale}"
            )
        if self.pipeline_error is None:
            return self.pipeline_line
        if self.pipeline_waiting:
            return f":gray[not chosen yet: {self.pipeline_error}]"
        return f":red[{self.pipeline_error}]"

    @property
    def stale_banner(self) -> str | None:
        """What the top of every page says while it shows the last valid pipeline (Markdown),
        None when the sidebar's pipeline is usable."""
        if self.pipeline_stale is None:
            return None
        return (
            f"**Pipeline:** {self.pipeline_stale}  \nThe page below is greyed: it still "
            f"shows the last valid pipeline, `{self.pipeline_label}`, until the config is "
            "fixed in the sidebar."
        )

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

    def notices(
        self, need_dataset: bool = True, need_pipeline: bool = True
    ) -> list[tuple[str, str]]:
        """What a page says in place of its content when a needed part is missing:
        ``(level, Markdown)``. A part not chosen yet is an "info" with what to do; a part in
        error is a "warning" pointing at the sidebar, which shows the error itself (a page
        does not repeat it)."""
        out = []
        parts = (
            ("Images", "1 · Images", need_dataset, self.dataset_error, self.dataset_waiting),
            ("Pipeline", "2 · Pipeline", need_pipeline, self.pipeline_error, self.pipeline_waiting),
        )
        for name, section, needed, error, waiting in parts:
            if not needed or not error:
                continue
            if waiting:
                out.append(("info", f"**{name}:** {error[0].upper()}{error[1:]}"))
            else:
                out.append(
                    (
                        "warning",
                        f"**{name}:** not usable: the message in the sidebar, under "
                        f"*{section}*, says why and what to change.",
                    )
                )
        return out


def spec_stamp(spec: str) -> float:
    """Modification time of your own spec's ``.py`` file, 0 when there is none to read.

    Part of the pipeline's cache key: an edited file is imported again.
    """
    path = spec.rsplit(":", 1)[0]
    try:
        return os.path.getmtime(path) if path.endswith(".py") else 0.0
    except OSError:
        return 0.0


def own_pipeline_key(spec: str, kwargs: dict[str, Any], stamp: float) -> str:
    """The cache key of your own pipeline: spec, its arguments and its file's mtime."""
    return f"own:{spec}:{sorted(kwargs.items())}:{stamp}"
