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


# A DINOv2 training config at test size: DINOv2's keys, a tiny student and small crops.
TINY_DINOV2 = """
student: {arch: vit_tiny, patch_size: 4, drop_path_rate: 0.0}
dino: {head_n_prototypes: 64, head_hidden_dim: 64, head_bottleneck_dim: 32}
ibot: {head_n_prototypes: 64}
train: {batch_size_per_gpu: 4, OFFICIAL_EPOCH_LENGTH: 10, output_dir: /somewhere}
optim: {epochs: 2, warmup_epochs: 1, freeze_last_layer_epochs: 0}
teacher: {warmup_teacher_temp_epochs: 1}
crops: {global_crops_size: 16, local_crops_size: 8, local_crops_number: 2}
"""
TINY_FLAGS = ["--set", "model.embed_dim=32", "--set", "model.num_heads=2", "--depth", "1"]


def test_dinov2_knob_flags():
    cfg = config_from_args(
        parse(
            "--preset",
            "tiny-test",
            "--mask-ratio-min-max",
            "0.2,0.4",
            "--mask-sample-probability",
            "0.25",
            "--drop-path-uniform",
            "false",
            "--layerscale",
            "none",
            "--layerwise-decay",
            "0.75",
            "--patch-embed-lr-mult",
            "0.5",
            "--num-register-tokens",
            "4",
            "--ffn-layer",
            "swiglufused",
            "--head-style",
            "dino_v1",
            "--ibot-separate-head",
            "true",
            "--ibot-num-prototypes",
            "128",
            "--warmup-teacher-temp",
            "0.03",
            "--freeze-last-layer-epochs",
            "0.5",
            "--ibot-normalisation",
            "masked_crops",
            "--dino-normalisation",
            "pair_mean",
        )
    )
    m, o = cfg.model, cfg.optim
    assert o.mask_ratio == (0.2, 0.4) and o.mask_probability == 0.25
    assert m.drop_path_uniform is False and m.layerscale_init is None
    assert (o.layerwise_decay, o.patch_embed_lr_mult) == (0.75, 0.5)
    assert (m.num_register_tokens, m.ffn_layer, m.head_style) == (4, "swiglu", "dino_v1")
    assert m.ibot_separate_head is True and m.ibot_num_prototypes == 128
    assert o.teacher_temp_start == 0.03 and o.freeze_last_layer_epochs == 0.5
    assert (o.ibot_normalisation, o.dino_normalisation) == ("masked_crops", "pair_mean")


def test_pipeline_file_sets_the_patch_size(tmp_path):
    path = tmp_path / "vitl14.yaml"
    path.write_text("student: {patch_size: 14}\ncrops: {local_crops_size: 98}\n")
    cfg = config_from_args(parse("--preset", "gpu", "--pipeline", str(path)))
    assert cfg.model.patch_size == 14  # not the preset's 16
    with pytest.raises(ConfigError, match="sets the patch size 14"):
        from dinodiag.train.config import resolve_pipeline

        resolve_pipeline(config_from_args(parse("--pipeline", str(path), "--patch-size", "16")))


def test_dinov2_config_print_and_refusals(tmp_path, capsys):
    from dinodiag.cli import main

    path = tmp_path / "mine.yaml"
    path.write_text(TINY_DINOV2)
    args = ["train", "--config", str(path), "--data", "generated:n=64,size=16"]
    assert main([*args, "--batch-size", "8", "--print-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "mine" and shown["data"]["batch_size"] == 8  # flags win
    assert shown["model"]["patch_size"] == 4 and shown["pipeline"]["local_crops_number"] == 2
    assert shown["run"]["epoch_length"] == 10 and shown["run"]["keep_full_schedules"] is True
    dinov2 = shown["dinov2_config"]
    assert dinov2["from_file"]["train.OFFICIAL_EPOCH_LENGTH"]["field"] == "run.epoch_length"
    assert dinov2["from_dinov2_defaults"]["dino.koleo_loss_weight"]["value"] == 0.1
    assert any("output_dir" in note for note in dinov2["not_used"])
    assert main(["train", "--config", str(path)]) == 2  # --data is required
    assert "--data" in capsys.readouterr().err
    assert main([*args, "--preset", "gpu"]) == 2
    giant = tmp_path / "vitg14.yaml"
    giant.write_text("student: {arch: vit_giant2, patch_size: 14}\ncrops: {local_crops_size: 98}")
    assert main(["train", "--config", str(giant), "--data", "sample", "--device", "cpu"]) == 2
    assert "ViT-g" in capsys.readouterr().err


def test_a_dinov2_config_trains_its_first_steps(tmp_path):
    """``train --config`` end to end: the schedules span DINOv2's 2 x 10 steps, --max-steps 3
    runs the first 3 of them."""
    path = tmp_path / "mine.yaml"
    path.write_text(TINY_DINOV2)
    run = tmp_path / "run"
    done = _run(
        [
            "-m",
            "dinodiag",
            "train",
            "--config",
            str(path),
            "--data",
            "generated:n=64,val_n=32,size=16,classes=4",
            "--run-dir",
            str(run),
            "--max-steps",
            "3",
            "--eval-every",
            "0",
            "--log-every",
            "1",
            "--workers",
            "0",
            "--threads",
            "1",
            *TINY_FLAGS,
        ]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "output_dir" in done.stderr  # the notes are printed
    saved = json.loads((run / "config.json").read_text())
    assert saved["resolved"]["total_steps"] == 3 and saved["resolved"]["schedule_steps"] == 20
    assert saved["model"]["patch_size"] == 4 and saved["pipeline"]["global_crops_size"] == 16
    train = rundir.read_metrics(run, kind="train")
    assert list(train["step"]) == [1, 2, 3]
    # warm-up of 1 DINOv2 epoch = 10 steps: the lr is still rising at step 3
    assert (
        train["lr"].is_monotonic_increasing and train["lr"].iloc[-1] < saved["resolved"]["peak_lr"]
    )
