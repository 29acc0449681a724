"""Training your own pipeline end to end: the CLI trains the seed's example and a hand-written
pipeline, the run directory keeps what was used, resume refuses a changed file, crops that do
not fit the ViT exit 2; the logging cadence and the time budget of honest short runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dinodiag import rundir
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.augment_backend import describe_augmentation
from dinodiag.train.engine import run_training
from dinodiag.train.pipelines import with_own_pipeline
from tests.facts import assert_mentions
from tests.train.test_pipelines import HAND_WRITTEN

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
SEED_SPEC = "examples/seed_pipeline.py:build_multicrop_augment"
TINY = get_train_preset("tiny-test").config


def train(*argv: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dinodiag", "train", "--preset", "tiny-test", *argv]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


# slow (~30 s: a training subprocess); test_training_your_code_through_the_engine checks the
# same record in-process, test_machine_read_output_stays_json_when_the_pipeline_prints the CLI
@pytest.mark.slow
def test_the_cli_trains_the_seeds_example_pipeline_and_keeps_what_it_used(tmp_path):
    run_dir = tmp_path / "seed"
    done = train(
        "--run-dir",
        str(run_dir),
        "--pipeline",
        SEED_SPEC,
        "--pipeline-kwargs",
        '{"img_size": 16, "num_local_crops": 2}',
        "--max-steps",
        "3",
        "--eval-every",
        "3",
    )
    assert done.returncode == 0, done.stderr
    # The example's locals are 96 px whatever img_size says: 16 and 96 share patch 4.
    assert "finished 3 steps" in done.stdout
    # tiny-test's 32 held-out images cannot judge a k-NN change (200 resolve 10 points)
    assert_mentions(done.stdout, "32 test images", "too few")
    config = rundir.read_config(run_dir)
    own = config["own_pipeline"]
    assert own["spec"] == SEED_SPEC and own["kwargs"] == {
        "img_size": 16,
        "num_local_crops": 2,
    }
    assert own["file"] == str(REPO / "examples/seed_pipeline.py")
    assert len(own["sha256"]) == 64
    assert own["global_crops"] == {"number": 2, "size": [16, 16]}
    assert own["local_crops"] == {"number": 2, "size": [96, 96]}
    assert config["pipeline"]["name"] == f"yours: {Path(SEED_SPEC).name}"  # file:factory
    assert config["data"]["local_crops"] is None  # the preset's crop overrides are dropped
    train_rows = rundir.read_metrics(run_dir, "train")
    assert list(train_rows["step"]) == [1, 2, 3]  # every step of a short run is logged
    scales = train_rows["sampled_global_scale"]  # what the pipeline sampled, per logged step
    assert ((scales >= 0.4) & (scales <= 1.0)).all()  # the example's global scale (0.4, 1)
    assert (train_rows["sampled_local_scale"] <= 0.4).all()


# slow (~50 s: three training subprocesses); the refusal itself is test_pipelines'
# check_unchanged tests, the engine's resume of your code test_training_your_code_through_the_engine
@pytest.mark.slow
def test_a_hand_written_pipeline_trains_and_resume_refuses_its_changed_file(tmp_path):
    code = tmp_path / "my_views.py"
    code.write_text(HAND_WRITTEN, encoding="utf-8")
    run_dir = tmp_path / "mine"
    args = ["--run-dir", str(run_dir), "--pipeline", f"{code}:build"]
    done = train(*args, "--pipeline-kwargs", '{"size": 16}', "--max-steps", "2")
    assert done.returncode == 0, done.stderr
    own = rundir.read_config(run_dir)["own_pipeline"]
    assert own["mean"] == [0.0, 0.0, 0.0] and own["local_crops"]["size"] == [8, 8]
    code.write_text(HAND_WRITTEN + "\n# tuned the flips\n", encoding="utf-8")
    resume = ["--run-dir", str(run_dir), "--resume", "--max-steps", "3"]
    refused = train(*resume, cwd=tmp_path)  # another folder: the stored absolute path is used
    assert refused.returncode == 2
    assert "changed since the run started" in refused.stderr
    assert "--allow-pipeline-change" in refused.stderr
    assert rundir.read_status(run_dir)["step"] == 2  # the run is left as it was
    allowed = train(*resume, "--allow-pipeline-change", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    events = rundir.read_metrics(run_dir, "event")
    assert "pipeline_changed" in set(events["code"])
    assert rundir.read_config(run_dir)["own_pipeline"]["sha256"] != own["sha256"]
    assert rundir.read_status(run_dir)["step"] == 3


def test_crops_that_do_not_fit_the_chosen_patch_exit_2_with_what_to_change(tmp_path, capsys):
    from dinodiag.cli import main

    spec = "examples/seed_pipeline.py:build_two_view_augment"
    argv = ["train", "--preset", "tiny-test", "--run-dir", str(tmp_path / "r")]
    argv += ["--pipeline", str(REPO / spec), "--pipeline-kwargs", '{"img_size": 18}']
    assert main([*argv, "--patch-size", "4"]) == 2
    err = capsys.readouterr().err
    # the code's crops, the patch that does not divide them, and the patches that do
    assert_mentions(err, "build_two_view_augment", "18x18 px", "patch size 4", "does not divide")
    assert "--patch-size 3 or 6 or 2" in err
    assert not (tmp_path / "r").exists()  # refused before anything was written
    assert main([*argv, "--print-config"]) == 0  # without --patch-size it adapts
    out = capsys.readouterr()
    assert "patch size 3 instead of 4" in out.err
    assert json.loads(out.out)["model"]["patch_size"] == 3


def test_the_first_steps_are_logged_then_every_log_every(tmp_path):
    config = TINY.with_overrides(
        {"run.max_steps": 9, "run.log_every": 4, "run.log_first_steps": 3, "run.epochs": 5}
    )
    result = run_training(config, tmp_path / "r", progress=None)
    assert result.state == "finished", result.message
    assert list(rundir.read_metrics(tmp_path / "r", "train")["step"]) == [1, 2, 3, 4, 8, 9]
    events = rundir.read_metrics(tmp_path / "r", "event").set_index("code")
    assert events.loc["first_step", "setup_seconds"] > 0  # the set-up, in the run's record
    assert "first step after" in events.loc["first_step", "message"]


def test_the_time_budget_counts_from_the_process_start(tmp_path):
    """``started`` 30 s ago with a 31 s budget: the set-up used it up, no step is trained."""
    config = TINY.with_overrides(
        {"run.max_seconds": 31.0, "run.max_steps": 50, "run.eval_every": 10}
    )
    result = run_training(config, tmp_path / "r", progress=None, started=time.time() - 30)
    assert result.state == "finished" and result.step == 0
    assert "time limit of 31 s" in result.message
    rows = rundir.read_metrics(tmp_path / "r", "eval")
    assert list(rows["step"]) == [0]  # the step-0 k-NN, and nothing after it
    assert rows["time"].min() >= 30.0  # the clock of every row starts at the process start


def test_training_your_code_through_the_engine(tmp_path):
    code = tmp_path / "views.py"
    code.write_text(HAND_WRITTEN, encoding="utf-8")
    config = with_own_pipeline(TINY, f"{code}:build", '{"size": 16, "locals_": 1}')
    config = config.with_overrides({"run.max_steps": 2, "run.eval_every": 2})
    result = run_training(config, tmp_path / "r", progress=None)
    assert result.state == "finished", result.message
    assert result.knn_test == 32  # tiny-test's held-out images (the verdict's noise)
    evals = rundir.read_metrics(tmp_path / "r", "eval")
    assert list(evals["step"]) == [0, 2]


@pytest.mark.parametrize("flag", ["--local-crops", "--global-crops-size"])
def test_crop_flags_with_your_code_exit_2(tmp_path, capsys, flag):
    from dinodiag.cli import main

    argv = ["train", "--preset", "tiny-test", "--run-dir", str(tmp_path / "r"), flag, "8"]
    assert main([*argv, "--pipeline", str(REPO / SEED_SPEC)]) == 2
    # the flag, why it cannot apply, and where the sizes go instead
    field = "data." + flag.removeprefix("--").replace("-", "_")
    assert_mentions(capsys.readouterr().err, f"{flag} 8", field, "your own", "--pipeline-kwargs")


def test_your_code_on_the_device_backend_is_refused_before_anything_is_written(tmp_path, capsys):
    from dinodiag.cli import main

    argv = ["train", "--preset", "tiny-test", "--run-dir", str(tmp_path / "r")]
    argv += ["--pipeline", str(REPO / SEED_SPEC), "--augment-device", "device"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert_mentions(err, "--augment-device device", "your own", "build_multicrop_augment")
    assert "use --augment-device cpu" in err
    assert not (tmp_path / "r").exists()


def test_auto_on_a_gpu_trains_your_code_in_the_loader_workers_and_says_so(tmp_path, monkeypatch):
    """``auto`` means the device backend on a GPU; your code cannot run there, so the run
    takes the CPU path with an event instead (simulated: the engine is told it is on a GPU)."""
    from dinodiag.train import run_setup

    asked = []
    monkeypatch.setattr(
        run_setup, "augments_on_device", lambda choice, _: asked.append(choice) or 1
    )
    code = tmp_path / "views.py"
    code.write_text(HAND_WRITTEN, encoding="utf-8")
    config = with_own_pipeline(TINY, f"{code}:build", '{"size": 16, "locals_": 1}')
    config = config.with_overrides({"run.max_steps": 2, "run.eval_every": 0})
    result = run_training(config, tmp_path / "r", progress=None)
    assert asked == ["auto"] and result.state == "finished", result.message
    events = rundir.read_metrics(tmp_path / "r", "event").set_index("code")
    assert "DataLoader workers" in events.loc["augment_device", "message"]
    resolved = rundir.read_config(tmp_path / "r")["resolved"]["augment_device"]
    assert resolved == describe_augmentation(None, config.data)  # the workers' backend
    train_rows = rundir.read_metrics(tmp_path / "r", "train")
    assert "augment_time" not in train_rows or train_rows["augment_time"].isna().all()


@pytest.mark.parametrize("flags", [["--estimate", "--json"], ["--print-config"]])
def test_machine_read_output_stays_json_when_the_pipeline_prints(tmp_path, flags):
    """Your own pipeline that prints (Python print, and a write to file descriptor 1 as C
    code does) once spoiled `train --estimate --json`; standard output holds the JSON alone
    and what the pipeline printed goes to standard error."""
    source = (REPO / "examples/seed_pipeline.py").read_text()
    noisy = tmp_path / "noisy.py"
    noisy.write_text(
        source
        + "\n\nimport os as _os\n\n\ndef noisy(**kwargs):\n"
        + "    print('hello from the pipeline')\n"
        + "    _os.write(1, b'raw bytes on fd 1\\n')\n"
        + "    inner = build_multicrop_augment(**kwargs)\n\n"
        + "    def call(image):\n        print('called')\n        return inner(image)\n\n"
        + "    return call\n"
    )
    done = train(
        "--pipeline",
        f"{noisy}:noisy",
        "--pipeline-kwargs",
        '{"img_size": 16, "num_local_crops": 2}',
        "--max-steps",
        "2",
        *flags,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)  # the whole of standard output is one JSON document
    assert isinstance(data, dict) and data
    assert "hello from the pipeline" in done.stderr and "raw bytes on fd 1" in done.stderr
