"""One statement about a run (:class:`Finding`) and the helpers its rules share: the
train rows of a column in step order, iterations and spans in words.

The rules live in :mod:`dinodiag.runs.run_diagnosis` (from the losses) and
:mod:`dinodiag.runs.config_rules` (the log against the config and the machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dinodiag.runs.dinov2_run import OpenedRun

LEVELS = ("fail", "warn", "info", "pass")  # worst first; badges as the check report's


@dataclass(frozen=True)
class Finding:
    """One statement about a run, with its evidence and what to try."""

    level: str  # "fail" | "warn" | "info" | "pass"
    code: str  # stable identifier: "uniform_collapse", "schedules" ...
    title: str  # one line
    evidence: str  # the iterations and values it rests on
    advice: str = ""  # what to try ("" when nothing is wrong)


def rows_of(run: OpenedRun, column: str) -> pd.DataFrame:
    """(step, value) of a train column, finite steps, in step order."""
    rows = run.train_rows
    if column not in rows:
        return pd.DataFrame(columns=["step", "value"])
    frame = pd.DataFrame(
        {
            "step": pd.to_numeric(rows["step"], errors="coerce"),
            "value": pd.to_numeric(rows[column], errors="coerce"),
        }
    ).dropna(subset=["step"])
    return frame.sort_values("step", kind="stable").reset_index(drop=True)


def iteration(step: float) -> str:
    """``iteration 1250``."""
    return f"iteration {int(step)}"


def span(frame: pd.DataFrame) -> str:
    """``iterations 0-2490``: the first and last step of a :func:`rows_of` frame."""
    return f"iterations {int(frame['step'].iloc[0])}-{int(frame['step'].iloc[-1])}"


def warmup_iterations(run: OpenedRun) -> int:
    """Iterations of the lr warm-up (DINOv2 config), else one epoch (or 1250 iterations)."""
    ep = run.epoch_length or 1250
    if run.dinov2_config is not None:
        return int(float(run.dinov2_config.get("optim.warmup_epochs")) * ep)
    return ep


def worst_level(findings: list[Finding]) -> str:
    """The worst level among ``findings`` ("pass" for none)."""
    return min((f.level for f in findings), key=LEVELS.index, default="pass")
