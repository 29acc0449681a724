"""The training run end to end on the tiny-test preset (each run takes well under a second)."""

from __future__ import annotations

import json

import torch

from dinodiag import rundir
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train import engine, loop

TRAIN_KEYS = {
    "loss",
    "dino_loss",
    "ibot_loss",
    "koleo_loss",
    "lr",
    "wd",
    "momentum",
    "teacher_temp",
    "teacher_entropy",
    "teacher_batch_entropy",
    "kl_teacher_student",
    "prototypes_used",
    "feature_std",
    "effective_rank",
    "param_distance",
    "grad_norm",
    "img_per_s",
    "peak_mem_mb",
}


def tiny(**overrides):
    return get_train_preset("tiny-test").config.with_overrides(overrides)


def quiet(line: str) -> None:
    pass


def test_run_directory_contract(tmp_path):
    run = tmp_path / "run"
    cfg = tiny(**{"run.max_steps": 4, "run.eval_every": 2, "run.log_every": 1})
    result = engine.run_training(cfg, run, progress=quiet)
    assert result.state == "finished" and result.step == 4 and result.total_steps == 4
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "metrics.jsonl",
        "status.json",
    ]

    config = json.loads((run / "config.json").read_text())
    assert {"pipeline", "model", "optim", "data", "run", "resolved"} <= set(config)
    assert config["pipeline"]["global_crops_size"] == 16 and config["pipeline"]["patch_size"] == 4
    assert config["resolved"]["total_steps"] == 4 and config["resolved"]["world_size"] == 1

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"kind", "step", "epoch", "time"} <= set(r) for r in rows)
    assert rows[0]["kind"] == "eval" and rows[0]["step"] == 0  # the random-init baseline
    evals = [r for r in rows if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [0, 2, 4]
    assert all(0 <= r["knn_top1"] <= r["knn_top5"] <= 100 for r in evals)
    train = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert all(TRAIN_KEYS <= set(r) for r in train)
    assert train[-1]["param_distance"] > 0 and train[-1]["img_per_s"] > 0
    times = [r["time"] for r in rows]
    assert times == sorted(times)

    status = rundir.read_status(run)
    for key in (
        "state",
        "step",
        "message",
        "total_steps",
        "epoch",
        "eta_s",
        "pid",
        "started",
        "device",
        "knn_top1",
        "knn_top1_start",
    ):
        assert key in status
    assert status["state"] == "finished" and status["step"] == 4
    assert status["knn_top1_start"] == evals[0]["knn_top1"]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4


def test_stop_file_ends_the_run_with_a_checkpoint(tmp_path):
    run = tmp_path / "run"

    def stop_at_two(step: int) -> None:
        if step == 2:
            rundir.request_stop(run)

    cfg = tiny(**{"run.max_steps": 50, "run.eval_every": 1})
    result = engine.run_training(cfg, run, progress=quiet, on_step=stop_at_two)
    assert result.state == "stopped" and result.step == 2
    assert "STOP" in result.message
    status = rundir.read_status(run)
    assert status["state"] == "stopped" and status["step"] == 2
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_resume_continues_the_step_count_exactly(tmp_path):
    cfg = tiny(**{"run.max_steps": 6, "run.eval_every": 3})
    straight = tmp_path / "straight"
    assert engine.run_training(cfg, straight, progress=quiet).state == "finished"

    run = tmp_path / "resumed"

    def stop_at_four(step: int) -> None:
        if step == 4:
            rundir.request_stop(run)

    first = engine.run_training(cfg, run, progress=quiet, on_step=stop_at_four)
    assert first.state == "stopped" and first.step == 4
    second = engine.run_training(cfg, run, resume=True, progress=quiet)
    assert second.state == "finished" and second.step == 6
    assert second.knn_top1_start == first.knn_top1_start  # the baseline survives the resume

    metrics = rundir.read_metrics(run)
    train_steps = list(metrics[metrics["kind"] == "train"]["step"])
    assert train_steps == [1, 2, 3, 4, 5, 6]  # appended, no step twice
    assert list(metrics[metrics["kind"] == "eval"]["step"]) == [0, 3, 6]
    assert "resumed" in set(metrics["code"].dropna())
    assert metrics["time"].is_monotonic_increasing

    # The interrupted + resumed run ends with the same weights as the uninterrupted one.
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["student"]
    b = torch.load(run / "checkpoint.pt", weights_only=True)["student"]
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = tiny(**{"run.max_steps": 3})
    engine.run_training(cfg, run, progress=quiet)
    written = len((run / "metrics.jsonl").read_text().splitlines())
    with open(run / "metrics.jsonl", "a") as f:  # rows of a crashed session after step 3
        f.write('{"kind": "train", "step": 4, "epoch": 0, "time": 9}\n{"kind": "tra')
    result = engine.run_training(tiny(**{"run.max_steps": 5}), run, resume=True, progress=quiet)
    assert result.state == "finished" and result.step == 5
    steps = list(rundir.read_metrics(run, kind="train")["step"])
    assert steps == [1, 2, 3, 4, 5]
    resumed = rundir.read_events(run).set_index("code").loc["resumed"]
    assert resumed["dropped_rows"] == 1 and resumed["unreadable_lines"] == [written + 2]
    assert (run / "metrics.unreadable.jsonl").read_text() == '{"kind": "tra\n'


def test_resume_sets_a_corrupt_metrics_line_aside_and_names_it(tmp_path):
    """A line whose step is not a finite number (1e400 reads as inf) once made --resume exit 1
    with OverflowError; the run now resumes and the line is kept aside, named by number."""
    run = tmp_path / "run"
    engine.run_training(tiny(**{"run.max_steps": 3}), run, progress=quiet)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    corrupt = '{"kind": "train", "step": 1e400, "epoch": 0, "time": 1}'
    lines.insert(2, corrupt)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    result = engine.run_training(tiny(**{"run.max_steps": 4}), run, resume=True, progress=quiet)
    assert result.state == "finished" and result.step == 4
    assert list(rundir.read_metrics(run, kind="train")["step"]) == [1, 2, 3, 4]
    resumed = rundir.read_events(run).set_index("code").loc["resumed"]
    assert resumed["unreadable_lines"] == [3] and resumed["level"] == "warning"
    assert "line 3" in resumed["message"]
    assert (run / "metrics.unreadable.jsonl").read_text() == corrupt + "\n"


def test_time_limit_finishes_with_final_eval(tmp_path):
    run = tmp_path / "run"
    cfg = tiny(
        **{
            "run.max_steps": 10_000,
            "run.max_seconds": 1.5,
            "run.eval_every": 10_000,
            "run.epochs": 1000,
        }
    )
    result = engine.run_training(cfg, run, progress=quiet)
    assert result.state == "finished" and "time limit" in result.message
    assert 0 < result.step < 10_000
    evals = rundir.read_metrics(run, kind="eval")
    assert list(evals["step"]) == [0, result.step]  # the final k-NN is logged


def test_existing_run_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    engine.run_training(tiny(), run, progress=quiet)
    before = (run / "status.json").read_text()
    result = engine.run_training(tiny(), run, progress=quiet)
    assert result.state == "failed" and "--resume" in result.message
    assert (run / "status.json").read_text() == before


def test_progress_lines(tmp_path):
    lines: list[str] = []
    engine.run_training(tiny(**{"run.eval_every": 2}), tmp_path / "r", progress=lines.append)
    assert any("k-NN top-1" in line for line in lines)
    progress = [line for line in lines if line.startswith("[tiny-test] step")]
    assert len(progress) == 4 and "ETA" in progress[-1] and "img/s" in progress[-1]


def test_bf16_autocast_path_runs_on_cpu(tmp_path):
    """The CUDA recipe (bf16 autocast) is the same code; on CPU it runs under CPU autocast."""
    cfg = tiny(**{"run.precision": "bf16", "run.max_steps": 2, "run.eval_every": 2})
    result = engine.run_training(cfg, tmp_path / "run", progress=quiet)
    assert result.state == "finished", result.message
    status = rundir.read_status(tmp_path / "run")
    assert "bf16" in status["device"] and status["device"].startswith("cpu")
    train = rundir.read_metrics(tmp_path / "run", kind="train")
    assert train["loss"].notna().all()


def test_cuda_requested_without_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = engine.run_training(tiny(**{"run.device": "cuda"}), tmp_path / "run", progress=quiet)
    assert result.state == "failed" and "CUDA is not available" in result.message


def test_timed_schedules_end_at_the_time_limit(tmp_path, monkeypatch):
    clock = {"now": 0.0}

    def fake_monotonic() -> float:  # every reading advances 10 ms: independent of machine load
        clock["now"] += 0.01
        return clock["now"]

    monkeypatch.setattr(loop.time, "monotonic", fake_monotonic)
    run = tmp_path / "run"
    cfg = tiny(
        **{
            "run.max_steps": 100_000,
            "run.epochs": 10_000,
            "run.max_seconds": 5.0,
            "run.fit_to_time": True,
            "run.eval_every": 0,
            "optim.warmup_epochs": 0.0,
        }
    )
    result = engine.run_training(cfg, run, progress=quiet)
    assert result.state == "finished" and "time limit" in result.message
    assert 10 < result.step < 1000
    events = rundir.read_events(run)
    assert "timed_schedules" in set(events["code"])
    train = rundir.read_metrics(run, kind="train")
    lr = list(train["lr"])
    assert lr == sorted(lr, reverse=True)  # a cosine decay driven by the clock ...
    assert lr[-1] < 0.2 * lr[0]  # ... that has nearly run its course at the time limit
    assert rundir.read_status(run)["total_steps"] == result.step


def test_the_console_summary_says_whether_the_knn_change_beats_its_noise(tmp_path):
    from dinodiag.train.engine import RunResult

    plain = RunResult("finished", 10, 10, "finished 10 steps", tmp_path)
    assert plain.summary() == "finished: finished 10 steps"  # no k-NN: the outcome alone
    small = RunResult("finished", 10, 10, "done", tmp_path, 31.0, 30.0, knn_test=500)
    big = RunResult("finished", 10, 10, "done", tmp_path, 60.0, 30.0, knn_test=500)
    assert "30.0% at step 0 -> 31.0%" in small.summary() and "+1.0 points" in small.summary()
    assert small.summary().endswith("train longer)")  # within the noise: said so
    assert "+30.0 points" in big.summary() and "train longer" not in big.summary()
