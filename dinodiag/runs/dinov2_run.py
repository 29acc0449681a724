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
``metrics.jsonl`` (:mod:`dinodiag.rundir`), so one run's curves draw with the same
panels and overlay with dinodiag's runs:

    run = open_run("/checkpoints/dinov2_vits14")       # OpenedRun
    run.metrics[["step", "loss", "dino_loss", "lr", "momentum"]]
    run.checkpoints[-1].path                           # the latest teacher checkpoint
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dinodiag import rundir
from dinodiag.augment.config import PipelineConfig, config_from_dict
from dinodiag.augment.dinov2_config import ResolvedDinov2Config, resolve_dinov2_config
from dinodiag.augment.presets import PRESETS, load_config
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.runs.console_log import (
    ConsoleLog,
    find_console_log,
    is_dino_v1_log,
    join_console,
    read_console_log,
)
from dinodiag.runs.dinov2_sources import config_number, read_prototypes, read_recipe
from dinodiag.runs.launches import (
    RUNNING_SECONDS,
    Launch,
    describe_launches,
    launch_ids,
    lineage,
)
from dinodiag.train.models.load import (
    DINOV2_CONFIG_FILE,
    CheckpointFile,
    find_checkpoints,
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
    rows, where = [], []
    for number, row in enumerate(objects, start=1):
        if "iteration" not in row:
            continue
        value = _number(row["iteration"])
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            where.append(f"row {number}: iteration {str(value)[:40]!r}")
            continue
        rows.append({k: _number(v) for k, v in row.items()})
    bad += len(objects) - len(rows)  # an object without a numeric "iteration" is no metrics line
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["iteration"] = pd.to_numeric(frame["iteration"], errors="coerce")
        frame["launch"] = launch_ids(frame["iteration"].to_numpy(dtype=float))
    frame.attrs["bad_lines"] = bad
    frame.attrs["bad_iterations"] = where[:3]
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


def released_pipeline(crops: PipelineConfig) -> PipelineConfig:
    """``crops`` with the photometric recipe of DINOv2's released code (blur 0 / ~0.9 / 0.5 on
    global 1 / global 2 / locals): what a run of that code drew, whatever its config says."""
    released = PRESETS[RELEASED_PRESET].config
    views = ("global1", "global2", "local")
    return crops.replace(**{name: asdict(getattr(released, name)) for name in views})


# ----------------------------------------------------------------------------- freshness
STAMPED = (METRICS_FILE, "logs/log.txt", "log.txt", "config.yaml", "metrics.jsonl", "config.json")


def run_stamp(path: str | Path) -> tuple[float, ...]:
    """Modification times of the files a run is read from (0 for a missing one): a changed
    stamp means the log grew and the run is read again (the page's cache, ``--follow``)."""
    path = Path(path)
    names = (*STAMPED, "eval")
    return tuple((path / n).stat().st_mtime if (path / n).exists() else 0.0 for n in names)


def log_is_growing(path: str | Path, now: float | None = None) -> bool:
    """A file of the run was written within :data:`~dinodiag.runs.launches.RUNNING_SECONDS`:
    it may still be training, so its report is re-read."""
    newest = max(run_stamp(path), default=0.0)
    return newest > 0 and (now if now is not None else time.time()) - newest < RUNNING_SECONDS


# ----------------------------------------------------------------------------- opening
DINOV3_SECTIONS = ("gram", "distillation", "multidistillation")  # sections only dinov3 has


def open_run(
    path: str | Path, *, launch: int | None = None, num_prototypes: int | None = None
) -> OpenedRun:
    """Read a DINOv2 (or dinov3) output directory (``training_metrics.json``,
    ``logs/log.txt``, ``config.yaml``, checkpoints), a DINO v1 one (``log.txt`` of JSON epochs)
    or a dinodiag run directory. ``launch`` picks the launch of an appended log to diagnose
    (0-based; default the last); ``num_prototypes`` overrides K wherever it was read.
    :class:`TrainingError` naming the directory and the files expected when it is none."""
    path = Path(path).expanduser()
    if not path.is_dir():
        what = "is a file" if path.exists() else "does not exist"
        raise TrainingError(
            f"{path} {what}: give the output directory of a DINOv2 run (holding "
            f"{METRICS_FILE}, logs/log.txt or {DINOV2_CONFIG_FILE}) or a dinodiag run directory."
        )
    console = find_console_log(path)
    if console is not None and is_dino_v1_log(console) and not (path / METRICS_FILE).exists():
        return _open_dino_v1(path, console, num_prototypes)
    dinov2_files = (METRICS_FILE, DINOV2_CONFIG_FILE, "eval")
    if (
        any((path / name).exists() for name in dinov2_files)
        or list(path.glob("model_*.pth"))
        or console is not None
    ):
        return _open_dinov2(path, console, launch, num_prototypes)
    if rundir.is_run_dir(path):
        return _open_dinodiag(path)
    present = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
    raise TrainingError(
        f"{path} is not a training run directory: it has no {METRICS_FILE}, logs/log.txt or "
        f"{DINOV2_CONFIG_FILE} (DINOv2) and no {rundir.CONFIG_FILE} or {rundir.STATUS_FILE} "
        f"(dinodiag); it holds {present}. Give the train.output_dir of your DINOv2 run."
    )


def _open_dinov2(
    path: Path, console_file: Path | None, launch: int | None, k_override: int | None
) -> OpenedRun:
    notes: list[str] = []
    sources: dict[str, str] = {}
    console = read_console_log(console_file) if console_file is not None else None
    if console is not None:
        notes += console.notes
    resolved, config_source = read_recipe(path, console)
    pipeline: PipelineConfig | None = None
    recipe = ""
    if resolved is not None and config_source == DINOV2_CONFIG_FILE:
        crops = load_config(path / DINOV2_CONFIG_FILE)
        pipeline = released_pipeline(crops).replace(name=f"{path.name} (config.yaml)")
        recipe = (
            "crops from config.yaml; photometric recipe of DINOv2's released code (blur 0 / "
            "~0.9 / 0.5 on global 1 / global 2 / locals, not the published 1.0 / 0.1 / 0.5)"
        )
    elif resolved is not None:
        notes.append(f"no {DINOV2_CONFIG_FILE} in {path}: the recipe is read from {config_source}.")
    else:
        notes.append(
            f"no {DINOV2_CONFIG_FILE} in {path} and no config echo in a log.txt: DINOv2's "
            "defaults are assumed for the epoch length (1250); schedules and crops cannot be "
            "checked."
        )
    defaults = resolved or resolve_dinov2_config({}, source="DINOv2 defaults")
    epoch_length = config_number(defaults, "train.OFFICIAL_EPOCH_LENGTH", int)
    planned_total = None
    if resolved is not None:
        planned_total = config_number(resolved, "optim.epochs", int) * epoch_length
    sources["recipe"] = config_source or "DINOv2's defaults (assumed)"
    world = infer_world_size(resolved) if resolved else None
    if resolved is not None and world is None:
        notes.append(
            f"optim.lr of {config_source} is not base_lr x sqrt(batch x processes / 1024): "
            "the number of processes is unknown, images / s are per process."
        )
    checkpoints = find_checkpoints(path)
    k, sources["num_prototypes"] = read_prototypes(
        k_override, resolved, config_source, console, checkpoints
    )
    if sources["num_prototypes"].startswith("DINOv2's default"):
        notes.append(
            "K (dino.head_n_prototypes) is not in any file here: DINOv2's default 65536 is "
            "assumed (ln K = 11.09); give --num-prototypes if your run used another."
        )
    metrics_file = path / METRICS_FILE
    raw = read_training_metrics(metrics_file) if metrics_file.is_file() else pd.DataFrame()
    read = []
    if metrics_file.is_file():
        read.append(METRICS_FILE)
        if raw.attrs.get("bad_lines"):
            examples = "; ".join(raw.attrs.get("bad_iterations", []))
            notes.append(
                f"{raw.attrs['bad_lines']} unreadable line(s) in {metrics_file} skipped"
                + (f" ({examples})." if examples else ".")
            )
    if console is not None:
        read.append(str(console.path.relative_to(path)))
        raw = join_console(raw, console, notes)
    if not read:
        notes.append(f"no {METRICS_FILE} or log.txt in {path}: no curves, no diagnosis.")
    sources["log"] = " + ".join(read) or "none"
    launches = describe_launches(
        raw,
        planned_total=planned_total,
        nan_lines=console.nan_lines if console else (),
        total_time_lines=console.total_time_lines if console else (),
        start_lines=[line for line, _ in console.launch_starts] if console else (),
        console=console is not None,
        log_file=max(
            (p for p in (metrics_file, console_file) if p is not None and p.exists()),
            key=lambda p: p.stat().st_mtime,
            default=None,
        ),
    )
    chosen = _choose_launch(launches, launch, path)
    rows = lineage(raw, chosen) if chosen is not None else raw
    flavour = "dinov2"
    if resolved is not None and any(s in resolved.values for s in DINOV3_SECTIONS):
        flavour = "dinov3"
        notes.append(
            "a dinov3 config (gram / distillation sections): its log is read as DINOv2's (same "
            "logger and loss names); the ln K level assumes DINOv2's loss normalisation."
        )
    return OpenedRun(
        path=path,
        kind="dinov2",
        metrics=to_dinodiag_metrics(rows, epoch_length, world),
        checkpoints=checkpoints,
        pipeline=pipeline,
        recipe=recipe,
        num_prototypes=k,
        dinov2_config=resolved,
        epoch_length=epoch_length,
        world_size=world,
        notes=notes,
        launches=launches,
        launch=chosen,
        sources=sources,
        console=console,
        flavour=flavour,
        planned_iterations=launches[chosen].planned if chosen is not None else planned_total,
    )


def _choose_launch(launches: list[Launch], launch: int | None, path: Path) -> int | None:
    if not launches:
        return None
    if launch is None:
        return launches[-1].index
    if not 0 <= launch < len(launches):
        raise TrainingError(
            f"{path} has {len(launches)} launch(es) in its log: choose --launch 1 to "
            f"{len(launches)}, not {launch + 1}."
        )
    return launch


def _open_dino_v1(path: Path, log_file: Path, k_override: int | None) -> OpenedRun:
    """DINO v1's output directory: ``log.txt`` with one JSON object per epoch (``epoch``,
    ``train_loss``, ``train_lr``, ``train_wd``). Steps are epochs; K is DINO v1's default
    ``out_dim`` 65536 unless given (its checkpoint.pth pickles the arguments: not unpickled)."""
    text = log_file.read_text(encoding="utf-8", errors="replace")
    objects, bad = rundir.json_lines(text if text.endswith("\n") else text + "\n")
    rows = [
        {k: _number(v) for k, v in o.items()}
        for o in objects
        if isinstance(o.get("epoch"), (int, float))
    ]
    frame = pd.DataFrame(rows)
    metrics = pd.DataFrame(columns=["kind", "step", "epoch", "time"])
    if not frame.empty:
        epochs = pd.to_numeric(frame["epoch"], errors="coerce")
        metrics = pd.DataFrame({"kind": "train", "step": epochs.astype("Int64"), "epoch": epochs})
        metrics["time"] = np.nan
        for source, target in (("train_loss", "loss"), ("train_lr", "lr"), ("train_wd", "wd")):
            if source in frame:
                metrics[target] = pd.to_numeric(frame[source], errors="coerce")
        if "loss" in metrics:
            metrics["dino_loss"] = metrics["loss"]  # DINO v1's loss is the DINO loss alone
    notes = [
        "a DINO v1 output directory (main_dino.py's log.txt, one row per epoch): steps are "
        "epochs; checkpoint.pth pickles its arguments and is not read.",
    ]
    if bad:
        notes.append(f"{bad} unreadable line(s) in {log_file} skipped.")
    source = "--num-prototypes" if k_override is not None else "DINO v1's default out_dim"
    return OpenedRun(
        path=path,
        kind="dinov2",
        metrics=metrics,
        checkpoints=[],
        pipeline=None,
        recipe="",
        num_prototypes=int(k_override) if k_override is not None else 65536,
        epoch_length=1,
        notes=notes,
        sources={"log": log_file.name, "num_prototypes": source, "recipe": "none"},
        flavour="dino",
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
