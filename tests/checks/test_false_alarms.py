"""Fewer false alarms: uniform views, DINOv2's patch-14 configs, DINOv2 files without crops."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torchvision.transforms as T
from conftest import ListDataset, make_image
from PIL import Image

from dinodiag.augment.config import load_config_file
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS, load_config
from dinodiag.checks.evidence import pair_verdict
from dinodiag.checks.runner import run_checks
from dinodiag.probe.pipeline import OwnPipeline
from tests.facts import assert_mentions

DINOV2 = PRESETS["dinov2"].config
SMALL = DINOV2.replace(global_crops_size=32, local_crops_size=16, local_crops_number=6)


def test_uniform_views_are_excused_and_counted() -> None:
    """A blank frame gives identical views whatever is drawn: not a fault, but said."""
    blank = ListDataset([Image.new("RGB", (120, 90), (250, 250, 250))])
    report = run_checks(build_pipeline(SMALL), blank, expect=SMALL, samples=3)
    result = report.by_id("distinct_views")
    assert result.status == "pass", result.message
    assert_mentions(result.measured, "identical pair(s) excused", "uniform", "blank image")
    assert "pair(s) of uniform views" in result.message


def test_views_that_could_have_differed_are_faults() -> None:
    view = T.Compose([T.RandomResizedCrop(32), T.ToTensor()])

    def twice(image: Image.Image) -> list:
        out = view(image)
        return [out, out]

    data = ListDataset([make_image(100, 80, seed=i) for i in range(3)])
    result = run_checks(OwnPipeline(twice, "twice"), data, expect=SMALL, samples=3).by_id(
        "distinct_views"
    )
    assert result.status == "fail"
    assert_mentions(
        result.measured, "3 identical view pairs", "3 x the same view object", "sample 0: G1 and G2"
    )


def test_pair_verdicts() -> None:
    import torch

    from dinodiag.augment.records import ViewRecord

    flat, structured = torch.zeros(3, 4, 4), torch.arange(48.0).reshape(3, 4, 4)
    a = ViewRecord("local", 0, (10, 10), box=(0.0, 0.0, 4.0, 4.0), flip=False)
    b = ViewRecord("local", 1, (10, 10), box=(5.0, 5.0, 4.0, 4.0), flip=False)
    same = ViewRecord("local", 1, (10, 10), box=(0.0, 0.0, 4.0, 4.0), flip=False)
    # (a fault?, why the two views are identical)
    fault, why = pair_verdict(flat, flat.clone(), a, b)
    assert fault is False and "uniform" in why
    fault, why = pair_verdict(flat, flat.clone(), a, same)
    assert "same random draw" in why
    fault, why = pair_verdict(structured, structured.clone(), a, b)
    assert fault is True and "different draws" in why
    assert pair_verdict(structured, structured.clone(), None, None)[0] is True


VITL14 = """
dino: {head_n_prototypes: 131072, head_bottleneck_dim: 384}
ibot: {separate_head: true, head_n_prototypes: 131072}
train: {batch_size_per_gpu: 32, dataset_path: "ImageNet22k", centering: sinkhorn_knopp}
student: {arch: vit_large, patch_size: 14, drop_path_rate: 0.4, ffn_layer: swiglufused}
teacher: {momentum_teacher: 0.994}
optim: {epochs: 500, weight_decay_end: 0.2, base_lr: 2.0e-04, warmup_epochs: 80}
crops: {local_crops_size: 98}
"""
SHORT = """
train:
  dataset_path: ImageNet:split=TRAIN
  batch_size_per_gpu: 64
student:
  block_chunks: 4
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_dinov2_patch14_configs_pass_against_dinov2(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "vitl14.yaml", VITL14))
    assert (config.local_crops_size, config.patch_size, config.global_crops_scale) == (
        98,
        14,
        (0.32, 1.0),
    )
    data = ListDataset([make_image(300, 240, seed=i) for i in range(3)])
    report = run_checks(
        build_pipeline(config), data, expect=DINOV2, expect_name="dinov2", samples=2
    )
    sizes = report.by_id("view_sizes")
    assert sizes.status == "pass" and "patch-14 variant" in sizes.message
    reference = report.by_id("reference_diff")
    assert reference.status == "pass" and "dinov2's patch-14 variant" in reference.message
    assert report.by_id("patch_multiple").status == "pass"
    # 98 px locals are not DINO v1's variant: there the sizes still fail.
    dino = run_checks(build_pipeline(config), data, expect=PRESETS["dino"].config, samples=1)
    assert dino.by_id("view_sizes").status == "fail"


def test_a_dinov2_config_without_crops_reads_as_dinov2_does(tmp_path: Path) -> None:
    """``vitl16_short.yaml`` sets only ``train:`` and ``student:``: DINOv2's default crops."""
    config = load_config_file(_write(tmp_path, "vitl16_short.yaml", SHORT))
    assert config.name == "vitl16_short"
    for key in ("global_crops_scale", "local_crops_scale", "local_crops_number", "patch_size"):
        assert getattr(config, key) == getattr(DINOV2, key)


def test_unknown_crop_keys_of_a_dinov2_config_are_still_refused(tmp_path: Path) -> None:
    from dinodiag.errors import ConfigError

    path = _write(tmp_path, "typo.yaml", "crops: {local_crop_number: 6}\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    assert_mentions(str(info.value), "unknown key", "'crops.local_crop_number'", "Did you mean")
