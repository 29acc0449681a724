"""Follow a run while it trains: re-read its log as it grows and report each finding that is
new or changed (collapse starting, KoLeo going inf, the loader falling behind, a stop).

A DINOv2 run lasts days; ``python -m dinodiag open-run DIR --follow`` prints the findings once,
then one line per change, each stamped with the iteration it was seen at:

    for change in follow("/out/run", interval=30):
        print(change.line())
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dinodiag.errors import DinodiagError
from dinodiag.runs.dinov2_run import open_run
from dinodiag.runs.findings import Finding
from dinodiag.runs.run_diagnosis import diagnose
from dinodiag.runs.run_stamp import run_stamp


@dataclass(frozen=True)
class Change:
    """A finding that appeared or changed level, at the last logged iteration."""

    iteration: int | None
    finding: Finding
    before: str | None  # its previous level (None: new)

    def line(self) -> str:
        at = f"iteration {self.iteration}" if self.iteration is not None else "start"
        was = f" (was {self.before.upper()})" if self.before else ""
        f = self.finding
        return f"[{at}] [{f.level.upper()}]{was} {f.title}: {f.evidence}"


def follow(
    path: str | Path,
    *,
    interval: float = 30.0,
    polls: int | None = None,
    num_prototypes: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_error: Callable[[str], None] | None = None,
) -> Iterator[Change]:
    """Yield every finding of the run at first, then each new or changed one whenever the log
    changes (checked every ``interval`` seconds; ``polls`` limits the checks, None: forever).
    A log that cannot be read for a moment (being rotated) is reported through ``on_error``
    and read again at the next check."""
    path = Path(path).expanduser()
    seen: dict[str, str] = {}
    stamp: tuple[float, ...] | None = None
    count = 0
    while polls is None or count < polls:
        if count:
            sleep(interval)
        count += 1
        now = run_stamp(path)
        if now == stamp:
            continue
        stamp = now
        try:
            run = open_run(path, num_prototypes=num_prototypes)
        except DinodiagError as exc:
            if on_error is not None:
                on_error(str(exc))
            continue
        steps = pd.to_numeric(run.train_rows.get("step"), errors="coerce").dropna()
        at = int(steps.max()) if len(steps) else None
        for finding in diagnose(run):
            key = finding.code
            if seen.get(key) != finding.level:
                yield Change(at, finding, seen.get(key))
                seen[key] = finding.level
