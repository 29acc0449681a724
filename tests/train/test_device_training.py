"""The on-device backend in training against the CPU path, its reference for semantics.

Both backends on a CPU (the on-device code runs on any torch device): the same view shapes and
parameter distributions (two-sample KS tests, as tests/augment/gpu/test_multicrop.py), and both
train (finite losses, k-NN computed), resume exactly and log what they sampled.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import ks_critical, ks_statistic

from dinodiag import rundir
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import get_preset
from dinodiag.data import open_dataset
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import engine
from dinodiag.train.augment_backend import describe_augmentation
from dinodiag.train.data import SAMPLED_KEYS, MaskSpec, MultiCropDataset, build_train_loader
from dinodiag.train.device_augment import DeviceAugment
from dinodiag.train.device_batches import build_device_loader
from tests.facts import assert_mentions

PIPELINE = get_preset("dinov2").config.replace(
    global_crops_size=32, local_crops_size=16, local_crops_number=4
)
MASK = MaskSpec((8, 8), 0.5, (0.1, 0.5))
CPU = torch.device("cpu")


def quiet(line: str) -> None:
    pass


def tiny(**overrides):
    return get_train_preset("tiny-test").config.with_overrides(overrides)


@pytest.fixture(scope="module")
def dataset():
    return open_dataset("generated:n=200,val_n=8,size=48,classes=4")


def _device_batches(dataset, epochs: int = 1):
    config = tiny(**{"data.batch_size": 20})
    loader, sampler, _ = build_device_loader(
        config, PIPELINE, dataset, mask=MASK, world_size=1, rank=0, pin_memory=False
    )
    augment = DeviceAugment(PIPELINE, CPU)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            out = augment(batch)
            yield batch, out, augment.last_params


def test_both_backends_make_the_same_view_shapes(dataset):
    loader, _ = build_train_loader(dataset, PIPELINE, batch_size=20, seed=0, mask=MASK, workers=0)
    cpu = next(iter(loader))
    _, ours, _ = next(_device_batches(dataset))
    for key in ("global_crops", "local_crops", "masks", "indices"):
        assert ours[key].shape == cpu[key].shape, key
        assert ours[key].dtype == cpu[key].dtype, key
    assert torch.equal(ours["indices"], cpu["indices"])  # the same images in the same batch
    for key in ("global_crops", "local_crops"):  # normalised alike: means within 0.3 std
        assert abs(float(ours[key].mean() - cpu[key].mean())) < 0.3, key


def test_both_backends_sample_the_same_parameter_distributions(dataset):
    cpu_set = MultiCropDataset(dataset, PIPELINE, seed=0)
    cpu_set.pipeline = build_pipeline(PIPELINE, record=True)  # the same draws, recorded
    cpu_records = [r for i in range(len(dataset)) for r in cpu_set[(0, i)][0].records]
    rows = {"scale": [], "ratio": [], "global": [], "flip": [], "blur": []}
    for batch, _, params in _device_batches(dataset, epochs=1):
        sizes = torch.tensor(batch["sizes"].tolist(), dtype=torch.float64)[params.sample]
        rows["scale"].append(params.box[:, 2] * params.box[:, 3] / (sizes[:, 0] * sizes[:, 1]))
        rows["ratio"].append(params.box[:, 2] / params.box[:, 3])
        rows["global"].append(params.slot < PIPELINE.global_crops_number)
        rows["flip"].append(params.flip)
        rows["blur"].append(params.blur)
    ours = {k: torch.cat(v).numpy() for k, v in rows.items()}
    for group, is_global in (("global", True), ("local", False)):
        mine = ours["global"] == is_global
        theirs = [r for r in cpu_records if r.group == group]
        assert mine.sum() == len(theirs) > 0
        for name in ("scale", "ratio"):
            a = ours[name][mine]
            b = np.array([getattr(r, name) for r in theirs])
            assert ks_statistic(a, b) < ks_critical(len(a), len(b)), (group, name)
        for name in ("flip", "blur"):
            p = float(np.mean([getattr(r, name) for r in theirs]))
            rate = float(ours[name][mine].mean())
            n = int(mine.sum())
            assert abs(rate - p) <= 4 * math.sqrt(max(p * (1 - p), 0.01) / n), (group, name)


@pytest.mark.parametrize("where", ["cpu", "device"])
def test_both_backends_train_and_evaluate(tmp_path, where):
    run = tmp_path / where
    cfg = tiny(**{"data.augment_device": where, "run.max_steps": 4, "run.eval_every": 2})
    result = engine.run_training(cfg, run, progress=quiet)
    assert result.state == "finished" and result.step == 4, result.message
    metrics = rundir.read_metrics(run)
    train = metrics[metrics["kind"] == "train"]
    evals = metrics[metrics["kind"] == "eval"]
    assert np.isfinite(train["loss"]).all() and len(train) == 4
    assert list(evals["step"]) == [0, 2, 4] and evals["knn_top1"].between(0, 100).all()
    assert (train["data_time"] >= 0).all() and (train["iter_time"].dropna() > 0).all()
    config = rundir.read_config(run)
    assert set(SAMPLED_KEYS) <= set(train.columns)  # both backends log what they sampled
    assert train["sampled_global_scale"].between(*PIPELINE.global_crops_scale).all()
    assert train["sampled_local_scale"].between(*PIPELINE.local_crops_scale).all()
    if where == "device":
        assert config["resolved"]["augment_device"].startswith("cpu (GPUMultiCrop")
        assert (train["augment_time"] > 0).all()
    else:
        assert config["resolved"]["augment_device"] == describe_augmentation(None, None)


def test_the_device_backend_resumes_exactly(tmp_path):
    cfg = tiny(**{"data.augment_device": "device", "run.max_steps": 4, "run.eval_every": 0})
    straight = tmp_path / "straight"
    assert engine.run_training(cfg, straight, progress=quiet).state == "finished"
    run = tmp_path / "resumed"

    def stop_at_two(step: int) -> None:
        if step == 2:
            rundir.request_stop(run)

    assert engine.run_training(cfg, run, progress=quiet, on_step=stop_at_two).step == 2
    assert engine.run_training(cfg, run, resume=True, progress=quiet).step == 4
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["student"]
    b = torch.load(run / "checkpoint.pt", weights_only=True)["student"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_a_decode_cache_on_the_cpu_path_is_reported_not_ignored(tmp_path):
    cfg = tiny(**{"data.augment_device": "cpu", "data.decode_cache_gb": 1, "run.max_steps": 1})
    run = tmp_path / "run"
    assert engine.run_training(cfg, run, progress=quiet).state == "finished"
    metrics = rundir.read_metrics(run)
    events = metrics[metrics["code"] == "decode_cache"]
    assert len(events) == 1 and "on-device augmentation only" in events["message"].iloc[0]


def test_a_decode_cache_on_the_device_path_says_what_it_holds(tmp_path):
    cfg = tiny(**{"data.augment_device": "device", "data.decode_cache_gb": 1, "run.max_steps": 1})
    run = tmp_path / "run"
    assert engine.run_training(cfg, run, progress=quiet).state == "finished"
    metrics = rundir.read_metrics(run)
    message = metrics[metrics["code"] == "decode_cache"]["message"].iloc[0]
    assert "64 of 64 images" in message


def test_cuda_augmentation_while_training_on_the_cpu_is_refused(tmp_path):
    cfg = tiny(**{"data.augment_device": "cuda", "run.device": "cpu"})
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.refused
    assert_mentions(result.message, "--augment-device cuda ", "trains on cpu")
    assert not (tmp_path / "run").exists()
