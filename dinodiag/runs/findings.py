"""One statement about a run (:class:`Finding`) and the helpers its rules share: the
train rows of a column in step order, iterations and spans in words.

The rules live in :mod:`dinodiag.runs.run_diagnosis` (from the losses) and
:mod:`dinodiag.runs.config_rules` (the log against the config and the machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from dinodiag.runs.opened_run import OpenedRun

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


@dataclass(frozen=True)
class Warmup:
    """The lr warm-up as the log shows it was applied (or, without lr rows, as configured)."""

    state: str  # "peaked" | "rising" | "none" | "configured"
    end: int  # iteration the warm-up ends (the logged peak, or the configured end)
    evidence: str  # what it rests on, in words


PEAK_DROP = 0.01  # the lr counts as past its peak once 1% below it


def logged_warmup(run: OpenedRun) -> Warmup:
    """Read the warm-up from the logged lr: it ``peaked`` at the iteration of its maximum when
    it rose there (from more than 1% below) and later rows follow; it is still ``rising`` when
    the maximum is the last row; ``none`` when the lr never rose. Without at least 3 lr rows, the
    configured warm-up (``configured``)."""
    rows = rows_of(run, "lr").dropna()
    rows = rows[np.isfinite(rows["value"].astype(float))]
    if len(rows) < 3:
        end = warmup_iterations(run)
        where = "config" if run.dinov2_config is not None else "one epoch, assumed"
        return Warmup("configured", end, f"warm-up of {end} iterations ({where}; no lr logged)")
    values = rows["value"].to_numpy(dtype=float)
    peak = int(np.argmax(values))
    top, step = float(values[peak]), int(rows["step"].iloc[peak])
    rose = values[0] < (1 - PEAK_DROP) * top
    if rose and peak < len(values) - 1:
        return Warmup("peaked", step, f"the logged lr peaked at {top:.3g} at {iteration(step)}")
    if rose:
        return Warmup(
            "rising",
            step,
            f"the logged lr is still rising ({values[0]:.3g} -> {top:.3g} at {iteration(step)})",
        )
    return Warmup("none", int(rows["step"].iloc[0]), f"the logged lr stays at {top:.3g}")


def worst_level(findings: list[Finding]) -> str:
    """The worst level among ``findings`` ("pass" for none)."""
    return min((f.level for f in findings), key=LEVELS.index, default="pass")
