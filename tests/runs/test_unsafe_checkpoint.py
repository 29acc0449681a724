"""open-run on checkpoints dinodiag must not unpickle: a file whose pickle would run code is
refused as not a plain tensor checkpoint (nothing runs, no advice to load it unsafely), and
damaged bytes are told apart from foreign objects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from dinodiag.cli import main
from dinodiag.errors import TrainingError
from dinodiag.train.models.load import read_state_file
from tests.facts import assert_mentions
from tests.runs.dinov2_fakes import write_run


class _RunsCode:
    """Unpickling this calls ``os.system``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"teacher": {"backbone.cls_token": _RunsCode(marker)}}, path)
    return path


def test_open_run_refuses_a_checkpoint_that_would_run_code(tmp_path: Path, capsys) -> None:
    root = write_run(tmp_path / "run", "healthy", iterations=())
    marker = tmp_path / "code_ran"
    checkpoint = root / "eval" / "training_99" / "teacher_checkpoint.pth"
    _malicious(checkpoint, marker)
    code = main(["open-run", str(root), "--data", "generated:size=32,n=8"])
    err = capsys.readouterr().err
    assert code == 2
    assert not marker.exists()  # nothing in the file ran
    # the file, why it is refused, and the object it would have built
    assert_mentions(err, f"{checkpoint} is", "plain tensor", "will not unpickle", "posix.system")
    assert "weights_only" not in err  # torch's advice to load it unsafely is not passed on
    assert "training_<iter>" not in err  # no pointing to the teacher checkpoints: it is one


def test_a_sharded_training_state_points_to_the_teacher_checkpoints(tmp_path: Path) -> None:
    state = _malicious(tmp_path / "model_0000099.rank_0.pth", tmp_path / "code_ran")
    with pytest.raises(TrainingError) as caught:
        read_state_file(state)
    # refused as such, and pointed to the teacher checkpoints that hold the same weights
    assert_mentions(str(caught.value), str(state), "plain tensor", "FSDP")
    assert_mentions(str(caught.value), "eval/training_<iter>/", "teacher_checkpoint.pth")
    assert not (tmp_path / "code_ran").exists()


def test_damaged_bytes_are_not_called_foreign_objects(tmp_path: Path) -> None:
    damaged = tmp_path / "teacher_checkpoint.pth"
    damaged.write_bytes(b"\x80\x02" + bytes(range(200, 256)) * 4)  # a pickle header, then noise
    with pytest.raises(TrainingError) as caught:
        read_state_file(damaged)
    assert_mentions(str(caught.value), "damaged", "PyTorch checkpoint")
    assert "plain tensor" not in str(caught.value)  # not called a file of foreign objects
    assert "weights_only" not in str(caught.value) and str(damaged) in str(caught.value)
