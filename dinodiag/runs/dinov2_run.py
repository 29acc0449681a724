"""Bring your own run: a DINOv2 output directory (or a dinodiag run) read into the frames that
dinodiag's charts, comparisons and diagnosis use.

What DINOv2's trainer leaves in ``train.output_dir`` (REFERENCE.md):

- ``training_metrics.json``: one JSON object per line, written by rank 0 every logging period
  (read and mapped onto dinodiag's columns by :mod:`dinodiag.runs.dinov2_metrics`);
- ``logs/log.txt``: the console log (:mod:`dinodiag.runs.console_log`);
- ``config.yaml``: the resolved config, ``optim.lr`` already scaled by the batch;
- ``eval/training_<iter>/teacher_checkpoint.pth`` and ``model_<iter>.rank_<r>.pth``.

:func:`open_run` tells which kind of directory it was given (DINOv2 or dinov3, DINO v1 in
:mod:`dinodiag.runs.dino_v1_run`, a dinodiag run) and reads it into an
:class:`~dinodiag.runs.opened_run.OpenedRun`:

    run = open_run("/checkpoints/dinov2_vits14")       # OpenedRun
    run.metrics[["step", "loss", "dino_loss", "lr", "momentum"]]
    run.checkpoints[-1].path                           # the latest teacher checkpoint
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from dinodiag import rundir
from dinodiag.augment.config import PipelineConfig, config_from_dict
from dinodiag.augment.dinov2_config import resolve_dinov2_config
from dinodiag.augment.presets import PRESETS, load_config
from dinodiag.errors import DinodiagError, TrainingError
from dinodiag.runs.console_log import (
    find_console_log,
    is_dino_v1_log,
    join_console,
    read_console_log,
)
from dinodiag.runs.dino_v1_run import open_dino_v1
from dinodiag.runs.dinov2_metrics import (
    METRICS_FILE,
    infer_world_size,
    read_training_metrics,
    to_dinodiag_metrics,
)
from dinodiag.runs.dinov2_sources import config_number, read_prototypes, read_recipe
from dinodiag.runs.launches import Launch, describe_launches, lineage
from dinodiag.runs.opened_run import OpenedRun
from dinodiag.train.models.load import DINOV2_CONFIG_FILE, find_checkpoints

RELEASED_PRESET = "dinov2-released"  # the photometric recipe DINOv2's released code runs


def released_pipeline(crops: PipelineConfig) -> PipelineConfig:
    """``crops`` with the photometric recipe of DINOv2's released code (blur 0 / ~0.9 / 0.5 on
    global 1 / global 2 / locals): what a run of that code drew, whatever its config says."""
    released = PRESETS[RELEASED_PRESET].config
    views = ("global1", "global2", "local")
    return crops.replace(**{name: asdict(getattr(released, name)) for name in views})


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
        return open_dino_v1(path, console, num_prototypes)
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
