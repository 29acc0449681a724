"""How a run fails: every case ends "failed" (or skips k-NN) with a message saying what to do;
bad input is refused during set-up with nothing written (``refused``: the CLI exits 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from dinodiag import rundir
from dinodiag.errors import ConfigError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import engine, loop
from dinodiag.train.losses.koleo import KoLeoLoss
from tests.facts import assert_mentions


def tiny(**overrides):
    return get_train_preset("tiny-test").config.with_overrides(overrides)


def quiet(line: str) -> None:
    pass


def test_nan_loss_stops_with_step_and_term(tmp_path, monkeypatch):
    original = KoLeoLoss.forward
    calls = {"n": 0}

    def bad_koleo(self, features):
        calls["n"] += 1
        value = original(self, features)
        return value * float("nan") if calls["n"] > 4 else value  # 2 chunks a step: step 3

    monkeypatch.setattr(KoLeoLoss, "forward", bad_koleo)
    run = tmp_path / "run"
    result = engine.run_training(tiny(**{"run.max_steps": 10}), run, progress=quiet)
    assert result.state == "failed" and result.step == 2  # step 3 never completed
    assert "koleo_loss" in result.message and "step 3" in result.message
    assert "lower the lr" in result.message
    status = rundir.read_status(run)
    assert status["state"] == "failed" and "koleo_loss" in status["message"]
    event = rundir.read_events(run).iloc[-1]
    assert event["code"] == "nonfinite_loss" and event["term"] == "koleo_loss"
    assert event["failed_step"] == 3


def test_absurd_lr_is_caught(tmp_path):
    cfg = tiny(
        **{
            "optim.base_lr": 1e30,
            "optim.lr_scaling": "none",
            "optim.clip_grad": 0.0,
            "run.max_steps": 30,
            "optim.warmup_epochs": 0.0,
        }
    )
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "failed"
    assert "NaN" in result.message or "nan" in result.message or "inf" in result.message


def test_out_of_memory_names_the_batch_size(tmp_path, monkeypatch):
    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "train_step", oom)
    result = engine.run_training(tiny(), tmp_path / "run", progress=quiet)
    assert result.state == "failed"
    assert "out of memory" in result.message and "batch of 4" in result.message
    assert "--batch-size" in result.message
    assert rundir.read_status(tmp_path / "run")["state"] == "failed"


def test_crash_is_reported_as_failed(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr(loop, "train_step", boom)
    result = engine.run_training(tiny(), tmp_path / "run", progress=quiet)
    assert result.state == "failed" and "RuntimeError: something broke" in result.message
    assert not (tmp_path / "run" / rundir.PID_FILE).exists()


def _folder_of_bad_files(root: Path) -> Path:
    for i in range(6):
        path = root / "ab"[i % 2] / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not a png at all")
    return root


# Bad inputs found during set-up: (overrides, facts of the message). {tmp} is the test's folder.
REFUSED = {
    "batch larger than the dataset": (
        {"data.data": "generated:n=3,size=16,classes=2", "data.batch_size": 4},
        ["has 3 images", "batch of 4", "--batch-size"],
    ),
    "patch size mismatch": ({"model.patch_size": 5}, ["patch size 5", "15 or 20"]),
    "missing data folder": ({"data.data": "{tmp}/nope"}, ["{tmp}/nope'", "does not exist"]),
    "missing pipeline file": (
        {"data.pipeline": "{tmp}/nope.yaml"},
        ["nope.yaml'", "does not exist"],  # a long path is shortened in the middle: its end
    ),
    "oversized crops": ({"data.global_crops_size": 8192}, ["global_crops_size = 8192"]),
    "a folder of only bad files": ({"data.data": "{tmp}/bad"}, ["{tmp}/bad", "no usable image"]),
}


@pytest.mark.parametrize("case", REFUSED)
def test_bad_input_is_refused_before_anything_is_written(tmp_path, case):
    overrides, facts = REFUSED[case]
    _folder_of_bad_files(tmp_path / "bad")
    cfg = tiny(
        **{k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in overrides.items()}
    )
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "failed" and result.refused, result.message
    assert_mentions(result.message, *(fact.format(tmp=tmp_path) for fact in facts))
    assert not (tmp_path / "run").exists()  # no half-made run directory


def test_a_refused_run_leaves_a_prepared_directory_as_it_was(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "launch.json").write_text("{}")  # made by the dashboard before the process starts
    result = engine.run_training(tiny(**{"model.patch_size": 5}), run, progress=quiet)
    assert result.refused and sorted(p.name for p in run.iterdir()) == ["launch.json"]


def test_cuda_without_a_gpu_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = engine.run_training(tiny(**{"run.device": "cuda"}), tmp_path / "run", progress=quiet)
    assert result.refused and "CUDA is not available" in result.message
    assert "--device cpu" in result.message and not (tmp_path / "run").exists()


def test_a_batch_of_one_with_koleo_is_no_config_and_runs_without_koleo(tmp_path):
    with pytest.raises(ConfigError) as info:
        tiny(**{"data.batch_size": 1})  # infinite, then NaN: refused before any run
    assert str(info.value).startswith("data.batch_size = 1: ")
    # why, and the two ways out: a larger batch or KoLeo off
    assert_mentions(str(info.value), "KoLeo", "at least 2", "optim.koleo_weight = 0")
    ok = engine.run_training(
        tiny(**{"data.batch_size": 1, "optim.koleo_weight": 0.0}), tmp_path / "run", progress=quiet
    )
    assert ok.state == "finished" and not ok.refused


def test_an_empty_validation_split_says_so(tmp_path):
    folder = tmp_path / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(2):  # 2 images a class: a folder keeps none of them for 'val'
            Image.new("RGB", (20, 20), (100 * i, 50, 90)).save(folder / label / f"{i}.png")
    cfg = tiny(**{"data.data": str(folder), "run.eval_every": 1, "data.batch_size": 2})
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "finished" and result.knn_top1 is None
    skipped = rundir.read_events(tmp_path / "run")
    message = skipped[skipped["code"] == "knn_skipped"]["message"].iloc[0]
    assert "held-out split 'val'" in message and "is empty" in message
    assert "--eval-split" in message


def test_unlabelled_dataset_skips_knn_with_an_event(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (20, 20), (30 * i, 255 - 30 * i, 90)).save(folder / f"{i}.png")
    cfg = tiny(
        **{"data.data": str(folder), "run.eval_every": 1, "data.batch_size": 2, "run.max_steps": 2}
    )
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "finished" and result.knn_top1 is None
    metrics = rundir.read_metrics(tmp_path / "run")
    assert "eval" not in set(metrics["kind"])
    skipped = metrics[metrics["code"] == "knn_skipped"]
    assert len(skipped) == 1 and "no labels" in skipped["message"].iloc[0]


def test_resume_without_checkpoint(tmp_path):
    result = engine.run_training(tiny(), tmp_path / "empty", resume=True, progress=quiet)
    assert result.state == "failed" and "no checkpoint.pt" in result.message
    assert result.refused and not (tmp_path / "empty").exists()


def test_resume_from_corrupt_checkpoint(tmp_path):
    run = tmp_path / "run"
    engine.run_training(tiny(), run, progress=quiet)
    (run / "checkpoint.pt").write_bytes(b"this is not a checkpoint")
    result = engine.run_training(tiny(), run, resume=True, progress=quiet)
    assert result.state == "failed" and "damaged" in result.message


def test_resume_with_another_model_is_refused(tmp_path):
    run = tmp_path / "run"
    engine.run_training(tiny(**{"run.max_steps": 2}), run, progress=quiet)
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    cfg = tiny(**{"run.max_steps": 4, "model.embed_dim": 64})
    result = engine.run_training(cfg, run, resume=True, progress=quiet)
    assert result.state == "failed" and "do not fit" in result.message and result.refused
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # the run is untouched


def test_alerts_are_events_once_per_episode(tmp_path, monkeypatch):
    def always_collapsed(values, k, step):
        return [
            {
                "kind": "event",
                "step": step,
                "level": "warning",
                "code": "uniform_collapse",
                "message": "uniform collapse: try a lower teacher temperature",
            }
        ]

    monkeypatch.setattr(loop, "detect_alerts", always_collapsed)
    engine.run_training(tiny(), tmp_path / "run", progress=quiet)
    events = rundir.read_events(tmp_path / "run")
    collapse = events[events["code"] == "uniform_collapse"]
    assert len(collapse) == 1 and collapse["level"].iloc[0] == "warning"
    assert "teacher temperature" in collapse["message"].iloc[0]
