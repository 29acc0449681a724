"""What the "Yours vs reference" tab draws, read from the runs' directories: each run's
metrics, the verdict (so far, while a run goes), the noise band the verdict uses, K for the
ln K line and why a run has no k-NN. The page only lays it out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from dinodiag import rundir
from dinodiag.dashboard import curves, run_status
from dinodiag.rundir import RunInfo
from dinodiag.runs import story


@dataclass(frozen=True)
class VersusView:
    frames: dict[str, pd.DataFrame]  # label -> metrics rows
    verdict: tuple[str, str] | None  # (st level: success / warning / error / info, text)
    band: pd.DataFrame | None  # the noise band of the verdict (story.verdict_band)
    prototypes: dict[str, int]  # label -> K, for the ln K line
    no_knn: str | None  # why a run has no k-NN point, when one has none


def versus_view(now: Mapping[str, RunInfo], labels: Mapping[str, str], active: bool) -> VersusView:
    """The view of the runs ``now`` (role -> RunInfo) labelled ``labels`` (role -> label);
    ``active``: a run still goes (the verdict then says "So far")."""
    frames = {labels[role]: rundir.read_metrics(info.path) for role, info in now.items()}
    configs = {labels[role]: rundir.read_config(info.path) for role, info in now.items()}
    verdict, band = None, None
    if set(now) == set(story.ROLES):
        yours, reference = frames[labels["yours"]], frames[labels["reference"]]
        band = story.verdict_band(yours, reference, (labels["yours"], labels["reference"]))
        if labels is story.SEED_LABELS:
            level, text = story.story_verdict(yours, reference)
        else:
            _, level, text = story.versus_verdict(yours, reference)
        verdict = (level, ("So far: " + text) if active and level != "info" else text)
    absent = [
        run_status.knn_absence(info, configs[labels[role]], frames[labels[role]])
        for role, info in now.items()
    ]
    return VersusView(
        frames, verdict, band, curves.prototypes(configs), next((a for a in absent if a), None)
    )
