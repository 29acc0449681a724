"""Fake finished run directories with k-NN rows only (status, config, metrics), for the
training page's k-NN-against-noise tests (AppTest and browser): nothing trains."""

from __future__ import annotations

import json
from pathlib import Path

# run id -> k-NN top-1 per evaluation (every 100 steps)
NOISE = "20260101-000000-noise"  # +0.2 points on 1000 images: within the noise
LEARNING = "20260101-000001-learning"  # +12.4 points on 1000 images: beyond it
SINGLE = "20260101-000002-single"  # one evaluation: step 0 only
FAKES = {NOISE: [14.0, 14.1, 14.2], LEARNING: [14.0, 20.0, 26.4], SINGLE: [14.0]}


def fake_run(root: Path, run_id: str, values: list[float], test: int = 1000) -> Path:
    """A finished run directory as the engine leaves it, with k-NN rows and one loss row."""
    path = root / run_id
    path.mkdir(parents=True)
    steps = 100 * (len(values) - 1)
    status = {"state": "finished", "message": "done", "step": steps, "total_steps": steps or 1}
    (path / "status.json").write_text(json.dumps(status))
    (path / "config.json").write_text(json.dumps({"name": "cpu-demo", "model": {}}))
    rows = [
        {"kind": "eval", "step": 100 * i, "time": 10.0 * i + 1, "knn_top1": v, "knn_test": test}
        for i, v in enumerate(values)
    ]
    rows += [{"kind": "train", "step": max(1, steps), "time": 10.0 * len(values), "loss": 5.0}]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def fake_runs(root: Path) -> dict[str, Path]:
    """Every run of :data:`FAKES` under ``root``."""
    return {run_id: fake_run(root, run_id, values) for run_id, values in FAKES.items()}
