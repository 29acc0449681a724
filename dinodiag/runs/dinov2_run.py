"""Bring your own run: a DINOv2 output directory (or a dinodiag run) read into the frames that
dinodiag's charts, comparisons and diagnosis use.

What DINOv2's trainer leaves in ``train.output_dir`` (REFERENCE.md):

- ``training_metrics.json``: one JSON object per line, written by rank 0 every logging period
  (``iteration``, ``iter_time``, ``data_time``, ``lr``, ``wd``, ``mom``, ``last_layer_lr``,
  ``current_batch_size``, ``total_loss``, ``dino_local_crops_loss``,
  ``dino_global_crops_loss``, ``koleo_loss``, ``ibot_loss``; each a median over the window);
- ``config.yaml``: the resolved config, ``optim.lr`` already scaled by the batch;
- ``eval/training_<iter>/teacher_checkpoint.pth`` and ``model_<iter>.rank_<r>.pth``.

:data:`METRIC_NAMES` maps DINOv2's metric names onto the columns of dinodiag's
``metrics.jsonl`` (:mod:`dinodiag.train.rundir`), so one run's curves draw with the same
panels and overlay with dinodiag's runs:

    run = open_run("/checkpoints/dinov2_vits14")       # OpenedRun
    run.metrics[["step", "loss", "dino_loss", "lr", "momentum"]]
    run.checkpoints[-1].path                           # the latest teacher checkpoint
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dinodiag.augment.config import PipelineConfig, config_from_dict
from dinodiag.augment.dinov2_config import ResolvedDinov2Config, resolve_dinov2_config
from dinodiag.augment.presets import PRESETS, load_config
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.train import rundir
from dinodiag.train.models.load import (
    DINOV2_CONFIG_FILE,
    CheckpointFile,
    find_checkpoints,
    read_dinov2_config,
)

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
RELEASED_PRESET = "dinov2-released"  # the photometric recipe DINOv2's released code runs


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

    @property
    def name(self) -> str:
        return self.path.name or str(self.path)

    @property
    def train_rows(self) -> pd.DataFrame:
        if self.metrics.empty or "kind" not in self.metrics:
            return self.metrics
        return self.metrics[self.metrics["kind"] == "train"]


# ----------------------------------------------------------------------------- DINOv2 metrics
def read_training_metrics(path: str | Path) -> pd.DataFrame:
    """DINOv2's ``training_metrics.json`` as a frame in its own names, one row per line in file
    order. A partial last line (being written) is ignored; other unreadable lines are counted in
    ``frame.attrs["bad_lines"]``. DINOv2 writes NaN / Infinity literals; they read as floats."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TrainingError(f"cannot read {path}: {exc.strerror or exc}.") from None
    objects, bad = rundir.json_lines(text)
    rows = [{k: _number(v) for k, v in row.items()} for row in objects if "iteration" in row]
    bad += len(objects) - len(rows)  # an object without "iteration" is no metrics line
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values("iteration", kind="stable").reset_index(drop=True)
    frame.attrs["bad_lines"] = bad
    return frame


def _number(value: Any) -> Any:
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


def released_pipeline(crops: PipelineConfig) -> PipelineConfig:
    """``crops`` with the photometric recipe of DINOv2's released code (blur 0 / ~0.9 / 0.5 on
    global 1 / global 2 / locals): what a run of that code drew, whatever its config says."""
    released = PRESETS[RELEASED_PRESET].config
    views = ("global1", "global2", "local")
    return crops.replace(**{name: asdict(getattr(released, name)) for name in views})


# ----------------------------------------------------------------------------- opening
def open_run(path: str | Path) -> OpenedRun:
    """Read a DINOv2 output directory (``training_metrics.json`` / ``config.yaml`` /
    checkpoints) or a dinodiag run directory. :class:`TrainingError` naming the directory and
    the files expected when it is neither."""
    path = Path(path).expanduser()
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise TrainingError(
            f"{path} {what}: give the output directory of a DINOv2 run (holding "
            f"{METRICS_FILE} and {DINOV2_CONFIG_FILE}) or a dinodiag run directory."
        )
    dinov2_files = (METRICS_FILE, DINOV2_CONFIG_FILE, "eval")
    if any((path / name).exists() for name in dinov2_files) or list(path.glob("model_*.pth")):
        return _open_dinov2(path)
    if rundir.is_run_dir(path):
        return _open_dinodiag(path)
    present = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
    raise TrainingError(
        f"{path} is not a training run directory: it has no {METRICS_FILE} or "
        f"{DINOV2_CONFIG_FILE} (DINOv2) and no {rundir.CONFIG_FILE} or {rundir.STATUS_FILE} "
        f"(dinodiag); it holds {present}. Give the train.output_dir of your DINOv2 run."
    )


def _open_dinov2(path: Path) -> OpenedRun:
    notes: list[str] = []
    config_file = path / DINOV2_CONFIG_FILE
    resolved: ResolvedDinov2Config | None = None
    pipeline: PipelineConfig | None = None
    recipe = ""
    if config_file.is_file():
        resolved = read_dinov2_config(config_file)
        crops = load_config(config_file)
        pipeline = released_pipeline(crops).replace(name=f"{path.name} (config.yaml)")
        recipe = (
            "crops from config.yaml; photometric recipe of DINOv2's released code (blur 0 / "
            "~0.9 / 0.5 on global 1 / global 2 / locals, not the published 1.0 / 0.1 / 0.5)"
        )
    else:
        notes.append(
            f"no {DINOV2_CONFIG_FILE} in {path}: DINOv2's defaults are assumed for K "
            "(65536) and the epoch length (1250); schedules and crops cannot be checked."
        )
    defaults = resolved or resolve_dinov2_config({}, source="DINOv2 defaults")
    epoch_length = int(defaults.get("train.OFFICIAL_EPOCH_LENGTH"))
    world = infer_world_size(resolved) if resolved else None
    if resolved is not None and world is None:
        notes.append(
            "optim.lr of config.yaml is not base_lr x sqrt(batch x processes / 1024): the "
            "number of processes is unknown, images / s are per process."
        )
    metrics_file = path / METRICS_FILE
    raw = read_training_metrics(metrics_file) if metrics_file.is_file() else pd.DataFrame()
    if not metrics_file.is_file():
        notes.append(f"no {METRICS_FILE} in {path}: no curves, no diagnosis from the log.")
    elif raw.attrs.get("bad_lines"):
        notes.append(f"{raw.attrs['bad_lines']} unreadable line(s) in {metrics_file} skipped.")
    return OpenedRun(
        path=path,
        kind="dinov2",
        metrics=to_dinodiag_metrics(raw, epoch_length, world),
        checkpoints=find_checkpoints(path),
        pipeline=pipeline,
        recipe=recipe,
        num_prototypes=int(defaults.get("dino.head_n_prototypes")),
        dinov2_config=resolved,
        epoch_length=epoch_length,
        world_size=world,
        notes=notes,
    )


def _open_dinodiag(path: Path) -> OpenedRun:
    config = rundir.read_config(path) or {}
    notes = [] if config else [f"no readable {rundir.CONFIG_FILE} in {path}."]
    pipeline = None
    if isinstance(config.get("pipeline"), dict):
        try:
            pipeline = config_from_dict(config["pipeline"])
        except DinodiagError as exc:
            notes.append(f"the pipeline of {rundir.CONFIG_FILE} cannot be read: {exc}")
    k = (config.get("model") or {}).get("num_prototypes")
    return OpenedRun(
        path=path,
        kind="dinodiag",
        metrics=rundir.read_metrics(path),
        checkpoints=find_checkpoints(path),
        pipeline=pipeline,
        recipe="the pipeline the run trained with (config.json)",
        num_prototypes=int(k) if isinstance(k, int) else None,
        own_config=config or None,
        notes=notes,
    )
