"""Looking inside a trained teacher: loading it from a checkpoint, attention maps, feature PCA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dinodiag.errors import TrainingError
from dinodiag.recipe.presets import get_train_preset
from dinodiag.runs.look_inside import (
    heatmap_overlay,
    inspect_image,
    load_teacher,
    minmax,
    pca_rgb,
    square_image,
    to_tensor,
    upsample,
)
from dinodiag.train.engine import run_training


def train(run_dir: Path, **overrides: object) -> Path:
    config = get_train_preset("tiny-test").config.with_overrides({"run.max_steps": 2, **overrides})
    result = run_training(config, run_dir, progress=None)
    assert result.state == "finished", result.message
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train(tmp_path_factory.mktemp("inspect") / "run")


def picture(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """A bright square on a dark background (not centred, not square)."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[5:25, 30:50] = (250, 200, 40)
    return Image.fromarray(array)


def test_the_teacher_is_the_checkpoints_ema_copy_on_the_cpu(run_dir: Path):
    teacher = load_teacher(run_dir)
    assert teacher.step == 2 and teacher.train_size == 16
    assert not teacher.backbone.training
    assert all(
        not p.requires_grad and p.device.type == "cpu" for p in teacher.backbone.parameters()
    )
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    expected = state["teacher"]["backbone.pos_embed"]
    assert torch.equal(teacher.backbone.pos_embed, expected)
    assert not torch.equal(expected, state["student"]["backbone.pos_embed"])  # EMA, not student


def test_inspect_image_gives_per_head_maps_overlays_and_a_pca(run_dir: Path):
    teacher = load_teacher(run_dir)
    result = inspect_image(teacher, picture(), input_size=32, display_size=64)
    heads = teacher.backbone.num_heads
    assert result.input_size == 32 and result.attention.shape == (heads, 8, 8)
    assert result.attention.min() >= 0 and result.attention.max() == pytest.approx(1.0)
    assert len(result.head_overlays) == heads
    assert all(o.size == (64, 64) for o in [*result.head_overlays, result.mean_overlay])
    assert result.pca_image.size == (64, 64) and result.image.size == (64, 64)
    assert result.foreground.all()  # no threshold: every patch kept
    odd = inspect_image(teacher, picture(), input_size=30, threshold=0.5)
    assert odd.input_size == 28  # rounded down to a multiple of the patch (4)
    assert 0 < odd.foreground.sum() < odd.foreground.size


def test_a_run_without_checkpoint_or_with_a_resnet_is_refused(tmp_path: Path):
    with pytest.raises(TrainingError, match="no checkpoint.pt"):
        load_teacher(tmp_path)
    resnet = train(tmp_path / "resnet", **{"model.arch": "resnet18", "run.max_steps": 1})
    with pytest.raises(TrainingError, match="need a ViT"):
        load_teacher(resnet)


def test_look_inside_errors_speak_of_looking_inside_not_of_resuming(tmp_path: Path) -> None:
    # each used to say "cannot resume ... start the run again without --resume"
    with pytest.raises(TrainingError, match="no checkpoint.pt yet") as missing:
        load_teacher(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="cannot read") as damaged:
        load_teacher(tmp_path)
    torch.save({"version": 1, "weights": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    with pytest.raises(TrainingError, match="missing step, teacher") as foreign:
        load_teacher(tmp_path)
    torch.save({"version": 99, "step": 3, "teacher": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(TrainingError, match="checkpoint version 99") as newer:
        load_teacher(tmp_path)
    for caught in (missing, damaged, foreign, newer):
        assert "resume" not in str(caught.value)


def test_pca_colours_separate_two_groups_and_the_threshold_finds_the_foreground():
    rng = np.random.default_rng(0)
    grid = (4, 4)
    features = rng.normal(0, 0.01, size=(16, 8))
    foreground = np.zeros(16, dtype=bool)
    foreground[[5, 6, 9, 10]] = True  # the centre of the grid
    features[foreground, 0] += 5.0  # far apart along one direction
    colours, mask = pca_rgb(features, grid)
    assert colours.shape == (4, 4, 3) and colours.min() >= 0 and colours.max() <= 1
    first = colours[..., 0].ravel()
    assert first[foreground].min() > 0.9 and first[~foreground].max() < 0.1  # the minority is high
    assert mask.all()
    colours, mask = pca_rgb(features, grid, threshold=0.5)
    assert mask.ravel().tolist() == foreground.tolist()
    assert (colours[~mask] == 0).all()  # background painted black
    attended = ~foreground  # an orientation (e.g. the CLS attention) decides the sign
    _, mask = pca_rgb(features, grid, threshold=0.5, orient=attended.astype(float))
    assert mask.ravel().tolist() == attended.tolist()
    with pytest.raises(ValueError, match="do not fill"):
        pca_rgb(features[:10], grid)


def test_image_helpers():
    square = square_image(picture((60, 40)), 32)
    assert square.size == (32, 32)
    tensor = to_tensor(square, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert tensor.shape == (1, 3, 32, 32) and tensor.min() >= -2.0 and tensor.max() <= 2.0
    np.testing.assert_allclose(minmax(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    assert (minmax(np.ones((2, 2))) == 0).all()
    assert upsample(np.eye(2), 8).shape == (8, 8)
    hot = heatmap_overlay(square, np.ones((4, 4)), alpha=1.0)
    cold = heatmap_overlay(square, np.zeros((4, 4)), alpha=1.0)
    assert np.asarray(hot).mean() > np.asarray(cold).mean()  # inferno: bright = high attention
