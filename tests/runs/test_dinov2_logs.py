"""open-run on DINOv2 output directories written the way DINOv2 writes them (REFERENCE.md,
"How DINOv2 logs a run"): each case with the finding it must produce and those it must not.

The console log (``logs/log.txt``) is written line by line in MetricLogger's format by
:func:`tests.runs.dinov2_fakes.write_console`; ``training_metrics.json`` by ``write_metrics``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from dinodiag.cli import main
from dinodiag.runs.checkpoint_eval import knn_frame
from dinodiag.runs.dinov2_run import open_run
from dinodiag.runs.findings import Finding
from dinodiag.runs.follow import follow
from dinodiag.runs.run_diagnosis import diagnose
from dinodiag.runs.run_report import build_report, checkpoint_findings
from tests.facts import assert_mentions
from tests.runs.dinov2_fakes import (
    EPOCH,
    K,
    metric_rows,
    run_config,
    vit_small,
    write_console,
    write_metrics,
    write_run,
    write_teacher,
)


def found(root: Path, **options) -> dict[str, Finding]:
    return {f.code: f for f in diagnose(open_run(root, **options))}


def bad(findings: dict[str, Finding]) -> set[str]:
    return {code for code, f in findings.items() if f.level in ("fail", "warn")}


def row(it: int, dino: float, lr: float = 1e-3, **extra) -> dict:
    values = {
        "iteration": it,
        "iter_time": 0.5,
        "data_time": 0.02,
        "lr": lr,
        "wd": 0.04,
        "mom": 0.992,
        "last_layer_lr": lr,
        "current_batch_size": 64.0,
        "total_loss": dino + 0.5,
        "dino_local_crops_loss": dino * 16 / 18,
        "dino_global_crops_loss": dino * 2 / 18,
        "koleo_loss": -0.03,
        "ibot_loss": 0.5,
    }
    values.update(extra)
    return values


# ----------------------------------------------------------------------------- the console log
def test_a_directory_with_only_the_console_log_is_read(tmp_path: Path) -> None:
    config = run_config(dino={"head_n_prototypes": 131072})
    rows = metric_rows("healthy", config)
    write_console(tmp_path / "logs" / "log.txt", [{"rows": rows, "planned": 1000}], config)
    run = open_run(tmp_path)
    assert run.sources["log"] == "logs/log.txt"
    assert run.num_prototypes == 131072 and "config echo" in run.sources["num_prototypes"]
    assert len(run.train_rows) == len(rows) and run.epoch_length == EPOCH
    assert run.train_rows["loss"].iloc[-1] == pytest.approx(rows[-1]["total_loss"], abs=1e-4)
    result = found(tmp_path)
    assert "uniform_collapse" in result and result["uniform_collapse"].level == "pass"
    assert "ln 131072" in result["uniform_collapse"].evidence


def test_a_log_copied_next_to_the_metrics_is_joined_with_them(tmp_path: Path) -> None:
    root = write_run(tmp_path / "run", "healthy", iterations=())
    config = yaml.safe_load((root / "config.yaml").read_text())
    rows = metric_rows("healthy", config)
    averages = {20: {"koleo_loss": math.inf}}  # a transient inf: only the console shows it
    write_console(root / "log.txt", [{"rows": rows, "planned": 1000, "averages": averages}])
    run = open_run(root)
    assert_mentions(run.sources["log"], "training_metrics.json", "log.txt")  # both files read
    assert math.isinf(run.train_rows["koleo_loss_avg"].iloc[20])
    assert np.isfinite(run.train_rows["koleo_loss"]).all()  # the medians stayed finite
    result = found(root)
    assert result["nonfinite_average"].level == "warn"
    assert "iteration 200" in result["nonfinite_average"].evidence
    assert "nonfinite_loss" not in result  # the medians are finite: no NaN loss claimed


def test_a_nan_in_the_averages_fails(tmp_path: Path) -> None:
    rows = [row(i, 5.0) for i in range(0, 200, 10)]
    write_console(
        tmp_path / "logs" / "log.txt",
        [{"rows": rows, "planned": 1000, "averages": {5: {"total_loss": math.nan}}}],
    )
    assert found(tmp_path)["nonfinite_average"].level == "fail"


# ----------------------------------------------------------------------------- launches
def test_appended_launches_are_split_and_the_last_diagnosed(tmp_path: Path) -> None:
    ln_k = math.log(K)
    launches = [[row(0, ln_k + 0.001 * i)] for i in range(5)]  # five one-row false starts
    launches.append([row(it, ln_k * (1 - it / 1000)) for it in range(0, 400, 10)])
    write_metrics(tmp_path / "training_metrics.json", [r for rows in launches for r in rows])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(run_config()))
    run = open_run(tmp_path)
    assert len(run.launches) == 6 and run.launch == 5
    assert len(run.train_rows) == 40  # the last launch only
    assert run.train_rows["loss"].iloc[-1] == pytest.approx(launches[-1][-1]["total_loss"])
    result = found(tmp_path)
    assert result["launches"].level == "info" and "launch 6" in result["launches"].title
    assert result["launches"].evidence.count("launch ") >= 6  # each other launch, one line
    assert "flat_loss" not in bad(result)  # six launches are not "unchanged for a stretch"
    first = found(tmp_path, launch=0)
    assert "launch 1" in first["launches"].title


def test_a_resume_keeps_the_rows_before_its_start(tmp_path: Path) -> None:
    first = [row(it, 8.0 - it / 1000) for it in range(0, 310, 10)]
    resumed = [row(it, 8.0 - it / 1000) for it in range(200, 600, 10)]  # from checkpoint 200
    write_metrics(tmp_path / "training_metrics.json", first + resumed)
    run = open_run(tmp_path)
    assert len(run.launches) == 2 and run.launches[1].resumed
    steps = run.train_rows["step"].astype(int).tolist()
    assert steps == list(range(0, 200, 10)) + list(range(200, 600, 10))


# ----------------------------------------------------------------------------- early stop
@pytest.mark.parametrize(
    ("end", "level", "state"),
    [("nan", "fail", "nan"), ("total_time", "warn", "data_end"), (None, "warn", "stopped")],
)
def test_an_early_stop_is_reported_with_its_cause(tmp_path, end, level, state) -> None:
    rows = [row(it, 5.0) for it in range(0, 3290, 10)]
    log = write_console(
        tmp_path / "logs" / "log.txt", [{"rows": rows, "planned": 164000, "end": end}]
    )
    old = log.stat().st_mtime - 3600
    import os

    os.utime(log, (old, old))  # written an hour ago: not running any more
    run = open_run(tmp_path)
    assert run.launches[-1].end == state and run.launches[-1].last == 3280
    finding = found(tmp_path)["early_stop"]
    assert finding.level == level and "3280" in finding.title and "164000" in finding.title


def test_without_the_console_log_the_cause_is_unknown_and_said(tmp_path: Path) -> None:
    path = write_metrics(
        tmp_path / "training_metrics.json", [row(i, 5.0) for i in range(0, 90, 10)]
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(run_config()))
    old = path.stat().st_mtime - 3600
    import os

    os.utime(path, (old, old))
    finding = found(tmp_path)["early_stop"]
    assert finding.level == "warn" and open_run(tmp_path).launches[-1].end == "unknown"
    assert "log.txt" in finding.advice


def test_a_finished_run_says_so(tmp_path: Path) -> None:
    rows = [row(it, 5.0) for it in [*range(0, 1000, 10), 999]]
    write_console(tmp_path / "logs" / "log.txt", [{"rows": rows, "planned": 1000}])
    assert found(tmp_path)["early_stop"].level == "pass"


# ----------------------------------------------------------------------------- collapse levels
def test_collapse_past_the_logged_warmup_fails_whatever_the_config_says(tmp_path: Path) -> None:
    ln_k = math.log(K)
    its = np.arange(0, 2010, 10)
    lr = np.where(its <= 500, its / 500 * 4e-3, 4e-3 * (1 - (its - 500) / 20000))
    rows = [row(int(i), ln_k + 0.001 * math.sin(i), float(v)) for i, v in zip(its, lr, strict=True)]
    write_metrics(tmp_path / "training_metrics.json", rows)
    config = run_config(
        optim={"warmup_epochs": 10, "epochs": 100}, train={"OFFICIAL_EPOCH_LENGTH": 1250}
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))  # a 12,500-iteration warm-up
    finding = found(tmp_path)["uniform_collapse"]
    assert finding.level == "fail"
    assert "peaked" in finding.evidence and "iteration 500" in finding.evidence
    assert_mentions(finding.evidence, "1500 iterations", "warm-up")  # 2000 - 500: past it
    assert "16 / 18" not in finding.evidence and "18 crop pairs" in finding.evidence


def test_twice_ln_k_is_not_a_dinov2_level(tmp_path: Path) -> None:
    ln_k = math.log(K)
    rows = [row(it, 2 * ln_k, lr=1e-3 * min(1, it / 100)) for it in range(0, 1000, 10)]
    write_metrics(tmp_path / "training_metrics.json", rows)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(run_config()))
    finding = found(tmp_path)["uniform_collapse"]
    assert finding.level == "warn" and "2 x ln K" in finding.evidence
    assert "at ln K" not in finding.title


def test_ln_of_another_k_names_it(tmp_path: Path) -> None:
    """No config.yaml: K is assumed 65536; a loss at ln 131072 names K = 131072."""
    rows = [row(it, math.log(131072), lr=1e-3) for it in range(0, 300, 10)]
    write_metrics(tmp_path / "training_metrics.json", rows)
    run = open_run(tmp_path)
    assert run.num_prototypes == 65536 and "assumed" in run.sources["num_prototypes"]
    finding = found(tmp_path)["uniform_collapse"]
    assert finding.level == "warn" and "--num-prototypes 131072" in finding.evidence
    fixed = found(tmp_path, num_prototypes=131072)["uniform_collapse"]
    assert fixed.level == "fail"  # at ln K, past a warm-up the log does not show


def test_k_from_the_teacher_checkpoint_without_any_config(tmp_path: Path) -> None:
    write_metrics(tmp_path / "training_metrics.json", [row(0, 5.0)])
    write_teacher(
        tmp_path / "eval" / "training_99" / "teacher_checkpoint.pth", vit_small(14, 4, 1), k=2048
    )
    run = open_run(tmp_path)
    assert run.num_prototypes == 2048 and "checkpoint" in run.sources["num_prototypes"]


def test_a_healthy_run_gives_no_warning(tmp_path: Path) -> None:
    root = write_run(tmp_path / "run", "healthy", iterations=())
    config = yaml.safe_load((root / "config.yaml").read_text())
    write_console(
        root / "logs" / "log.txt",
        [{"rows": metric_rows("healthy", config), "planned": 1000}],
        config,
    )
    result = found(root)
    assert bad(result) == set()
    assert result["uniform_collapse"].level == "pass" and result["koleo"].level == "pass"


# ----------------------------------------------------------------------------- crops, resolution
def test_a_deliberate_high_resolution_passes_the_crop_check(tmp_path: Path, capsys) -> None:
    config = run_config(
        student={"patch_size": 14},
        crops={"global_crops_size": 896, "local_crops_size": 392},
    )
    root = write_run(tmp_path / "run", "healthy", iterations=(), config=config)
    report = build_report(root, checkpoints="none")
    assert report.crops is None  # no --data: the values alone, not dinodiag's sample images
    codes = {f.code: f.level for f in report.crop_findings}
    assert codes["crops.patch_multiple"] == "pass" and codes["crops.local_vs_global_size"] == "pass"
    assert "x4" in report.crop_note and report.crop_verdict == "pass"
    assert report.verdict != "fail"
    assert main(["open-run", str(root), "--checkpoint", "none"]) == 0
    out = capsys.readouterr().out
    assert "not checked:" in out and "--data" in out


def test_the_log_part_answers_fast(tmp_path: Path) -> None:
    import time

    root = write_run(tmp_path / "run", "healthy", iterations=())
    start = time.monotonic()
    build_report(root, checkpoints="none")
    assert time.monotonic() - start < 5.0


# ----------------------------------------------------------------------------- checkpoints
def collapsed_teacher(path: Path) -> Path:
    """A teacher whose final norm maps every token to the same vector: identical features."""
    model = vit_small(14, 4, 1)
    with torch.no_grad():
        model.norm.weight.zero_()
        model.norm.bias.fill_(0.5)
    return write_teacher(path, model)


def test_collapsed_features_make_the_knn_meaningless(tmp_path: Path, capsys) -> None:
    root = write_run(tmp_path / "run", "healthy", iterations=())
    collapsed_teacher(root / "eval" / "training_99" / "teacher_checkpoint.pth")
    report = build_report(root, data="generated:n=60,val_n=40,size=32")
    e = report.evaluations[-1]
    assert e.collapse == "complete" and e.knn_status == "meaningless"
    assert e.effective_rank < 1.5 and e.test_images == 40
    codes = {f.code: f for f in checkpoint_findings(report.evaluations)}
    assert codes["features_collapse"].level == "fail" and report.log_verdict == "fail"
    drawn = knn_frame(report.evaluations)  # the k-NN curve draws no accuracy for it
    assert drawn["knn_top1"].isna().all() and list(drawn["knn_test"]) == [40]
    text = report.to_text()
    assert "k-NN meaningless" in text and "top-1" in text and "40 test" in text


def test_spread_features_show_the_knn_with_its_interval(tmp_path: Path) -> None:
    root = write_run(tmp_path / "run", "healthy", iterations=(99,))
    report = build_report(root, data="generated:n=60,val_n=40,size=32")
    e = report.evaluations[-1]
    assert e.collapse == "" and e.knn_status == "too_few"  # 40 < 200 test images
    assert e.knn_low <= e.knn_top1 <= e.knn_high and e.knn_high - e.knn_low > 10
    codes = {f.code: f.level for f in checkpoint_findings(report.evaluations)}
    assert codes == {"features_collapse": "pass", "knn_evidence": "info"}


# ----------------------------------------------------------------------------- other runs
def test_a_dino_v1_log_is_read_per_epoch(tmp_path: Path) -> None:
    import json

    lines = [
        {
            "train_loss": 11.09 - 0.1 * e,
            "train_lr": 1e-4 * min(e + 1, 10),
            "train_wd": 0.04,
            "epoch": e,
        }
        for e in range(30)
    ]
    (tmp_path / "log.txt").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = open_run(tmp_path)
    assert run.flavour == "dino" and len(run.train_rows) == 30
    assert run.num_prototypes == 65536
    assert found(tmp_path)["uniform_collapse"].level == "pass"


def test_follow_reports_each_new_finding_as_the_log_grows(tmp_path: Path) -> None:
    log = tmp_path / "training_metrics.json"
    rows = [row(it, 6.0 - it / 1000, lr=1e-3 * min(1, it / 50)) for it in range(0, 200, 10)]
    write_metrics(log, rows)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(run_config()))

    def grow(_seconds: float) -> None:
        more = [row(it, 6.0, koleo_loss=math.inf) for it in range(200, 260, 10)]
        write_metrics(log, rows + more)
        import os

        os.utime(log, (log.stat().st_mtime + 5, log.stat().st_mtime + 5))

    changes = list(follow(tmp_path, interval=0.0, polls=2, sleep=grow))
    first = {c.finding.code for c in changes if c.before is None and c.iteration == 190}
    later = [c for c in changes if c.iteration == 250]
    assert "uniform_collapse" in first
    assert any(c.finding.code == "koleo" and c.finding.level == "fail" for c in later)
    assert all(c.finding.code != "uniform_collapse" for c in later)  # unchanged: not repeated


def test_open_run_follow_on_the_command_line(tmp_path: Path, capsys) -> None:
    write_metrics(tmp_path / "training_metrics.json", [row(it, 5.0) for it in range(0, 100, 10)])
    code = main(["open-run", str(tmp_path), "--follow", "--polls", "1", "--interval", "0.01"])
    out = capsys.readouterr().out
    assert "following" in out and "[iteration 90]" in out
    assert code == (1 if "[FAIL]" in out else 0)


# ----------------------------------------------------------------------------- dinodiag runs
def dinodiag_run(root: Path, knn: list[float], n_test: int, prototypes: list[int]) -> Path:
    """A dinodiag run directory: config.json and metrics.jsonl with train rows (loss,
    prototypes in use) and eval rows (k-NN top-1 on ``n_test`` held-out images)."""
    import json

    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model": {"num_prototypes": 64}}))
    lines = []
    for step, used in enumerate(prototypes):
        lines.append({"kind": "train", "step": step, "loss": 3.0, "prototypes_used": used})
    for i, top1 in enumerate(knn):
        lines.append({"kind": "eval", "step": i * 10, "knn_top1": top1, "knn_test": n_test})
    (root / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return root


@pytest.mark.parametrize(
    ("knn", "n_test", "prototypes", "level", "title"),
    [
        ([14.0, 14.2], 1000, [21] * 20, "info", "Too short to judge"),
        ([14.0, 40.0], 1000, [21] * 20, "pass", "rose beyond its noise"),
        ([25.0, 75.0], 4, [21] * 20, "info", "Too few test images"),
        ([14.0, 14.2], 1000, [21] * 10 + [2] * 10, "fail", "Not learning"),
    ],
)
def test_a_dinodiag_runs_knn_gain_is_judged_against_its_noise(
    tmp_path, knn, n_test, prototypes, level, title
) -> None:
    result = found(dinodiag_run(tmp_path / "run", knn, n_test, prototypes))
    assert result["knn_gain"].level == level and title in result["knn_gain"].title
    assert f"{n_test} test images" in result["knn_gain"].evidence


def test_prototypes_in_use_falling_to_two_fail(tmp_path: Path) -> None:
    result = found(dinodiag_run(tmp_path / "run", [14.0, 14.2], 1000, [21] * 10 + [2] * 10))
    finding = result["prototypes_used"]
    assert finding.level == "fail" and "from 21 to 2" in finding.title
    steady = found(dinodiag_run(tmp_path / "steady", [14.0, 30.0], 1000, [21] * 20))
    assert steady["prototypes_used"].level == "pass"
