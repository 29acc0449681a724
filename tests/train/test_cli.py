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
import torch

from dinodiag import rundir
from dinodiag.cli import build_parser
from dinodiag.errors import ConfigError
from dinodiag.recipe.flags import overrides_from_args
from dinodiag.rundir.lock import RunLock
from dinodiag.train.run_config import config_from_args
from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def parse(*argv: str):
    return build_parser().parse_args(["train", *argv])


def test_flags_override_the_preset():
    args = parse(
        "--preset",
        "tiny-test",
        "--base-lr",
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
            "--base-lr",
            "1e30",
            "--lr-scaling",
            "none",
            "--clip-grad",
            "0",
            "--warmup-epochs",
            "0",
            "--max-steps",
            "30",
        ]
    )
    assert code == 1  # the run started and failed: its status says why
    assert "failed" in capsys.readouterr().out
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
    proc = _start(["--preset", "tiny-test", "--run-dir", str(run), *ENDLESS])
    try:
        _wait_for_step(run, 2, timeout=60)
        assert rundir.is_alive(run)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, out
    status = rundir.read_status(run)
    assert status["state"] == "stopped" and "SIGTERM" in status["message"]
    assert (run / "checkpoint.pt").exists() and not rundir.is_alive(run)
    steps = rundir.read_metrics(run, kind="train")["step"]
    assert steps.max() == status["step"]


def test_torchrun_two_processes_only_rank0_writes(tmp_path):
    run = tmp_path / "run"
    done = _torchrun_tiny(run, "--max-steps", "3", "--eval-every", "3")
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
            "--mask-ratio",
            "0.2,0.4",
            "--mask-probability",
            "0.25",
            "--drop-path-uniform",
            "false",
            "--layerscale-init",
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
            "--teacher-temp-start",
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
        from dinodiag.recipe.crops import resolve_pipeline

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
    assert main(["train", "--config", str(path)]) == 2  # --data is required to train
    assert "--data" in capsys.readouterr().err
    # ... but not to print the resolved config: no image is read for a DINOv2 file's crops.
    assert main(["train", "--config", str(path), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["pipeline"]["local_crops_number"] == 2 and printed["model"]["patch_size"] == 4
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


def main_code(argv: list[str]) -> int:
    """``dinodiag.cli.main`` as the shell sees it (argparse errors exit 2 via SystemExit)."""
    from dinodiag.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize(
    "flags, facts",
    [
        (["--data", "generated:n=2,size=16"], ["has 2 images", "batch of 4", "--batch-size"]),
        # argparse's own errors: the flag, the value and the kind of number it takes
        (["--base-lr", "inf"], ["argument --base-lr:", "'inf'", "finite number"]),
        (["--max-seconds", "inf"], ["argument --max-seconds:", "'inf'", "none lifts the limit"]),
        (["--epochs", "nan"], ["argument --epochs:", "'nan'", "finite number"]),
        (["--max-steps", "inf"], ["argument --max-steps:", "'inf'", "finite integer"]),
        (["--max-steps", "1.5"], ["argument --max-steps:", "'1.5'", "not an integer"]),
        # the config's errors: the flag as typed first, then the field and its value
        (["--num-prototypes", "1e9"], ["--num-prototypes 1000000000:", "model.num_prototypes ="]),
        (["--seed", "-1"], ["--seed -1:", "run.seed = -1", "invalid"]),
        (["--set", "optim.min_lr=inf"], ["--set optim.min_lr=inf:", "optim.min_lr = 'inf'"]),
        (["--set", "run.max_steps=nan"], ["--set run.max_steps=nan:", "run.max_steps = 'nan'"]),
        (["--set", "optim.bse_lr=1"], ["--set optim.bse_lr=1:", "'optim.bse_lr'", "'base_lr'"]),
        (["--patch-size", "5"], ["global_crops_size = 16", "patch size 5", "15 or 20"]),
        (["--batch-size", "1"], ["--batch-size 1:", "KoLeo", "at least 2 images"]),
    ],
)
def test_bad_input_exits_2_naming_the_option_and_writes_nothing(tmp_path, capsys, flags, facts):
    run = tmp_path / "run"
    code = main_code(["train", "--preset", "tiny-test", "--run-dir", str(run), *flags])
    err = capsys.readouterr().err
    assert code == 2, err
    assert_mentions(err, *facts)
    assert "Traceback" not in err and not run.exists()


def test_too_many_prototypes_says_why(capsys):
    assert main_code(["train", "--num-prototypes", "1e9", "--print-config"]) == 2
    err = capsys.readouterr().err
    # the range allowed, and the memory the asked-for count would take
    assert_mentions(
        err, "model.num_prototypes = ", "1000000000", "too large", "2 to 1048576", "GiB"
    )
    assert main_code(["train", "--num-prototypes", "1048576", "--print-config"]) == 0


def test_run_dir_faults_exit_2_with_the_path(tmp_path, capsys, read_only):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert main_code(["train", "--preset", "tiny-test", "--run-dir", str(a_file)]) == 2
    assert_mentions(capsys.readouterr().err, f"error: --run-dir {a_file} ", "a file")
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    assert main_code(["train", "--preset", "tiny-test", "--run-dir", str(locked)]) == 2
    err = capsys.readouterr().err
    assert_mentions(err, str(locked / rundir.LOCK_FILE), "Permission denied", "chmod u+w")
    assert "Traceback" not in err
    missing = tmp_path / "missing"
    assert main_code(["train", "--run-dir", str(missing), "--resume"]) == 2
    assert_mentions(capsys.readouterr().err, f"run directory {missing} ", "does not exist")


ENDLESS = ["--max-steps", "100000", "--epochs", "100000"]  # a run that trains until stopped


def _start(argv: list[str]) -> subprocess.Popen:
    """``python -m dinodiag train ARGV`` in the background (output and errors in stdout)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dinodiag", "train", *argv],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_step(run: Path, step: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (rundir.read_json(run / "status.json") or {}).get("step", 0) >= step:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run} did not reach step {step} in {timeout:.0f} s")


def _torchrun_tiny(run: Path, *flags: str) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m dinodiag train --preset tiny-test --run-dir RUN``."""
    torchrun = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return _run(
        [
            *torchrun,
            "-m",
            "dinodiag",
            "train",
            "--preset",
            "tiny-test",
            "--run-dir",
            str(run),
            *flags,
        ]
    )


# Three trainer processes (~30 s): test_engine_rundir checks the refusal of a fresh and a resumed
# run, test_two_processes_on_a_locked_run_both_exit_2 the exit code of refused processes.
@pytest.mark.slow
def test_a_second_trainer_on_a_running_run_is_refused(tmp_path):
    run = tmp_path / "run"
    first = _start(["--preset", "tiny-test", "--run-dir", str(run), *ENDLESS])
    try:
        _wait_for_step(run, 3)
        for argv in (
            ["--run-dir", str(run), "--resume", "--max-steps", "100000"],
            ["--preset", "tiny-test", "--run-dir", str(run)],
        ):
            second = _run(["-m", "dinodiag", "train", *argv])
            assert second.returncode == 2, second.stdout + second.stderr
            assert_mentions(second.stderr, str(run), "another trainer", f"pid {first.pid} ")
        assert rundir.is_alive(run) and rundir.read_pid_file(run)["pid"] == first.pid
        first.send_signal(signal.SIGTERM)
        out, _ = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, out
    status = rundir.read_status(run)
    assert status["state"] == "stopped" and status["pid"] == first.pid
    steps = list(rundir.read_metrics(run, kind="train")["step"])
    assert steps == list(range(1, status["step"] + 1))  # one writer: every row once, in order


@pytest.mark.slow
def test_cpu_demo_killed_at_step_6_keeps_a_checkpoint_and_resumes(tmp_path):
    run = tmp_path / "demo"
    demo = _start(["--preset", "cpu-demo", "--run-dir", str(run)])  # the preset as it is
    try:
        _wait_for_step(run, 6, timeout=120)
        demo.kill()  # SIGKILL: no handler, no final status
        demo.wait()
    finally:
        demo.kill()
        demo.wait()
    assert (run / "checkpoint.pt").is_file()
    saved = torch.load(run / "checkpoint.pt", weights_only=True)["step"]
    assert 1 <= saved <= 6
    status = rundir.read_status(run)
    assert status["state"] == "failed" and not rundir.is_alive(run)
    assert_mentions(status["message"], "--resume", f"checkpoint at step {saved}.")
    again = _run(
        [
            "-m",
            "dinodiag",
            "train",
            "--run-dir",
            str(run),
            "--resume",
            "--max-steps",
            "8",
            "--eval-every",
            "0",
        ]
    )
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    status = rundir.read_status(run)
    assert status["state"] == "finished" and status["step"] == 8


def test_two_processes_on_a_locked_run_both_exit_2(tmp_path):
    """Only rank 0 takes the lock; rank 1 must not wait for it at the next collective. The two
    processes are started by hand (as srun or mpirun would), so no launcher kills rank 1 when
    rank 0 ends: each has to end by itself."""
    import socket

    run = tmp_path / "run"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    holder = RunLock(run)
    holder.acquire()
    try:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dinodiag",
                    "train",
                    "--preset",
                    "tiny-test",
                    "--run-dir",
                    str(run),
                ],
                cwd=REPO,
                env={
                    **ENV,
                    "RANK": str(rank),
                    "LOCAL_RANK": str(rank),
                    "WORLD_SIZE": "2",
                    "MASTER_ADDR": "127.0.0.1",
                    "MASTER_PORT": str(port),
                },
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for rank in (0, 1)
        ]
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        holder.release()
    assert [proc.returncode for proc in procs] == [2, 2], outputs
    assert_mentions(outputs[0][1], "another trainer", f"pid {os.getpid()} ")  # the holder's
    assert not (run / "status.json").exists()


def test_a_planned_run_directory_is_trained_as_its_config_says(tmp_path, capsys):
    """How the dashboard launches: it writes the whole TrainConfig as config.json (a plan) and
    starts `train --run-dir D`; flags given there still change it, --preset is refused."""
    from dinodiag.recipe.presets import get_train_preset

    run = tmp_path / "planned"
    plan = get_train_preset("tiny-test").config.with_overrides(
        {"run.max_steps": 3, "optim.koleo_weight": 0.05}
    )
    rundir.write_plan(run, plan.to_dict())
    assert rundir.is_planned(run)
    with pytest.raises(FileExistsError):
        rundir.write_plan(run, plan.to_dict())
    assert main_code(["train", "--run-dir", str(run), "--preset", "cpu-demo"]) == 2
    assert "holds a planned run" in capsys.readouterr().err
    assert main_code(["train", "--run-dir", str(run), "--max-steps", "2"]) == 0
    saved = rundir.read_config(run)
    assert saved["optim"]["koleo_weight"] == 0.05 and saved["run"]["max_steps"] == 2
    assert saved["name"] == "tiny-test" and "planned" not in saved and "resolved" in saved
    assert rundir.read_status(run)["state"] == "finished" and not rundir.is_planned(run)


def test_train_config_that_is_no_regular_file_says_what_it_is(tmp_path, capsys):
    """`train --config` on a FIFO once ended "give the images with --data": the file is named
    for what it is first, and a FIFO is never opened for reading (nothing blocks)."""
    fifo = tmp_path / "vitl14.yaml"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), (Path("/dev/zero"), "character device")):
        assert main_code(["train", "--config", str(path), "--data", "sample"]) == 2
        err = capsys.readouterr().err
        assert kind in err and "not a regular file" in err and "--data" not in err


def test_none_is_offered_only_where_a_flag_takes_it(capsys):
    assert main_code(["train", "--base-lr", "inf"]) == 2  # base_lr has no "no limit"
    assert "none" not in capsys.readouterr().err
    assert main_code(["train", "--max-seconds", "inf"]) == 2  # max_seconds does: say so
    assert "none lifts the limit" in capsys.readouterr().err
