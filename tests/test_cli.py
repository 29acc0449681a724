"""The command line: tables, JSON reports, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dinodiag.cli import main


def test_presets_lists_every_preset(capsys) -> None:
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("dinov2", "dino", "lightly", "seed-broken", "seed-fixed"):
        assert name in out
    assert "source:" in out


def test_check_seed_broken_exits_1_and_writes_json(tmp_path, capsys) -> None:
    report = tmp_path / "r.json"
    markdown = tmp_path / "r.md"
    code = main(
        [
            "check",
            "--preset",
            "seed-broken",
            "--samples",
            "4",
            "--json",
            str(report),
            "--markdown",
            str(markdown),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "[FAIL] view_count" in out and "verdict: FAIL" in out
    data = json.loads(report.read_text())
    statuses = {c["id"]: c["status"] for c in data["checks"]}
    assert statuses["view_count"] == "fail" and statuses["global_scale"] == "fail"
    assert set(data["checks"][0]) == {"id", "status", "measured", "expected", "message", "title"}
    assert "| FAIL | `view_count`" in markdown.read_text()


def test_check_dinov2_exits_0(capsys) -> None:
    assert main(["check", "--preset", "dinov2", "--samples", "3"]) == 0
    assert "verdict: PASS" in capsys.readouterr().out


def test_check_config_file_and_expect_file(tmp_path, capsys) -> None:
    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        "crops:\n  global_crops_scale: [0.32, 1.0]\n  local_crops_number: 8\nstudent:\n  "
        "patch_size: 16\n"
    )
    assert main(["check", "--config", str(cfg), "--expect", str(cfg), "--samples", "2"]) == 0
    assert "expected: train" in capsys.readouterr().out


def test_check_brought_pipeline(capsys) -> None:
    code = main(
        [
            "check",
            "--pipeline",
            "examples/seed_pipeline.py:build_two_view_augment",
            "--pipeline-kwargs",
            '{"img_size": 96}',
            "--samples",
            "3",
        ]
    )
    assert code == 1
    assert "RandomResizedCrop" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "--preset", "dinov3"], "Did you mean 'dinov2'"),
        (["check", "--config", "missing.yaml"], "does not exist"),
        (["check", "--pipeline", "examples/seed_pipeline.py:nope"], "has no attribute 'nope'"),
        (["check", "--pipeline-kwargs", "{}"], "only applies with --pipeline"),
        (["check", "--data", "/no/such/folder"], "/no/such/folder"),
        (["check", "--samples", "0"], "--samples = 0"),
        (["stats", "--samples", "-3"], "--samples = -3"),
        (["check", "--expect", "nonsense"], "unknown preset 'nonsense'"),
    ],
)
def test_input_errors_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_usage_error_exits_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--preset", "dinov2", "--config", "x.yaml"])
    assert info.value.code == 2


def test_stats_prints_summary_and_writes_csv(tmp_path, capsys) -> None:
    csv = tmp_path / "s.csv"
    assert main(["stats", "--preset", "seed-fixed", "--samples", "5", "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "Crop measures" in out and "Application rates" in out and "local_coverage" in out
    assert len(csv.read_text().splitlines()) == 1 + 5 * 10


def test_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dinodiag", "check", "--preset", "seed-broken", "--samples", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "verdict: FAIL" in result.stdout


def test_inspection_sees_every_image_of_a_folder(capsys) -> None:
    from dinodiag.data import inspection_split

    assert inspection_split("sample") == "all" and inspection_split("generated:size=32") == "train"
    assert inspection_split("cifar10:/data") == "train"
    assert main(["check", "--preset", "dinov2", "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "sample_images (all)" in out and "/20 images have a short side" in out
