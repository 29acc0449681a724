"""A DINO v1 output directory (``main_dino.py``'s ``log.txt``: one JSON object per epoch) read
as an :class:`~dinodiag.runs.opened_run.OpenedRun`, for :func:`dinodiag.runs.dinov2_run.open_run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dinodiag import rundir
from dinodiag.runs.dinov2_metrics import log_number
from dinodiag.runs.opened_run import OpenedRun


def open_dino_v1(path: Path, log_file: Path, k_override: int | None) -> OpenedRun:
    """DINO v1's output directory: ``log.txt`` with one JSON object per epoch (``epoch``,
    ``train_loss``, ``train_lr``, ``train_wd``). Steps are epochs; K is DINO v1's default
    ``out_dim`` 65536 unless given (its checkpoint.pth pickles the arguments: not unpickled)."""
    text = log_file.read_text(encoding="utf-8", errors="replace")
    objects, bad = rundir.json_lines(text if text.endswith("\n") else text + "\n")
    rows = [
        {k: log_number(v) for k, v in o.items()}
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
