"""Several runs side by side: the runs table, the differences of their configs, the numbers
read from a metrics frame (the seed story's verdict: ``runs/story.py``).

    infos = runs.list_runs()
    runs_table(infos)                               # one row per run, best k-NN, time ...
    config_diff({i.run_id: rundir.read_config(i.path) for i in infos[:2]})
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dinodiag import rundir
from dinodiag.printable import duration
from dinodiag.rundir import RunInfo

TABLE_COLUMNS = [
    "run",
    "state",
    "pipeline",
    "preset",
    "data",
    "steps",
    "k-NN start (%)",
    "best k-NN (%)",
    "last k-NN (%)",
    "time",
    "message",
]


def metrics_summary(frame: pd.DataFrame) -> dict[str, float | None]:
    """Best / first / last k-NN top-1, last loss and elapsed seconds of a metrics frame."""

    def column(kind: str, name: str) -> pd.Series:
        if frame.empty or name not in frame:
            return pd.Series(dtype=float)
        return pd.to_numeric(frame.loc[frame["kind"] == kind, name], errors="coerce").dropna()

    knn, loss = column("eval", "knn_top1"), column("train", "loss")
    times = pd.to_numeric(frame["time"], errors="coerce").dropna() if "time" in frame else []
    return {
        "knn_start": float(knn.iloc[0]) if len(knn) else None,
        "knn_best": float(knn.max()) if len(knn) else None,
        "knn_last": float(knn.iloc[-1]) if len(knn) else None,
        "loss_last": float(loss.iloc[-1]) if len(loss) else None,
        "elapsed": float(max(times)) if len(times) else None,
    }


def runs_table(
    infos: Sequence[RunInfo], metrics: Mapping[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """One row per run (newest first): id, state, pipeline, preset, dataset, steps, k-NN at
    step 0 / best / last, training time and the status message. ``metrics`` maps run ids to
    their metrics frames (read from disk when missing)."""
    rows = []
    for info in infos:
        frame = (metrics or {}).get(info.run_id)
        if frame is None:
            frame = rundir.read_metrics(info.path)
        summary = metrics_summary(frame)
        total = f"/{info.total_steps}" if info.total_steps else ""
        rows.append(
            {
                "run": info.run_id,
                "state": info.state,
                "pipeline": info.pipeline or "–",
                "preset": info.preset or "–",
                "data": info.data or "–",
                "steps": f"{info.step}{total}",
                "k-NN start (%)": summary["knn_start"],
                "best k-NN (%)": summary["knn_best"],
                "last k-NN (%)": summary["knn_last"],
                "time": duration(summary["elapsed"]),
                "message": info.message,
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def flatten_dict(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"arch": "vit_tiny"}}`` -> ``{"model.arch": "vit_tiny"}``; lists as text."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_dict(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        else:
            flat[name] = value
    return flat


def config_diff(configs: Mapping[str, Mapping[str, Any] | None]) -> pd.DataFrame:
    """The config fields that differ between runs: index = field (``optim.base_lr``), one
    column per run, values as text ("–" where a run lacks the field, "none" for null)."""
    flat = {run: flatten_dict(cfg or {}) for run, cfg in configs.items()}
    keys = sorted({key for values in flat.values() for key in values})
    rows = {}
    for key in keys:
        values = [values.get(key, "–") for values in flat.values()]
        if len({repr(v) for v in values}) > 1:
            rows[key] = ["none" if v is None else str(v) for v in values]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(flat))
    frame.index.name = "field"
    return frame


def metrics_json(run_dir: str | Path) -> str:
    """Every metrics row of a run as a JSON array (for a download)."""
    frame = rundir.read_metrics(run_dir)
    return json.dumps(json.loads(frame.to_json(orient="records")), indent=1)
