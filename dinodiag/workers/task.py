"""One sample of a run (:class:`Task`), what is done with it (:data:`Work`), and how a run
tells its caller something on the way (:data:`Note`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Work = Callable[[Any, Any, "Task"], Any]  # (pipeline, PIL image, task) -> what the caller keeps
Note = Callable[[str], None]


@dataclass(frozen=True)
class Task:
    """One call of the pipeline: sample ``number`` on dataset item ``image_index``."""

    number: int  # the sample's place in the run (0 ..): messages say "sample 3"
    image_index: int  # dataset index of the image
    seed: int  # the pipeline's seed for this call
    image: str  # where the image comes from (dataset.describe), for rows and messages


def whole_sample(pipeline: Any, image: Any, task: Task) -> Any:
    """The work that keeps the pipeline's whole sample (views and records)."""
    return pipeline(image, seed=task.seed)


def print_note(text: str) -> None:
    """The default ``on_note``: the note on stderr (stdout may be a report or JSON)."""
    print(f"note: {text}", file=sys.stderr)
