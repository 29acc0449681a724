"""DINOv2's metrics log, ``training_metrics.json``, read and mapped onto dinodiag's columns.

DINOv2's rank 0 writes one JSON object per line every logging period (REFERENCE.md):
``iteration``, ``iter_time``, ``data_time``, ``lr``, ``wd``, ``mom``, ``last_layer_lr``,
``current_batch_size``, ``total_loss``, ``dino_local_crops_loss``, ``dino_global_crops_loss``,
``koleo_loss``, ``ibot_loss``; each a median over the window. :data:`METRIC_NAMES` maps these
names onto the columns of dinodiag's ``metrics.jsonl`` (:mod:`dinodiag.rundir`), so one run's
curves draw with the same panels and overlay with dinodiag's runs:

    raw = read_training_metrics(run_dir / METRICS_FILE)      # DINOv2's names, file order
    rows = to_dinodiag_metrics(raw, epoch_length=1250, world_size=infer_world_size(resolved))
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dinodiag import rundir
from dinodiag.augment.dinov2_config import ResolvedDinov2Config
from dinodiag.errors import TrainingError
from dinodiag.runs.launches import launch_ids

METRICS_FILE = "training_metrics.json"
# DINOv2's metric name -> dinodiag's metrics.jsonl column. The two DINO terms are summed into
# dino_loss (DINOv2 divides each by the number of crop pairs, so their sum is the mean
# cross-entropy per pair: ln K at a uniform teacher); they are kept under their own names too.
METRIC_NAMES = {
    "total_loss": "loss",
    "ibot_loss": "ibot_loss",
    "koleo_loss": "koleo_loss",
    "lr": "lr",
    "wd": "wd",
    "mom": "momentum",
    "last_layer_lr": "last_layer_lr",
    "iter_time": "iter_time",
    "data_time": "data_time",
    "current_batch_size": "batch_size",
}
DINO_TERMS = ("dino_local_crops_loss", "dino_global_crops_loss")


def read_training_metrics(path: str | Path) -> pd.DataFrame:
    """DINOv2's ``training_metrics.json`` as a frame in its own names, one row per line in file
    order. A partial last line (being written) is ignored; other unreadable lines are counted in
    ``frame.attrs["bad_lines"]``. DINOv2 writes NaN / Infinity literals; they read as floats."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TrainingError(f"cannot read {path}: {exc.strerror or exc}.") from None
    objects, bad = rundir.json_lines(text)
    rows, where = [], []
    for number, row in enumerate(objects, start=1):
        if "iteration" not in row:
            continue
        value = log_number(row["iteration"])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            where.append(f"row {number}: iteration {str(value)[:40]!r}")
            continue
        rows.append({k: log_number(v) for k, v in row.items()})
    bad += len(objects) - len(rows)  # an object without a numeric "iteration" is no metrics line
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["iteration"] = pd.to_numeric(frame["iteration"], errors="coerce")
        frame["launch"] = launch_ids(frame["iteration"].to_numpy(dtype=float))
    frame.attrs["bad_lines"] = bad
    frame.attrs["bad_iterations"] = where[:3]
    return frame


def log_number(value: Any) -> Any:
    """A value of a DINOv2 (or DINO v1) log line: the strings NaN / Infinity as floats."""
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(value)
    return value


def to_dinodiag_metrics(
    raw: pd.DataFrame, epoch_length: int | None, world_size: int | None = None
) -> pd.DataFrame:
    """DINOv2 metric rows -> dinodiag's train rows (:data:`METRIC_NAMES`).

    ``step`` is the iteration, ``epoch`` = iteration / ``epoch_length`` (DINOv2's
    OFFICIAL_EPOCH_LENGTH; NaN without it), ``time`` the seconds since the start estimated as
    the sum of ``iter_time`` over the iterations between rows (DINOv2 logs no wall clock),
    ``img_per_s`` = batch x processes / ``iter_time`` (per process when the world size is not
    known). The DINO terms are summed into ``dino_loss``.
    """
    columns = ["kind", "step", "epoch", "time"]
    if raw.empty:
        return pd.DataFrame(columns=columns)
    steps = pd.to_numeric(raw["iteration"], errors="coerce")
    out = pd.DataFrame({"kind": "train", "step": steps.astype("Int64")})
    out["epoch"] = steps / epoch_length if epoch_length else np.nan
    for source, target in METRIC_NAMES.items():
        if source in raw:
            out[target] = pd.to_numeric(raw[source], errors="coerce")
    terms = [t for t in DINO_TERMS if t in raw]
    for term in terms:
        out[term] = pd.to_numeric(raw[term], errors="coerce")
    if terms:
        out["dino_loss"] = out[terms].sum(axis=1, min_count=len(terms))
    # the console log's running averages (``<meter>_avg``): a transient inf shows only there
    for source, target in [*METRIC_NAMES.items(), *((t, t) for t in DINO_TERMS)]:
        if f"{source}_avg" in raw:
            out[f"{target}_avg"] = pd.to_numeric(raw[f"{source}_avg"], errors="coerce")
    if all(f"{t}_avg" in out for t in DINO_TERMS):
        out["dino_loss_avg"] = out[[f"{t}_avg" for t in DINO_TERMS]].sum(axis=1, min_count=2)
    if "iter_time" in out:
        gaps = steps.diff().fillna(steps.iloc[0] + 1).clip(lower=0)
        out["time"] = (out["iter_time"].fillna(0) * gaps).cumsum()
        if "batch_size" in out:
            out["img_per_s"] = out["batch_size"] * (world_size or 1) / out["iter_time"]
    else:
        out["time"] = np.nan
    return out.reset_index(drop=True)


def infer_world_size(resolved: ResolvedDinov2Config) -> int | None:
    """Processes of a DINOv2 run from its written config: the trainer sets ``optim.lr`` =
    base_lr x sqrt(batch_per_gpu x processes / 1024), so processes = (lr / base_lr)^2 x 1024 /
    batch. None when ``optim.lr`` was not set (a config file that was not written by a run)."""
    lr, base = float(resolved.get("optim.lr") or 0), float(resolved.get("optim.base_lr") or 0)
    batch = int(resolved.get("train.batch_size_per_gpu") or 0)
    if lr <= 0 or base <= 0 or batch <= 0:
        return None
    world = (lr / base) ** 2 * 1024 / batch
    rounded = round(world)
    return rounded if rounded >= 1 and math.isclose(world, rounded, rel_tol=0.02) else None
