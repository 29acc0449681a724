"""The diagnosis from a run's log: synthetic training_metrics.json files for a healthy run and
for each failure, and the finding each one must give (with its evidence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dinodiag.runs.dinov2_run import open_run
from dinodiag.runs.findings import Finding
from dinodiag.runs.run_diagnosis import diagnose
from tests.facts import assert_mentions
from tests.runs.dinov2_fakes import metric_rows, run_config, write_metrics, write_run


def findings(tmp_path: Path, kind: str, **config: dict) -> dict[str, Finding]:
    root = write_run(
        tmp_path / kind, kind, iterations=(), config=run_config(**config) if config else None
    )
    return {f.code: f for f in diagnose(open_run(root))}


def failing(found: dict[str, Finding]) -> set[str]:
    return {code for code, f in found.items() if f.level in ("fail", "warn")}


def test_a_healthy_run_passes_every_rule(tmp_path: Path) -> None:
    found = findings(tmp_path, "healthy")
    assert set(found) == {
        "early_stop",  # 3 of 10 epochs logged, just written: it may still be running
        "uniform_collapse",
        "onehot_collapse",
        "flat_loss",
        "koleo",
        "schedules",
        "teacher_temp",
        "loader_bound",
    }
    assert failing(found) == set() and found["early_stop"].level == "info"


def test_a_loss_at_ln_k_is_a_uniform_collapse(tmp_path: Path) -> None:
    found = findings(tmp_path, "uniform")
    assert failing(found) == {"uniform_collapse"}
    finding = found["uniform_collapse"]
    assert finding.level == "fail" and "ln K = ln 4096 = 8.3178" in finding.evidence
    assert "iteration 290" in finding.evidence and "teacher" in finding.advice


def test_at_ln_k_during_the_warmup_is_too_early_to_call(tmp_path: Path) -> None:
    found = findings(tmp_path, "uniform", optim={"warmup_epochs": 5})
    assert found["uniform_collapse"].level == "info"
    assert "still rising" in found["uniform_collapse"].evidence  # read from the logged lr


def test_a_loss_falling_to_0_within_an_epoch_is_a_onehot_collapse(tmp_path: Path) -> None:
    found = findings(tmp_path, "onehot")
    assert failing(found) == {"onehot_collapse"}
    finding = found["onehot_collapse"]
    assert finding.title.endswith("within the first epoch")
    assert_mentions(finding.evidence, "iteration 60", "0.832", "10% of ln K")
    assert "lowest 0.0500" in finding.evidence and "Sinkhorn" in finding.advice


def test_a_loss_unchanged_to_4_decimals_names_the_lr_and_batch(tmp_path: Path) -> None:
    found = findings(tmp_path, "flat")
    assert found["flat_loss"].level == "fail"
    evidence = found["flat_loss"].evidence
    assert_mentions(evidence, "total loss 16.6355", "30 logging periods", "iterations 0-290")
    assert "lr applied 0-0.00283" in evidence and "batch 64 per process" in evidence
    assert found["uniform_collapse"].level == "fail"  # the same log also sits at ln K


def test_a_stretch_of_equal_losses_that_ends_is_a_warning(tmp_path: Path) -> None:
    rows = metric_rows("healthy")
    for row in rows[5:12]:
        row["total_loss"] = 12.3456
    root = write_run(tmp_path / "run", iterations=())
    write_metrics(root / "training_metrics.json", rows)
    finding = {f.code: f for f in diagnose(open_run(root))}["flat_loss"]
    assert finding.level == "warn"
    assert_mentions(finding.evidence, "7 logging periods", "iterations 50-110")


def test_an_exploding_koleo_term_at_batch_1(tmp_path: Path) -> None:
    found = findings(tmp_path, "koleo")
    assert failing(found) == {"koleo", "nonfinite_loss"}
    assert_mentions(found["koleo"].evidence, "koleo_loss = inf", "iteration 150", "batch 1")
    assert_mentions(found["nonfinite_loss"].evidence, "koleo_loss = inf", "iteration 150")
    # before it turns inf, a KoLeo near its floor (duplicate features) is already flagged
    rows = [r for r in metric_rows("koleo") if r["iteration"] < 150]
    root = write_run(tmp_path / "early", iterations=())
    write_metrics(root / "training_metrics.json", rows)
    early = {f.code: f for f in diagnose(open_run(root))}["koleo"]
    assert early.level == "fail" and early.title == "The KoLeo term explodes"
    assert_mentions(early.evidence, "nearest-neighbour distance", "1e-4")


def test_logged_schedules_off_the_config_are_named(tmp_path: Path) -> None:
    found = findings(tmp_path, "lr_off")
    assert failing(found) == {"schedules"}
    evidence = found["schedules"].evidence
    assert evidence.startswith("lr 0.0002843 at iteration 10") and "x2.00" in evidence
    assert "29 of 30 rows off" in evidence and "wd" not in evidence


def test_a_high_teacher_temperature_is_a_warning(tmp_path: Path) -> None:
    found = findings(tmp_path, "healthy", teacher={"teacher_temp": 0.1})
    assert failing(found) == {"teacher_temp"}
    assert_mentions(found["teacher_temp"].evidence, "0.04 -> 0.1", "3 epochs", "of 10")
    long_warmup = findings(tmp_path / "w", "healthy", teacher={"warmup_teacher_temp_epochs": 20})
    assert long_warmup["teacher_temp"].level == "info"


def test_data_time_dominating_iter_time_is_loader_bound(tmp_path: Path) -> None:
    found = findings(tmp_path, "loader")
    assert failing(found) == {"loader_bound"}
    assert (
        "(80%)" in found["loader_bound"].evidence and "num_workers" in found["loader_bound"].advice
    )


def test_an_empty_log_says_so(tmp_path: Path) -> None:
    root = write_run(tmp_path / "run", iterations=())
    (root / "training_metrics.json").write_text("")
    (found,) = diagnose(open_run(root))
    assert found.code == "no_log" and found.level == "info"


def test_dinodiag_runs_are_judged_by_the_same_rules(tmp_path: Path) -> None:
    """A dinodiag run's metrics.jsonl (unweighted KoLeo summed over 2 global crops)."""
    root = tmp_path / "mine"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model": {"num_prototypes": 1024}}))
    rows = [
        {
            "kind": "train",
            "step": s,
            "epoch": s / 50,
            "time": s,
            "loss": 6.93 + 0.001 * (s % 3),
            "dino_loss": 6.931,
            "koleo_loss": 2 * 10.0,
        }
        for s in range(0, 2000, 50)
    ]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = {f.code: f for f in diagnose(open_run(root))}
    assert found["uniform_collapse"].level == "fail"  # 6.931 = ln 1024
    assert found["koleo"].level == "fail"  # 10 per chunk: below 1e-4 apart
    assert "schedules" not in found and "loader_bound" not in found  # not in a dinodiag log


@pytest.mark.parametrize("kind", ["uniform", "onehot", "flat", "koleo", "loader", "lr_off"])
def test_findings_come_worst_first(tmp_path: Path, kind: str) -> None:
    root = write_run(tmp_path / kind, kind, iterations=())
    levels = [f.level for f in diagnose(open_run(root))]
    order = ["fail", "warn", "info", "pass"]
    assert levels == sorted(levels, key=order.index) and levels[0] in ("fail", "warn")
