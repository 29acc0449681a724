"""A run's pipeline: a recipe or your own code, measured, checked against the ViT, pickled as
its spec for spawned workers, and refused on resume when its file changed."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from dinodiag.data import open_dataset
from dinodiag.errors import ConfigError, PipelineSpecError
from dinodiag.probe.spec import is_pipeline_spec
from dinodiag.recipe.crops import fitting_patch_sizes, resolve_pipeline
from dinodiag.recipe.plan import Measured, plan_run
from dinodiag.recipe.presets import get_train_preset
from dinodiag.train.data import MultiCropDataset, summarise_records
from dinodiag.train.pipelines import (
    OwnSpec,
    OwnTrainingPipeline,
    check_unchanged,
    find_normalize,
    measure_own,
    own_spec,
    resolve_run_pipeline,
    with_own_pipeline,
)
from tests.facts import assert_mentions

REPO = Path(__file__).resolve().parents[2]


class MeasuredOn:
    """The planner's TrainingData on a dataset of the test's own (dinodiag.recipe.plan)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def measure(self, config: Any, *, images: bool, views: bool, gpus: bool) -> Measured:
        shapes = measure_own(own_spec(config), self.dataset, config.run.seed)[0]
        return Measured(len(self.dataset) if images else None, shapes if views else None, 0)


SEED = f"{REPO / 'examples/seed_pipeline.py'}"
TINY = get_train_preset("tiny-test").config

# A pipeline written by hand, the way a user might: no torchvision, a dict of views in [0, 1]
# (no Normalize), random flips from Python's random (seeded by the wrapper).
HAND_WRITTEN = """
import random

import numpy as np
import torch


class Views:
    def __init__(self, size, locals_):
        self.size, self.locals_ = size, locals_

    def view(self, image, size):
        side = min(image.size)
        left = random.randint(0, image.size[0] - side // 2)
        top = random.randint(0, image.size[1] - side // 2)
        crop = image.crop((left, top, left + side // 2, top + side // 2)).resize((size, size))
        tensor = torch.from_numpy(np.asarray(crop.convert("RGB"), dtype=np.float32) / 255)
        tensor = tensor.permute(2, 0, 1)
        return tensor.flip(-1) if random.random() < 0.5 else tensor

    def __call__(self, image):
        return {
            "global_crops": [self.view(image, self.size) for _ in range(2)],
            "local_crops": [self.view(image, self.size // 2) for _ in range(self.locals_)],
        }


def build(size=16, locals_=2):
    return Views(size, locals_)
"""


@pytest.fixture
def hand_written(tmp_path: Path) -> str:
    path = tmp_path / "my_views.py"
    path.write_text(HAND_WRITTEN, encoding="utf-8")
    return f"{path}:build"


@pytest.fixture(scope="module")
def dataset():
    return open_dataset(TINY.data.data, split="train")


def test_a_spec_is_code_a_preset_or_file_is_not():
    assert is_pipeline_spec("examples/seed_pipeline.py:build_two_view_augment")
    assert is_pipeline_spec("my_package.augment:build")
    assert is_pipeline_spec("/abs/path/aug.py:factory.inner")
    for text in ("dinov2", "configs/my.yaml", "C:\\configs\\my.yaml", "aug.py:", "a b:c", ":x"):
        assert not is_pipeline_spec(text), text


def test_the_seeds_pipeline_is_measured_and_its_normalize_found(dataset):
    config = with_own_pipeline(TINY, f"{SEED}:build_two_view_augment", '{"img_size": 16}')
    assert config.data.local_crops is None and config.data.global_crops_size is None
    run = resolve_run_pipeline(config, dataset)
    shapes = run.shapes
    assert shapes is not None and run.own is not None
    assert (shapes.global_number, shapes.global_size) == (2, (16, 16))
    assert (shapes.local_number, shapes.local_size) == (0, None)
    assert run.config.mean == (0.485, 0.456, 0.406) and "found in the pipeline" in run.normalisation
    assert run.config.global_crops_size == 16 and run.config.local_crops_number == 0
    record = run.record()
    assert record is not None and record["kwargs"] == {"img_size": 16}
    assert record["sha256"] == OwnSpec.of(f"{SEED}:x").sha256  # the file's hash
    assert record["label"] == "seed_pipeline.py:build_two_view_augment"
    sample = run.make()(dataset[0][0], seed=3)
    assert len(sample.records) == 2  # recorded by the probe, as the inspector records it
    assert all(r.scale is not None and r.recorded_by != "dinodiag" for r in sample.records)
    sampled = summarise_records([sample.records])
    assert sampled["sampled_global_scale"][1] == 2  # both global crops measured
    assert sampled["sampled_local_scale"] == (0.0, 0)  # no local views


def test_a_hand_written_pipeline_without_normalize_keeps_k_nn_images_in_0_1(dataset, hand_written):
    run = resolve_run_pipeline(with_own_pipeline(TINY, hand_written, '{"size": 8}'), dataset)
    assert run.shapes is not None and run.shapes.local_size == (4, 4)
    assert run.config.mean == (0.0, 0.0, 0.0) and run.config.std == (1.0, 1.0, 1.0)
    assert_mentions(run.normalisation, "no Normalize", "[0, 1]")
    assert resolve_pipeline(TINY).mean != run.config.mean  # the recipe keeps ImageNet's


def test_crops_the_patch_does_not_divide_are_refused_with_sizes_that_fit(dataset):
    config = with_own_pipeline(TINY, f"{SEED}:build_two_view_augment", '{"img_size": 18}')
    with pytest.raises(ConfigError) as info:
        resolve_run_pipeline(config, dataset)
    # the crops, the patch that does not divide them, and the sizes that would (best first)
    assert_mentions(str(info.value), "18x18 px", "patch size 4", "--patch-size 3 or 6 or 2")
    plan = plan_run(config, {}, MeasuredOn(dataset))  # no patch given: it adapts
    assert plan.config.model.patch_size == 3 and plan.pipeline.patch_size == 3
    why = plan.adapted
    assert_mentions(why, "patch size 3", "4", "seed_pipeline.py", "build_two_view_augment")
    assert_mentions(why, "18x18 px", "--patch-size")
    with pytest.raises(ConfigError, match="--patch-size 3 or 6 or 2"):  # a given patch stays
        plan_run(config, {"model.patch_size": 4}, MeasuredOn(dataset))
    assert resolve_run_pipeline(plan.config, dataset).config.patch_size == 3
    assert fitting_patch_sizes([(96, 96), (32, 32)], 16) == [16, 8, 4]


def test_views_that_do_not_stack_are_refused_naming_the_sizes(tmp_path, dataset):
    path = tmp_path / "odd.py"
    path.write_text(
        "import torch\n"
        "def mixed():\n"
        "    return lambda image: [torch.zeros(3, 16, 16), torch.zeros(3, 8, 8), "
        "torch.zeros(3, 12, 12)]\n"
        "def gray():\n"
        "    return lambda image: [torch.zeros(1, 16, 16)] * 2\n"
        "def one():\n"
        "    return lambda image: torch.zeros(3, 16, 16)\n",
        encoding="utf-8",
    )
    cases = {
        "mixed": "local views have different sizes \\(8x8, 12x12\\)",
        "gray": "shape \\(1, 16, 16\\).*convert to RGB",
        "one": "single view per image",
    }
    for factory, message in cases.items():
        with pytest.raises((ConfigError, PipelineSpecError), match=message):
            resolve_run_pipeline(with_own_pipeline(TINY, f"{path}:{factory}"), dataset)


def test_crop_knobs_and_kwargs_without_code_are_refused():
    with pytest.raises(ConfigError) as info:
        resolve_run_pipeline(TINY.with_overrides({"data.pipeline": f"{SEED}:x"}), None)
    assert_mentions(str(info.value), "--local-crops", "own pipeline")
    with pytest.raises(ConfigError) as info:
        resolve_run_pipeline(TINY.with_overrides({"data.pipeline_kwargs": '{"a": 1}'}), None)
    assert_mentions(str(info.value), "pipeline_kwargs", "data.pipeline")
    with pytest.raises(PipelineSpecError, match="not valid JSON"):
        with_own_pipeline(TINY, f"{SEED}:build_two_view_augment", "{img_size: 16}")
        OwnSpec.of(f"{SEED}:build_two_view_augment", "{img_size: 16}")
    with pytest.raises(ConfigError, match="is your own code"):
        resolve_pipeline(with_own_pipeline(TINY, f"{SEED}:build_two_view_augment"))


def test_your_own_pipeline_pickles_as_its_spec(hand_written, dataset):
    pipeline = OwnTrainingPipeline(OwnSpec.of(hand_written, '{"size": 8}'), n_global=2)
    first = pipeline(dataset[1][0], seed=5)
    assert pipeline._pipeline is not None  # loaded in this process
    copy = pickle.loads(pickle.dumps(pipeline))
    assert copy._pipeline is None and copy.spec == pipeline.spec  # the spec, not the code
    again = copy(dataset[1][0], seed=5)  # imported again, same seeded views
    assert all(torch.equal(a, b) for a, b in zip(first.views, again.views, strict=True))


def _first_batch_in_a_spawned_worker(spec: OwnSpec, data: str) -> dict:
    dataset = MultiCropDataset(open_dataset(data, split="train"), OwnTrainingPipeline(spec), seed=0)
    loader = DataLoader(
        dataset,
        batch_size=None,
        sampler=[(0, 1)],
        num_workers=1,
        multiprocessing_context=multiprocessing.get_context("spawn"),
    )
    sample, key = next(iter(loader))
    return {"views": len(sample.views), "key": key}


def test_a_spawned_loader_worker_rebuilds_the_pipeline(hand_written):
    spec = OwnSpec.of(hand_written, '{"size": 8, "locals_": 3}')
    got = _first_batch_in_a_spawned_worker(spec, TINY.data.data)
    assert got == {"views": 5, "key": [0, 1]}  # the default collate makes a list


def test_resume_refuses_a_changed_or_missing_file_unless_allowed(tmp_path, hand_written):
    stored = OwnSpec.of(hand_written)
    assert check_unchanged(stored, allow_change=False) == (stored, None)
    path = Path(hand_written.rpartition(":")[0])
    path.write_text(HAND_WRITTEN + "\n# edited\n", encoding="utf-8")
    with pytest.raises(PipelineSpecError) as info:
        check_unchanged(stored, allow_change=False)
    assert_mentions(str(info.value), str(path), "changed", "--allow-pipe")
    updated, message = check_unchanged(stored, allow_change=True)
    assert updated.sha256 != stored.sha256 and updated.sha256 == OwnSpec.of(hand_written).sha256
    assert message is not None and "resumed with the new code" in message
    path.unlink()
    with pytest.raises(PipelineSpecError, match="is gone"):
        check_unchanged(stored, allow_change=True)


def test_find_normalize_looks_inside_composes_lists_and_dicts():
    import torchvision.transforms as T
    from torchvision.transforms import v2

    nested = {"views": [T.Compose([T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])]}
    assert find_normalize(nested) == ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    modern = v2.Compose([v2.ToImage(), v2.Normalize([0.1, 0.2, 0.3], [1.0, 2.0, 3.0])])
    assert find_normalize(modern) == ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))
    assert find_normalize(T.Compose([T.ToTensor()])) is None
