"""check / stats on worker processes: the same report as one process, the watchdog, the
fallback for a pipeline that cannot travel, the empty split, the vectorised view tally."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from conftest import make_image

import dinodiag.workers as workers
from dinodiag.augment.presets import PRESETS
from dinodiag.checks.evidence import tally_views
from dinodiag.checks.runner import run_checks
from dinodiag.cli import main
from dinodiag.data import open_dataset
from dinodiag.errors import DataError, PipelineSpecError, PipelineTimeoutError
from dinodiag.probe.pipeline import OwnPipeline, load_pipeline_spec
from dinodiag.stats import sample_tasks, sample_views
from dinodiag.workers import pool
from tests.facts import assert_mentions

EXPECT = PRESETS["dinov2"].config.replace(global_crops_size=32, local_crops_size=16)
STUCK = (77, 77)  # the size of the image the test pipeline hangs (or dies) on

# A user's file: the transform is a closure (it cannot be pickled): workers import the file
# again from its spec. It notes the process it ran in, and hangs or dies on one image size.
PIPELINE_FILE = """
import os, signal, time
import torchvision.transforms as T

def factory(pid_dir=None, hang_size=None, die_size=None, block_alarm=False):
    big, small = T.RandomResizedCrop(32, scale=(0.32, 1.0)), T.RandomResizedCrop(16)
    to_tensor = T.Compose([T.RandomHorizontalFlip(), T.ToTensor()])

    def transform(image):
        if pid_dir:
            open(os.path.join(pid_dir, str(os.getpid())), "a").close()
        if hang_size and list(image.size) == hang_size:
            if block_alarm:
                signal.signal(signal.SIGALRM, signal.SIG_IGN)  # the watchdog's alarm too
            while True:
                time.sleep(0.05)
        if die_size and list(image.size) == die_size:
            os._exit(3)
        return [to_tensor(big(image)), to_tensor(big(image))] + [
            to_tensor(small(image)) for _ in range(4)
        ]

    return transform
"""


@pytest.fixture
def spec(tmp_path: Path) -> str:
    path = tmp_path / "my_pipeline.py"
    path.write_text(PIPELINE_FILE)
    return f"{path}:factory"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Eight 120x90 images and one 77x77 one (stuck.png), in two classes."""
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
    for i in range(8):
        make_image(120, 90, seed=i).save(tmp_path / "images" / "ab"[i % 2] / f"img_{i}.png")
    make_image(*STUCK, seed=9).save(tmp_path / "images" / "a" / "stuck.png")
    return tmp_path / "images"


@pytest.fixture
def always_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start whatever the samples cost (by default only when they pay for their start)."""
    monkeypatch.setattr(pool, "COLD_START_SECONDS", 0.0)
    monkeypatch.setattr(pool, "WARM_START_SECONDS", 0.0)


def _stuck_sample(dataset, samples: int, seed: int) -> int:
    """The sample number that draws stuck.png."""
    tasks = sample_tasks(dataset, samples, seed)
    return next(t.number for t in tasks if t.image.endswith("stuck.png"))


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_two_workers_give_the_report_of_one_process(
    spec: str,
    folder: Path,
    tmp_path: Path,
    always_parallel: None,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
) -> None:
    """Forked (the command line) or from the fork server (the dashboard, a notebook)."""
    monkeypatch.setattr(pool, "START_METHOD", method)
    pids = tmp_path / "pids"
    pids.mkdir()
    pipeline = load_pipeline_spec(spec, {"pid_dir": str(pids)})
    dataset = open_dataset(str(folder), split="all")
    reports = [
        run_checks(pipeline, dataset, expect=EXPECT, samples=12, seed=5, workers=count)
        for count in (1, 2)
    ]
    assert reports[0].to_json() == reports[1].to_json()
    assert reports[0].samples == 12
    assert str(reports[0].by_id("view_count").measured).startswith("2 global + 4 local")
    # the closure ran in two other processes: it was rebuilt there from its spec
    assert len({int(p.name) for p in pids.iterdir()} - {os.getpid()}) == 2


def test_stats_rows_are_the_same_for_any_worker_count(
    spec: str, folder: Path, always_parallel: None
) -> None:
    pipeline = load_pipeline_spec(spec)
    dataset = open_dataset(str(folder), split="all")
    one = sample_views(pipeline, dataset, 20, seed=2, workers=1)
    two = sample_views(pipeline, dataset, 20, seed=2, workers=2)
    assert one.equals(two)
    assert one["sample"].tolist() == sorted(one["sample"].tolist())  # merged in sample order
    assert len(one) == 20 * 6


def test_unusable_files_found_by_workers_reach_the_dataset(
    spec: str, folder: Path, always_parallel: None
) -> None:
    (folder / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    dataset = open_dataset(str(folder), split="all")
    # a seed that loads the broken file in a worker (sample 0 is drawn here)
    seed = next(s for s in range(100) if not sample_tasks(dataset, 10, s)[0].image.endswith("jpg"))
    sample_views(load_pipeline_spec(spec), dataset, 10, seed=seed, workers=2)
    assert [Path(p.path).name for p in dataset.problems] == ["broken.jpg"]


def test_a_pipeline_that_cannot_travel_runs_here_with_a_note(
    folder: Path, always_parallel: None
) -> None:
    def transform(image):  # no spec to rebuild it from, and a closure does not pickle
        view = torch.zeros(3, 8, 8)
        return [view + 1, view + 2]

    notes: list[str] = []
    dataset = open_dataset(str(folder), split="all")
    frame = sample_views(
        OwnPipeline(transform, "closure"), dataset, 6, workers=2, on_note=notes.append
    )
    assert len(frame) == 12
    [note] = notes
    assert_mentions(note, "cannot be sent", "worker processes", "closure")


def test_workers_default_to_the_available_cores() -> None:
    assert workers.resolve_workers(None) == len(os.sched_getaffinity(0))
    assert workers.resolve_workers(3) == 3
    with pytest.raises(ValueError, match="workers = 0"):
        workers.resolve_workers(0)
    with pytest.raises(ValueError, match="timeout = -1"):
        workers.resolve_timeout(-1)


def _stuck_run(spec: str, folder: Path, first: int, **kwargs):
    """The pipeline (factory ``kwargs``), the dataset and a seed whose run draws stuck.png
    as sample ``first`` or later."""
    dataset = open_dataset(str(folder), split="all")
    seed = next(s for s in range(100) if _stuck_sample(dataset, 9, s) >= first)
    return load_pipeline_spec(spec, kwargs), dataset, seed


def _names_the_stuck_sample(error: BaseException, spec: str, dataset, seed: int) -> bool:
    message = str(error)
    expected = f"sample {_stuck_sample(dataset, 9, seed)} (image "
    return spec in message and expected in message and "stuck.png" in message


def test_a_hang_in_this_process_names_the_spec_and_the_image(spec: str, folder: Path) -> None:
    pipeline, dataset, seed = _stuck_run(spec, folder, 0, hang_size=list(STUCK))
    with pytest.raises(PipelineTimeoutError, match="took more than 0.5 s") as caught:
        sample_views(pipeline, dataset, 9, seed=seed, workers=1, timeout=0.5)
    assert _names_the_stuck_sample(caught.value, spec, dataset, seed)


@pytest.mark.parametrize(
    ("kwargs", "first", "error"),
    [
        ({"hang_size": list(STUCK)}, 1, "took more than 1 s"),  # the worker's own alarm
        # the code turned the alarm off: the parent's wait stops it (after the first round
        # of samples, which is allowed the workers' start)
        ({"hang_size": list(STUCK), "block_alarm": True}, 4, "took more than 1 s"),
        ({"die_size": list(STUCK)}, 1, "a worker process died"),
    ],
    ids=["hangs", "hangs-ignoring-the-alarm", "dies"],
)
def test_a_stuck_worker_is_named_with_its_sample(
    spec: str,
    folder: Path,
    always_parallel: None,
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict,
    first: int,
    error: str,
) -> None:
    monkeypatch.setattr(pool, "BACKSTOP_SECONDS", 1.0)
    pipeline, dataset, seed = _stuck_run(spec, folder, first, **kwargs)
    with pytest.raises(PipelineSpecError, match=error) as caught:
        run_checks(pipeline, dataset, expect=EXPECT, samples=9, seed=seed, workers=2, timeout=1)
    assert _names_the_stuck_sample(caught.value, spec, dataset, seed)
    assert isinstance(caught.value, PipelineTimeoutError) == ("hang_size" in kwargs)


def test_cli_timeout_exits_as_a_pipeline_error(spec: str, folder: Path, capsys) -> None:
    kwargs = json.dumps({"hang_size": list(STUCK)})
    argv = ["--pipeline", spec, "--pipeline-kwargs", kwargs, "--data", str(folder)]
    argv += ["--samples", "9", "--timeout", "0.5", "--workers", "1"]
    for command in ("check", "stats"):
        assert main([command, *argv]) == 2
        err = capsys.readouterr().err
        assert "stuck.png" in err and "took more than 0.5 s" in err and spec in err


def test_cli_refuses_zero_workers_and_a_negative_timeout(capsys) -> None:
    for option, value in (("--workers", "0"), ("--timeout", "-3"), ("--timeout", "nan")):
        with pytest.raises(SystemExit) as caught:
            main(["check", option, value])
        assert caught.value.code == 2
        assert option in capsys.readouterr().err


def test_an_empty_val_split_names_the_folder_and_the_split(tmp_path: Path, capsys) -> None:
    """Two images per class: round(2 x 0.2) = 0 validation images."""
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(2):
            make_image(64, 48, seed=i).save(tmp_path / label / f"{i}.png")
    dataset = open_dataset(str(tmp_path), split="val")
    with pytest.raises(DataError) as caught:
        run_checks(load_pipeline_spec("examples/dino_pipelines.py:dino_v1"), dataset, expect=EXPECT)
    assert type(caught.value) is not ValueError
    assert main(["check", "--data", str(tmp_path), "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "'val' split" in err and "--split all" in err
    assert "fewer than 3 images" in err
    assert main(["stats", "--data", str(tmp_path), "--split", "val"]) == 2
    assert "nothing to sample" in capsys.readouterr().err


def test_the_stacked_tally_matches_view_by_view() -> None:
    """NaN / inf views, integer views, views not 3xHxW: the same tallies as one at a time."""
    generator = torch.Generator().manual_seed(0)
    views = [torch.rand(3, 8, 8, generator=generator) * 4 - 2 for _ in range(3)]
    views += [torch.rand(3, 4, 6, generator=generator) for _ in range(2)]
    nan_view = torch.rand(3, 8, 8, generator=generator) * 100
    nan_view[0, 0, 0] = math.nan
    inf_view = torch.rand(3, 4, 6, generator=generator)
    inf_view[1, 2, 3] = math.inf
    grey = torch.rand(1, 8, 8, generator=generator) - 5
    views += [nan_view, inf_view, grey, (torch.rand(3, 4, 6) * 255).to(torch.uint8)]
    views += [torch.zeros(3, 0, 4)]
    tally = tally_views(views)
    assert tally.nonfinite == 2
    assert tally.dtypes == {"float32": 9, "uint8": 1}
    assert tally.non_float_views == 1
    assert dict(tally.bad_channels) == {"1x8x8": 1}
    # the range of the views without NaN (the inf view's max is inf), as one view at a time
    finite = [v.float() for v in views if v.numel() and not torch.isnan(v.float()).any()]
    assert tally.value_low == min(float(v.min()) for v in finite) < -4
    assert tally.value_high == math.inf
    clean = [v for v in views if v.ndim == 3 and v.shape[0] == 3 and v.numel()]
    clean = [v for v in clean if torch.isfinite(v.float()).all()]
    pixels = torch.cat([v.float().reshape(3, -1) for v in clean], dim=1).double()
    assert tally_views(clean).channel_sums.tolist() == pixels.sum(dim=1).tolist()
    assert tally_views(clean).channel_count == pixels.shape[1]
