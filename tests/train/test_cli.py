"""``python -m dinodiag train``: flags, a real subprocess run, SIGTERM, and a 2-process torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dinodiag.cli import build_parser
from dinodiag.errors import ConfigError
from dinodiag.train import rundir
from dinodiag.train.cli import config_from_args, overrides_from_args

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def parse(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_flags_override_the_preset():
    args = parse(
        "--preset",
        "tiny-test",
        "--lr",
        "0.001",
        "--batch-size",
        "8",
        "--arch",
        "vit_small",
        "--local-crops",
        "0",
        "--max-seconds",
        "30",
        "--compile",
        "--set",
        "optim.min_lr=1e-5",
        "--num-prototypes",
        "128",
    )
    assert overrides_from_args(args)["optim.base_lr"] == 0.001
    cfg = config_from_args(args)
    assert cfg.name == "tiny-test"
    assert cfg.optim.base_lr == 0.001 and cfg.optim.min_lr == 1e-5
    assert cfg.data.batch_size == 8 and cfg.data.local_crops == 0
    assert cfg.model.arch == "vit_small" and cfg.model.num_prototypes == 128
    assert cfg.run.max_seconds == 30 and cfg.run.compile is True
    assert cfg.model.depth == 1  # untouched fields keep the preset's value


def test_defaults_and_errors():
    cfg = config_from_args(parse())
    assert cfg.name == "cpu-demo"
    with pytest.raises(ConfigError, match="did you mean|Did you mean"):
        config_from_args(parse("--set", "optim.bse_lr=1"))
    with pytest.raises(ConfigError, match="section.field=value"):
        config_from_args(parse("--set", "nonsense"))
    with pytest.raises(ConfigError, match="model.arch"):
        config_from_args(parse("--arch", "vit_huge"))
    with pytest.raises(ConfigError, match="training preset"):
        config_from_args(parse("--preset", "cpu-dem0x"))


def test_help_carries_tuning_advice():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["train"].format_help()
    for phrase in ("--max-seconds", "lower it on NaN", "--num-prototypes", "--resume", "cpu-demo"):
        assert phrase in text


def test_print_config(capsys):
    from dinodiag.cli import main

    assert main(["train", "--preset", "cpu-demo", "--print-config"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (
        data["pipeline"]["global_crops_size"] == 32 and data["pipeline"]["local_crops_size"] == 16
    )
    assert data["model"]["patch_size"] == 4


def test_failed_run_exit_code(tmp_path, capsys):
    from dinodiag.cli import main

    code = main(
        [
            "train",
            "--preset",
            "tiny-test",
            "--run-dir",
            str(tmp_path / "x"),
            "--data",
            "generated:n=2,size=16",
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "failed" in out and "too few" in out
    assert rundir.read_status(tmp_path / "x")["state"] == "failed"
    assert main(["train", "--resume"]) == 2  # --resume needs --run-dir


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=REPO,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_cli_run_and_resume(tmp_path):
    run = tmp_path / "run"
    done = _run(
        [
            "-m",
            "dinodiag",
            "train",
            "--preset",
            "tiny-test",
            "--run-dir",
            str(run),
            "--max-steps",
            "2",
            "--eval-every",
            "1",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout and "ETA" in done.stdout and "k-NN top-1" in done.stdout
    again = _run(["-m", "dinodiag", "train", "--run-dir", str(run), "--resume", "--max-steps", "3"])
    assert again.returncode == 0, again.stderr
    status = rundir.read_status(run)
    assert status["state"] == "finished" and status["step"] == 3
    assert status["preset"] == "tiny-test"  # the run's own config was used, not cpu-demo


def test_sigterm_stops_cleanly_with_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dinodiag",
            "train",
            "--preset",
            "tiny-test",
            "--run-dir",
            str(run),
            "--max-steps",
            "100000",
            "--epochs",
            "100000",
        ],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = rundir.read_json(run / "status.json") or {}
            if status.get("step", 0) >= 2:
                break
            time.sleep(0.05)
        assert rundir.is_alive(run)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    status = rundir.read_status(run)
    assert status["state"] == "stopped" and "SIGTERM" in status["message"]
    assert (run / "checkpoint.pt").exists() and not rundir.is_alive(run)
    steps = rundir.read_metrics(run, kind="train")["step"]
    assert steps.max() == status["step"]


def test_torchrun_two_processes_only_rank0_writes(tmp_path):
    run = tmp_path / "run"
    done = _run(
        [
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "dinodiag",
            "train",
            "--preset",
            "tiny-test",
            "--run-dir",
            str(run),
            "--max-steps",
            "3",
            "--eval-every",
            "3",
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "metrics.jsonl",
        "status.json",
    ]
    status = rundir.read_status(run)
    assert status["state"] == "finished" and status["step"] == 3
    assert status["world_size"] == 2
    assert json.loads((run / "config.json").read_text())["resolved"]["world_size"] == 2
    metrics = rundir.read_metrics(run)
    assert list(metrics[metrics["kind"] == "train"]["step"]) == [1, 2, 3]  # one writer
    assert list(metrics[metrics["kind"] == "eval"]["step"]) == [0, 3]
    assert done.stdout.count("run directory:") == 1  # only rank 0 prints
