"""Diagnosis rules that hold a run's log against its config and its machine: the logged
schedules against DINOv2's recomputed from ``config.yaml``
(:mod:`dinodiag.runs.dinov2_schedules`), the teacher temperature schedule (DINOv2 does not log
it), and the share of each iteration spent waiting for data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dinodiag.runs.dinov2_metrics import METRICS_FILE
from dinodiag.runs.dinov2_schedules import expected_schedules, window_range
from dinodiag.runs.findings import Finding, iteration, rows_of, span
from dinodiag.runs.opened_run import OpenedRun

LOADER_WARN = 0.5  # data_time / iter_time above this: the GPU waits for the loader
LOADER_NOTE = 0.2
DINOV2_LOG_WINDOW = 20  # DINOv2's SmoothedValue keeps the last 20 values; it logs their median
SCHEDULE_RTOL = 1e-3
MAX_TEACHER_TEMP = 0.07  # DINO / DINOv2: above it the teacher is too soft to pull (dino #61)


def schedules(run: OpenedRun) -> Finding | None:
    resolved = run.dinov2_config
    if run.kind != "dinov2" or resolved is None or run.train_rows.empty:
        return None
    rows = run.train_rows
    steps = pd.to_numeric(rows["step"], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(steps)
    its = steps[keep].astype(np.int64)
    low, high = window_range(resolved, its, DINOV2_LOG_WINDOW, run.world_size)
    problems, checked = [], []
    # the console log prints 4 decimals: read from it alone, a value is only known to 5e-5
    atol = 1e-12 if METRICS_FILE in run.sources.get("log", METRICS_FILE) else 5e-5
    for column in ("lr", "wd", "momentum", "last_layer_lr"):
        if column not in rows:
            continue
        logged = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)[keep]
        tol = SCHEDULE_RTOL * np.maximum(np.abs(high[column].to_numpy()), 1e-12) + atol
        outside = np.isfinite(logged) & (
            (logged < low[column].to_numpy() - tol) | (logged > high[column].to_numpy() + tol)
        )
        checked.append(column)
        if outside.any():
            i = int(np.argmax(outside))
            lo, hi = low[column].iloc[i], high[column].iloc[i]
            ratio = f", x{logged[i] / hi:.2f}" if hi > 0 else ""
            problems.append(
                f"{column} {logged[i]:.4g} at {iteration(its[i])} where {resolved.source} gives "
                f"{lo:.4g}-{hi:.4g} over the window ending there{ratio} "
                f"({int(outside.sum())} of {len(its)} rows off)"
            )
    if not checked:
        return None
    if not problems:
        return Finding(
            "pass",
            "schedules",
            "The logged schedules follow config.yaml",
            f"{', '.join(checked)} match DINOv2's schedules recomputed from "
            f"{resolved.source} at all {len(its)} logged iterations (within the "
            f"{DINOV2_LOG_WINDOW}-iteration median window).",
        )
    return Finding(
        "warn",
        "schedules",
        "The logged schedules differ from what config.yaml gives",
        "; ".join(problems) + ".",
        "The run did not train with the schedules its config.yaml describes: a changed "
        "number of GPUs (the lr scales with sqrt(batch x GPUs)), a resumed run with other "
        "epochs or OFFICIAL_EPOCH_LENGTH, or code that sets them itself. Compare optim.lr, "
        "optim.epochs and train.OFFICIAL_EPOCH_LENGTH with what you launched.",
    )


def teacher_temp(run: OpenedRun) -> Finding | None:
    resolved = run.dinov2_config
    if run.kind != "dinov2" or resolved is None:
        return None
    start = float(resolved.get("teacher.warmup_teacher_temp"))
    end = float(resolved.get("teacher.teacher_temp"))
    warm = float(resolved.get("teacher.warmup_teacher_temp_epochs"))
    epochs = float(resolved.get("optim.epochs"))
    steps = pd.to_numeric(run.train_rows.get("step"), errors="coerce").dropna()
    at_text = ""
    if len(steps):
        last = int(steps.max())
        value = float(expected_schedules(resolved, np.array([last]))["teacher_temp"].iloc[0])
        at_text = f"; {value:.4g} at {iteration(last)}, the last logged"
    evidence = (
        f"teacher temperature {start:g} -> {end:g} over {warm:g} epochs of {epochs:g} "
        f"(recomputed from {resolved.source}: DINOv2 does not log it){at_text}."
    )
    if max(start, end) > MAX_TEACHER_TEMP:
        return Finding(
            "warn",
            "teacher_temp",
            "The teacher temperature is above 0.07",
            evidence,
            "A soft teacher gives the student little to learn from and the loss barely falls "
            "(dino #61): keep teacher.teacher_temp <= 0.07 and warm up from 0.04.",
        )
    if warm > epochs:
        return Finding(
            "info",
            "teacher_temp",
            "The teacher temperature never reaches its final value",
            evidence,
            "teacher.warmup_teacher_temp_epochs is longer than optim.epochs: shorten it "
            "(DINOv2: 30 of 100 epochs) if the end value matters.",
        )
    return Finding(
        "pass", "teacher_temp", "The teacher temperature stays in DINOv2's range", evidence
    )


def loader_bound(run: OpenedRun) -> Finding | None:
    data, total = rows_of(run, "data_time").dropna(), rows_of(run, "iter_time").dropna()
    if len(data) < 2 or len(total) < 2:
        return None
    data, total = data.iloc[1:], total.iloc[1:]  # the first row holds the start-up
    median_data, median_total = float(data["value"].median()), float(total["value"].median())
    if median_total <= 0:
        return None
    share = median_data / median_total
    evidence = (
        f"median data_time {median_data:.3f} s of iter_time {median_total:.3f} s "
        f"({100 * share:.0f}%) over {span(total)}."
    )
    advice = (
        "The GPU waits for images. Raise train.num_workers, keep the data on local fast storage "
        "(or train.cache_dataset), decode smaller JPEGs, or move the augmentation to the GPU "
        "(dinodiag.augment.gpu); `python -m dinodiag stats` times the pipeline alone."
    )
    if share >= LOADER_WARN:
        return Finding(
            "warn",
            "loader_bound",
            "Loader-bound: most of each iteration waits for data",
            evidence,
            advice,
        )
    if share >= LOADER_NOTE:
        return Finding(
            "info",
            "loader_bound",
            "A noticeable part of each iteration waits for data",
            evidence,
            advice,
        )
    return Finding("pass", "loader_bound", "The loader keeps up", evidence)
