"""``open-run``: the report (diagnosis, crop check, checkpoint evaluation, k-NN per checkpoint)
and the command's exit codes (0 ok, 1 a finding or check failed, 2 bad input naming the file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dinodiag.cli import main
from dinodiag.data import open_dataset
from dinodiag.errors import TrainingError
from dinodiag.runs.checkpoint_eval import (
    evaluate,
    evaluate_checkpoints,
    inspect,
    knn_frame,
    open_eval_data,
)
from dinodiag.runs.dinov2_run import open_run
from dinodiag.runs.run_report import build_report, check_crops, choose_checkpoints
from dinodiag.train.models.load import load_backbone
from tests.facts import assert_mentions
from tests.runs.dinov2_fakes import write_run


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A patch-16 run (DINOv2's default 96 px locals): two teacher checkpoints."""
    return write_run(tmp_path_factory.mktemp("runs") / "healthy", "healthy", patch=16)


@pytest.fixture(scope="module")
def sample_data():
    return open_eval_data("sample")


def test_the_crop_config_is_checked_with_the_released_photometry(healthy: Path) -> None:
    run = open_run(healthy)
    dataset = open_dataset("sample", split="all")
    report = check_crops(run, dataset, samples=4)
    assert report.pipeline == "healthy (config.yaml)" and report.verdict != "fail"
    assert report.by_id("view_sizes").status == "pass"
    assert report.by_id("patch_multiple").status == "pass"


def test_a_patch14_run_passes_view_sizes_against_dinov2s_size_variant(tmp_path: Path) -> None:
    """DINOv2's patch-14 configs (98 px locals, vitl14.yaml) are DINOv2's own: not a failure."""
    run = open_run(write_run(tmp_path / "p14", "healthy", patch=14, iterations=(99,)))
    report = check_crops(run, open_dataset("sample", split="all"), samples=4)
    assert report.by_id("view_sizes").status == "pass", report.by_id("view_sizes")
    assert report.verdict != "fail"


def test_choose_checkpoints(healthy: Path) -> None:
    run = open_run(healthy)
    assert [c.iteration for c in choose_checkpoints(run, "latest")] == [199]
    assert [c.iteration for c in choose_checkpoints(run, "all")] == [99, 199]
    assert choose_checkpoints(run, "none") == []
    assert [c.iteration for c in choose_checkpoints(run, "99")] == [99]
    with pytest.raises(TrainingError, match="iterations 99, 199"):
        choose_checkpoints(run, "5")
    with pytest.raises(TrainingError, match="not one of latest, all, none"):
        choose_checkpoints(run, "newest")


def test_a_checkpoint_evaluates_on_the_sample_images(healthy: Path, sample_data) -> None:
    backbone = load_backbone(healthy)
    result = evaluate(backbone, sample_data)
    bank, test = len(sample_data.bank), len(sample_data.test)
    assert result.iteration == 199 and result.images == bank + test and result.image_size == 224
    assert 0.0 <= result.knn_top1 <= 100.0 and result.knn_k == min(20, bank)
    assert 1.0 <= result.effective_rank <= result.images and 0 < result.feature_std < 1
    assert result.note == ""
    picture = inspect(backbone, sample_data.bank[0][0])
    assert picture.attention.shape == (6, 14, 14)  # 6 heads over the 224 / 16 patch grid


def test_knn_per_checkpoint_is_a_curve_over_iterations(healthy: Path, sample_data) -> None:
    run = open_run(healthy)
    results = evaluate_checkpoints(choose_checkpoints(run, "all"), sample_data)
    frame = knn_frame(results)
    assert list(frame["step"]) == [99, 199] and set(frame["kind"]) == {"eval"}
    assert frame["knn_top1"].notna().all()
    # different weights give different features: the curve is not one checkpoint twice
    assert frame["mean_cosine"].iloc[0] != frame["mean_cosine"].iloc[1]


def test_an_unlabelled_folder_evaluates_spread_without_knn(tmp_path: Path, healthy: Path) -> None:
    from PIL import Image

    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (64, 48), (60 * i, 20, 200 - 40 * i)).save(folder / f"{i}.png")
    data = open_eval_data(str(folder))
    assert "no labels" in data.skip_reason
    result = evaluate(load_backbone(healthy), data)
    assert result.knn_top1 is None and "no labels" in result.note and result.images >= 3


def test_the_report_as_text_and_json(healthy: Path, sample_data) -> None:
    report = build_report(healthy, checkpoints="latest", samples=4, eval_data=sample_data)
    text = report.to_text()
    assert "run:         " in text and "(DINOv2 output directory)" in text
    collapse = {f.code: f for f in report.findings}["uniform_collapse"]
    assert collapse.level == "pass" and f"[PASS] {collapse.title}" in text
    [evaluation] = report.evaluations  # the latest checkpoint, named and described in the text
    assert evaluation.iteration == 199 and f"{evaluation.label}: {evaluation.description}" in text
    assert_mentions(evaluation.label, "teacher", "199")
    assert_mentions(evaluation.description, "384 wide", "2 blocks", "6 heads")
    assert "k-NN top-1" in text and report.verdict != "fail"
    data = json.loads(report.to_json())
    assert data["kind"] == "dinov2" and len(data["evaluations"]) == 1
    assert {f["code"] for f in data["findings"]} >= {"uniform_collapse", "schedules"}


def test_open_run_exits_0_on_a_healthy_run_and_writes_json(healthy: Path, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        ["open-run", str(healthy), "--checkpoint", "none", "--samples", "4", "--json", str(out)]
    )
    assert code == 0
    assert "verdict: " in capsys.readouterr().out
    assert json.loads(out.read_text())["run"] == str(healthy)


def test_open_run_exits_1_on_a_collapsed_run(tmp_path: Path, capsys) -> None:
    root = write_run(tmp_path / "collapsed", "uniform", iterations=(), patch=16)
    assert main(["open-run", str(root), "--samples", "4"]) == 1
    assert "[FAIL] Uniform collapse" in capsys.readouterr().out


def test_open_run_exits_2_naming_what_is_wrong(tmp_path: Path, capsys) -> None:
    assert main(["open-run", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    root = write_run(tmp_path / "damaged", "healthy", iterations=(99,), patch=16)
    checkpoint = root / "eval" / "training_99" / "teacher_checkpoint.pth"
    checkpoint.write_bytes(b"\x00 truncated")
    assert main(["open-run", str(root), "--samples", "2"]) == 2
    assert str(checkpoint) in capsys.readouterr().err
    (root / "config.yaml").write_text("crops: {global_crop_size: 224}\n")  # a typo in the key
    assert main(["open-run", str(root)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml" in err and "global_crops_size" in err


def test_open_run_of_a_dinodiag_run_evaluates_its_checkpoint(tmp_path: Path, capsys) -> None:
    from dinodiag.recipe.presets import get_train_preset
    from dinodiag.train.engine import run_training

    config = get_train_preset("tiny-test").config.with_overrides({"run.max_steps": 3})
    assert run_training(config, tmp_path / "run", progress=None).state == "finished"
    code = main(["open-run", str(tmp_path / "run"), "--samples", "2", "--data", "generated:n=40"])
    out = capsys.readouterr().out
    assert "(dinodiag run directory)" in out
    assert any(line.split()[:1] == ["[PASS]"] and "ln K" in line for line in out.splitlines())
    # tiny-test trains small-images' recipe at 16 px: the reference is scaled to its resolution
    assert "expected: small-images" in out and "scaled" in out
    # the checkpoint's first line: its label, then what it is
    checkpoint = next(line for line in out.splitlines() if "checkpoint at iteration 3:" in line)
    assert_mentions(checkpoint, "dinodiag checkpoint", "vit_tiny teacher", "(tiny-test)")
    # the k-NN comes with what it rests on: test / bank images and its 95% interval
    assert "k-NN top-1" in out and "200 test / 40 bank images" in out and "(95% " in out
    assert code == (1 if "verdict: FAIL" in out else 0)
