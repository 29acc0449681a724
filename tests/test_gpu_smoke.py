"""A tiny training run per preset on the GPU (on-device augmentation, bf16, torch.compile), and
its CPU twin (the same runs, the on-device backend on the CPU, fp32, no compile).

The GPU runs need CUDA and are skipped without it (``bench/bench_gpu_suite.py`` runs them first
on a GPU machine); the twin always runs. Each run is a preset with only its size cut down
(batch 4, one ViT block, 2 local crops, 3 steps, small k-NN sets): its crop sizes, patch size,
prototypes, heads and losses are the preset's.
"""

from __future__ import annotations

import math

import pytest
import torch

from dinodiag import rundir
from dinodiag.recipe.config import TrainConfig
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import engine

PRESETS = ("tiny-test", "cpu-demo", "small-images", "gpu")
CUDA = torch.cuda.is_available()


def smoke_config(preset: str, *, on_gpu: bool) -> TrainConfig:
    base = get_train_preset(preset).config
    size = min(128, resolve_pipeline(base).global_crops_size)  # 224 px crops: 128 px images
    return base.with_overrides(
        {
            "data.data": f"generated:n=32,val_n=16,size={size},classes=4",
            "data.batch_size": 4,
            "data.local_crops": 2,
            "data.knn_train_max": 32,
            "data.knn_test_max": 16,
            "data.workers": 2 if on_gpu else 0,
            "data.augment_device": "device",
            "model.depth": 1,
            "run.device": "cuda" if on_gpu else "cpu",
            "run.precision": "bf16" if on_gpu else "fp32",
            "run.compile": on_gpu,
            "run.max_steps": 3,
            "run.max_seconds": None,
            "run.fit_to_time": False,
            "run.eval_every": 3,
            "run.log_every": 1,
            "run.checkpoint_every": 0,
            "run.checkpoint_seconds": 0,
            "run.threads": None if on_gpu else 1,
        }
    )


def check_run(config: TrainConfig, run_dir) -> dict:
    """Run ``config`` and check what every tiny run must show; returns its last train row."""
    result = engine.run_training(config, run_dir, progress=None)
    assert result.state == "finished" and result.step == 3, result.message
    metrics = rundir.read_metrics(run_dir)
    train = metrics[metrics["kind"] == "train"]
    evals = metrics[metrics["kind"] == "eval"]
    assert len(train) == 3 and all(math.isfinite(v) for v in train["loss"])
    assert list(evals["step"]) == [0, 3] and evals["knn_top1"].between(0, 100).all()
    last = train.iloc[-1].to_dict()
    assert last["augment_time"] > 0 and last["peak_mem_mb"] > 0
    assert 0 < last["sampled_global_scale"] <= 1
    return last


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: the CPU twin below runs the same runs")
@pytest.mark.parametrize("preset", PRESETS)
def test_gpu_smoke(tmp_path, preset):
    check_where(tmp_path / preset, smoke_config(preset, on_gpu=True), "cuda:0 (", "bf16")


# The gpu preset's twin (224 px crops, 65,536 prototypes) takes ~30 s on a CPU: the other twins
# run the same code, and test_gpu_smoke[gpu] runs that preset where it belongs.
CPU_TWINS = [pytest.param(p, marks=pytest.mark.slow) if p == "gpu" else p for p in PRESETS]


@pytest.mark.parametrize("preset", CPU_TWINS)
def test_cpu_twin(tmp_path, preset):
    check_where(tmp_path / preset, smoke_config(preset, on_gpu=False), "cpu (", "fp32")


def check_where(run_dir, config: TrainConfig, device: str, precision: str) -> None:
    """The run passes :func:`check_run`, on ``device`` in ``precision``, views made there."""
    check_run(config, run_dir)
    resolved = rundir.read_config(run_dir)["resolved"]
    assert resolved["device"].startswith(device) and precision in resolved["device"]
    assert resolved["augment_device"].startswith(device.split(" ")[0] + " (GPUMultiCrop")
