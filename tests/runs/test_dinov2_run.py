"""Reading a DINOv2 output directory (and a dinodiag run) into dinodiag's metric columns, and
DINOv2's schedules recomputed from its config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.dinov2_config import resolve_dinov2_config
from dinodiag.dashboard import curves
from dinodiag.errors import TrainingError
from dinodiag.runs.dinov2_metrics import (
    infer_world_size,
    read_training_metrics,
    to_dinodiag_metrics,
)
from dinodiag.runs.dinov2_run import open_run, released_pipeline
from dinodiag.runs.dinov2_schedules import expected_schedules, peak_lr, schedule_frames
from dinodiag.train.schedules import cosine_schedule
from tests.runs.dinov2_fakes import EPOCH, WORLD_SIZE, metric_rows, run_config, schedules, write_run


def test_training_metrics_lines_read_with_nan_literals_and_a_partial_last_line(tmp_path: Path):
    path = tmp_path / "training_metrics.json"
    rows = [{"iteration": 0, "total_loss": 11.0}, {"iteration": 10, "total_loss": float("nan")}]
    text = "".join(json.dumps(r) + "\n" for r in rows)  # json writes NaN as a bare literal
    path.write_text(text + "not json\n" + '{"iteration": 20, "total_lo')
    frame = read_training_metrics(path)
    assert list(frame["iteration"]) == [0, 10]  # the line being written is not read
    assert math.isnan(frame["total_loss"].iloc[1]) and frame.attrs["bad_lines"] == 1


def test_dinov2_names_map_onto_dinodiags_columns() -> None:
    raw = pd.DataFrame(metric_rows("healthy"))
    frame = to_dinodiag_metrics(raw, epoch_length=EPOCH, world_size=WORLD_SIZE)
    assert set(frame["kind"]) == {"train"}
    assert list(frame["step"][:3]) == [0, 10, 20]
    np.testing.assert_allclose(frame["epoch"], raw["iteration"] / EPOCH)
    np.testing.assert_allclose(frame["loss"], raw["total_loss"])
    np.testing.assert_allclose(
        frame["dino_loss"], raw["dino_local_crops_loss"] + raw["dino_global_crops_loss"]
    )
    np.testing.assert_allclose(frame["momentum"], raw["mom"])
    # wall time: iter_time summed over the iterations between rows (row 0 covers iteration 0)
    expected_time = raw["iter_time"].iloc[0] + 10 * raw["iter_time"].iloc[1:3].sum()
    assert frame["time"].iloc[2] == pytest.approx(expected_time)
    assert frame["img_per_s"].iloc[1] == pytest.approx(64 * WORLD_SIZE / raw["iter_time"].iloc[1])


def test_the_frame_draws_and_overlays_with_dinodiag_runs() -> None:
    ours = to_dinodiag_metrics(pd.DataFrame(metric_rows("healthy")), EPOCH, WORLD_SIZE)
    dinodiag_run = pd.DataFrame(
        {"kind": "train", "step": [0, 5], "epoch": [0, 1], "time": [0, 3], "loss": [9.0, 8.5]}
    )
    long = curves.long_frame({"dinov2": ours, "mine": dinodiag_run}, curves.PANELS["loss"])
    assert set(long["run"]) == {"dinov2", "mine"}
    assert {"dinov2 · DINO", "dinov2 · total loss", "mine · total loss"} <= set(long["series"])
    schedule = curves.long_frame({"dinov2": ours}, curves.PANELS["schedules"])
    assert set(schedule["metric"]) == {"learning rate", "weight decay", "teacher momentum"}


def test_the_number_of_processes_comes_from_the_scaled_lr() -> None:
    resolved = resolve_dinov2_config(run_config())
    assert infer_world_size(resolved) == WORLD_SIZE
    assert infer_world_size(resolve_dinov2_config({})) is None  # optim.lr 0: not written by a run


def test_a_dinov2_output_directory_opens(tmp_path: Path) -> None:
    root = write_run(tmp_path / "out", "healthy", iterations=(199, 99))
    (root / "eval" / "manual").mkdir()
    (root / "eval" / "manual" / "teacher_checkpoint.pth").write_bytes(b"")
    run = open_run(root)
    assert run.kind == "dinov2" and run.num_prototypes == 4096 and run.epoch_length == EPOCH
    assert run.world_size == WORLD_SIZE and run.notes == []
    assert [c.iteration for c in run.checkpoints] == [99, 199, None]
    assert len(run.train_rows) == 30 and "dino_loss" in run.metrics
    crops = run.pipeline
    assert (crops.local_crops_size, crops.patch_size) == (98, 14)  # config.yaml's crops
    blur = (crops.global1.blur_p, crops.global2.blur_p, crops.local.blur_p)
    assert blur == (0.0, 0.9, 0.5)  # what DINOv2's released code applies
    assert "released code" in run.recipe


def test_the_released_recipe_changes_only_blur_and_solarize() -> None:
    published = PipelineConfig()
    released = released_pipeline(published)
    for view in ("global1", "global2", "local"):
        a, b = getattr(published, view), getattr(released, view)
        assert (a.jitter_p, a.grayscale_p, a.flip_p) == (b.jitter_p, b.grayscale_p, b.flip_p)
    assert released.global2.solarize_p == 0.2 and released.global1.blur_p == 0.0


def test_missing_files_are_named_and_the_rest_still_opens(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / "training_metrics.json").write_text(
        json.dumps({"iteration": 0, "total_loss": 9}) + "\n"
    )
    run = open_run(root)
    assert run.pipeline is None and run.dinov2_config is None and run.num_prototypes == 65536
    assert any("no config.yaml" in note for note in run.notes)


def test_a_dinodiag_run_directory_opens(tmp_path: Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    (root / "config.json").write_text(
        json.dumps({"model": {"num_prototypes": 1024}, "pipeline": {"global_crops_size": 32}})
    )
    rows = [{"kind": "train", "step": s, "epoch": s / 10, "time": s, "loss": 7.0} for s in (1, 2)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = open_run(root)
    assert run.kind == "dinodiag" and run.num_prototypes == 1024
    assert run.pipeline.global_crops_size == 32 and len(run.train_rows) == 2


def test_what_is_no_run_directory_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"")
    with pytest.raises(TrainingError) as info:
        open_run(tmp_path / "photos")
    assert "photos" in str(info.value) and "training_metrics.json" in str(info.value)
    assert "cat.jpg" in str(info.value)
    with pytest.raises(TrainingError, match="does not exist"):
        open_run(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- schedules
def test_cosine_scheduler_lays_out_warmup_cosine_and_freeze_as_dinov2() -> None:
    values = cosine_schedule(1.0, 0.0, 10, 4, 0.2, layout="dinov2")
    np.testing.assert_allclose(values[:4], np.linspace(0.2, 1.0, 4))  # warm-up ends at the peak
    assert values[4] == 1.0  # the cosine starts at the peak again
    assert values[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 6)))  # not yet 0
    frozen = cosine_schedule(1.0, 0.0, 6, freeze_iters=2, layout="dinov2")
    assert list(frozen[:2]) == [0.0, 0.0] and frozen[2] == 1.0


def test_expected_schedules_match_the_trainers_values() -> None:
    config = run_config()
    resolved = resolve_dinov2_config(config)
    its = np.array([0, 1, 150, 199, 200, 500, 999, 5000])
    ours = expected_schedules(resolved, its)
    theirs = schedules(config, np.minimum(its, 999))  # written from DINOv2's formula
    np.testing.assert_allclose(ours["lr"][:-1], theirs["lr"][:-1])
    np.testing.assert_allclose(ours["wd"][:-1], theirs["wd"][:-1])
    np.testing.assert_allclose(ours["momentum"][:-1], theirs["mom"][:-1])
    np.testing.assert_allclose(ours["last_layer_lr"][:-1], theirs["last_layer_lr"][:-1])
    assert ours["lr"].iloc[-1] == config["optim"]["min_lr"]  # past the end: the final value
    temp = ours["teacher_temp"].to_numpy()
    assert temp[0] == 0.04 and temp[-1] == 0.07
    assert temp[4] == pytest.approx(0.04 + 0.03 * 200 / 299)  # linspace over 3 epochs


def test_peak_lr_scales_the_base_lr_when_the_config_was_not_written_by_a_run() -> None:
    written = resolve_dinov2_config(run_config())
    assert peak_lr(written) == pytest.approx(0.004 * math.sqrt(64 * WORLD_SIZE / 1024))
    plain = resolve_dinov2_config(yaml.safe_load("train: {batch_size_per_gpu: 256}"))
    assert peak_lr(plain) == pytest.approx(0.004 * 0.5)
    assert peak_lr(plain, world_size=4) == pytest.approx(0.004)


def test_schedule_frames_put_the_recomputed_schedules_beside_the_logged_ones() -> None:
    config = run_config()
    resolved = resolve_dinov2_config(config)
    logged = pd.DataFrame({"kind": "train", "step": [0, 100, 200], "lr": [0.0, 1e-4, 2e-4]})
    frames = schedule_frames("mine", logged, logged, resolved)
    assert list(frames) == ["mine (logged)", "config.yaml"]
    assert list(frames["config.yaml"]["step"]) == [0, 100, 200]
    assert schedule_frames("mine", logged, logged, None) == {"mine": logged}
