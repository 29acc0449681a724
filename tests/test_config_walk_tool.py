"""tests/tools/config_walk.py: the count of a walk's file entries, and the walk of the real CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from dinodiag.recipe.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from tests.tools import config_walk
from tests.tools.config_walk import Call, FileEntries, Walk, count_entries


def test_count_entries_counts_runs_of_consecutive_calls_per_file() -> None:
    walk = [("a.py", "f"), ("a.py", "g"), ("b.py", "h"), ("a.py", "k"), ("c.py", "m")]
    assert count_entries(walk) == [
        FileEntries("a.py", entries=2, calls=3, first_function="f"),
        FileEntries("b.py", entries=1, calls=1, first_function="h"),
        FileEntries("c.py", entries=1, calls=1, first_function="m"),
    ]


def test_count_entries_alternating_files_and_one_file() -> None:
    alternating = count_entries([("a", "f1"), ("b", "g1"), ("a", "f2"), ("b", "g2"), ("a", "f3")])
    assert [(f.file, f.entries, f.calls, f.first_function) for f in alternating] == [
        ("a", 3, 3, "f1"),
        ("b", 2, 2, "g1"),
    ]
    assert count_entries([("a", "f")] * 5) == [FileEntries("a", 1, 5, "f")]
    assert count_entries([]) == []


def test_arguments_open_star_args_and_keyword_args() -> None:
    def entry(first: Any, *rest: Any, key: Any = None, **more: Any) -> list[tuple[str, Any]]:
        return config_walk._arguments(sys._getframe())

    names = [name for name, _ in entry(1, 2, 3, key=4, extra=5)]
    assert names == ["first", "key", "rest[0]", "rest[1]", "more['extra']"]


def test_config_types_are_the_config_its_sections_and_the_flags() -> None:
    types = config_walk.config_types()
    assert set(types) == {
        TrainConfig,
        ModelConfig,
        OptimConfig,
        DataConfig,
        RunConfig,
        argparse.Namespace,
    }


def test_train_argv_adds_a_run_dir_unless_given(tmp_path: Path) -> None:
    assert config_walk.train_argv([], tmp_path) == [
        "train",
        *config_walk.DEFAULT_TRAIN_FLAGS,
        "--run-dir",
        str(tmp_path / "run"),
    ]
    assert config_walk.train_argv(["--preset", "cpu-demo", "--run-dir", "D"], tmp_path)[-2:] == [
        "--run-dir",
        "D",
    ]
    assert config_walk.train_argv(["--run-dir=D"], tmp_path) == ["train", "--run-dir=D"]


def _synthetic_walk() -> Walk:
    calls = [
        Call("dinodiag/cli_x.py", "cmd", 1, ("args: Namespace",)),
        Call("dinodiag/conf.py", "build", 5, ("args: Namespace",), depth=1),
        Call("dinodiag/cli_x.py", "after", 9, ("config: TrainConfig",)),
        Call("dinodiag/conf.py", "again", 7, ("self: TrainConfig",), depth=1),
    ]
    return Walk(("train",), tuple(calls), reached_step=True, exit_code=0)


def test_table_and_json_give_entries_calls_and_totals() -> None:
    walk = _synthetic_walk()
    rows = {
        line.split()[0]: line.split()[1:]
        for line in config_walk.format_table(walk).splitlines()
        if line.startswith("dinodiag/")
    }
    assert rows == {"dinodiag/cli_x.py": ["2", "2", "cmd"], "dinodiag/conf.py": ["2", "2", "build"]}
    data = json.loads(json.dumps(walk.to_dict(verbose=True)))
    assert (data["files_crossed"], data["entries"], data["calls"]) == (2, 4, 4)
    assert data["reached_step"] is True
    assert [c["function"] for c in data["walk"]] == ["cmd", "build", "after", "again"]
    assert "walk" not in walk.to_dict()
    verbose = config_walk.format_table(walk, verbose=True).splitlines()
    # each call once, as file:function with what it was given, indented by its depth
    [cmd] = [line for line in verbose if "dinodiag/cli_x.py:cmd(" in line]
    [again] = [line for line in verbose if "dinodiag/conf.py:again(" in line]
    assert "(args: Namespace)" in cmd and "(self: TrainConfig)" in again
    assert [len(line) - len(line.lstrip()) for line in (cmd, again)] == [2, 4]


def test_main_prints_json_and_exits_1_when_the_step_was_not_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    given: list[list[str]] = []
    short = dataclasses.replace(_synthetic_walk(), reached_step=False, exit_code=2)
    monkeypatch.setattr(config_walk, "record_walk", lambda flags: given.append(flags) or short)
    assert config_walk.main(["--json", "--", "--preset", "cpu-demo"]) == 1
    assert given == [["--preset", "cpu-demo"]]
    data = json.loads(capsys.readouterr().out)
    assert (data["reached_step"], data["exit_code"], data["files_crossed"]) == (False, 2, 2)


def test_walk_of_the_real_cli_starts_at_the_command_and_reaches_the_first_step() -> None:
    tracer = sys.gettrace()  # a coverage tracer, say: the walk puts it back
    walk = config_walk.record_walk()  # train --preset tiny-test --max-steps 1
    assert sys.gettrace() is tracer
    assert walk.exit_code == 0
    assert walk.reached_step
    first = walk.calls[0]
    assert first.file == "dinodiag/train/cli.py" or first.file.startswith("dinodiag/cli")
    assert any(c.endswith(": Namespace") for c in first.carriers)
    assert any(c.endswith(": TrainConfig") for call in walk.calls for c in call.carriers)
    files = walk.files()
    assert len(files) >= 3
    assert sum(f.calls for f in files) == len(walk.calls)
    for call in walk.calls:
        assert call.file.startswith("dinodiag/") and call.file.endswith(".py")
        assert call.function not in config_walk.SKIPPED_FRAMES
    # issue 22's target on the main path: one planner (recipe/plan.py), the config validated
    # where it is defined, the trainer reading what was planned
    assert _most_entries(walk) == {}
    assert {"dinodiag/recipe/plan.py", "dinodiag/train/engine.py"} <= {f.file for f in files}


def _most_entries(walk: Walk) -> dict[str, int]:
    return {f.file: f.entries for f in walk.files() if f.entries > 2}


@pytest.mark.slow
def test_the_walk_of_your_own_pipeline_enters_each_file_once_or_twice() -> None:
    code = "examples/seed_pipeline.py:build_multicrop_augment"
    kwargs = '{"img_size": 16, "local_size": 8, "num_local_crops": 2}'
    flags = ["--preset", "tiny-test", "--max-steps", "1", "--pipeline", code]
    walk = config_walk.record_walk([*flags, "--pipeline-kwargs", kwargs])
    assert walk.reached_step and walk.exit_code == 0
    assert _most_entries(walk) == {}
    assert "dinodiag/train/training_data.py" in {f.file for f in walk.files()}  # measured
