"""Every check, passing and failing, on pipelines built to break it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ListDataset, make_image
from PIL import Image

from dinodiag.augment.config import PipelineConfig
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.augment.records import MultiCropSample
from dinodiag.checks.runner import CHECK_IDS, run_checks
from dinodiag.probe.pipeline import load_pipeline_spec
from tests.facts import assert_mentions

DINOV2 = PRESETS["dinov2"].config
SMALL = PRESETS["small-images"].config


def check(pipeline, dataset, expect=DINOV2, samples=4, **kw):
    return run_checks(pipeline, dataset, expect=expect, samples=samples, **kw)


class Mutated:
    """A built pipeline whose output is changed by ``fn(sample) -> sample`` (a broken pipeline)."""

    def __init__(self, config: PipelineConfig, fn) -> None:
        self.inner = build_pipeline(config)
        self.config = config
        self.fn = fn

    def __call__(self, image: Image.Image, seed: int | None = None) -> MultiCropSample:
        return self.fn(self.inner(image, seed=seed))


def _map(fn):
    def apply(sample: MultiCropSample) -> MultiCropSample:
        sample.global_crops = [fn(v) for v in sample.global_crops]
        sample.local_crops = [fn(v) for v in sample.local_crops]
        return sample

    return apply


def status(report, check_id: str) -> str:
    return report.by_id(check_id).status


@pytest.fixture(scope="module")
def dinov2_report(small_dataset):
    return check(build_pipeline(DINOV2), small_dataset)


def test_dinov2_passes_everything(dinov2_report) -> None:
    assert [r.id for r in dinov2_report.results] == CHECK_IDS
    assert {r.id: r.status for r in dinov2_report.results if r.status != "pass"} == {}
    assert dinov2_report.verdict == "pass"


def test_seed_broken_fails_view_count_and_global_scale(small_dataset) -> None:
    report = check(
        build_pipeline(PRESETS["seed-broken"].config), small_dataset, expect_name="dinov2"
    )
    assert status(report, "view_count") == "fail"
    assert_mentions(report.by_id("view_count").message, "multi-crop", "8 local crops", "96 px")
    assert status(report, "global_scale") == "fail"
    message = report.by_id("global_scale").message
    assert "cut away too much" in message and "global_crops_scale: [0.32, 1]" in message
    assert status(report, "local_scale") == "skip"
    assert report.verdict == "fail"
    assert report.sorted()[0].status == "fail"


def test_seed_fixed_is_flagged_for_size_upsampling_and_reference(small_dataset) -> None:
    report = check(
        build_pipeline(PRESETS["seed-fixed"].config), small_dataset, expect_name="dinov2"
    )
    assert status(report, "local_vs_global_size") == "warn"
    assert status(report, "upsampling") == "warn"
    assert "1." in report.by_id("upsampling").measured  # relative density > 1.25x
    ref = report.by_id("reference_diff")
    assert ref.status == "warn" and ref.measured["matches"] == ["dino"]
    assert "DINO v1's defaults" in ref.message
    assert status(report, "view_count") == "pass"


def test_dino_v1_scales_warn_with_the_preset_name(small_dataset) -> None:
    report = check(build_pipeline(PRESETS["dino"].config), small_dataset)
    assert (
        status(report, "global_scale") == "warn"
        and "DINO v1 (preset dino)" in report.by_id("global_scale").message
    )
    assert status(report, "local_scale") == "warn"
    assert report.verdict == "warn"


def test_unknown_local_scale_fails(small_dataset) -> None:
    cfg = SMALL.replace(local_crops_scale=(0.01, 0.1))
    report = check(build_pipeline(cfg), small_dataset, expect=SMALL)
    assert status(report, "local_scale") == "fail"
    assert_mentions(report.by_id("local_scale").message, "44%", "5% of the image", "down to 1%")


def test_sampled_scale_outside_configured_range_fails(small_dataset) -> None:
    class Lying(Mutated):
        def __call__(self, image, seed=None):
            sample = self.inner(image, seed=seed)
            for rec in sample.records:
                rec.scale = 0.01
            return sample

    report = check(Lying(SMALL, lambda s: s), small_dataset, expect=SMALL)
    assert (
        status(report, "global_scale") == "fail"
        and "does not crop the way" in report.by_id("global_scale").message
    )


def test_local_larger_than_global_fails(small_dataset) -> None:
    cfg = SMALL.replace(local_crops_size=48)
    report = check(build_pipeline(cfg), small_dataset, expect=SMALL)
    assert status(report, "local_vs_global_size") == "fail"
    assert status(report, "view_sizes") == "fail"


@pytest.mark.parametrize(
    ("fn", "check_id", "expected", "pattern"),
    [
        (lambda v: (v * 50).to(torch.uint8), "dtype", "fail", "not floating point"),
        (lambda v: v.permute(1, 2, 0), "channels", "fail", "channel-last"),
        (lambda v: v[:1], "channels", "fail", "one channel"),
        (
            lambda v: torch.where(torch.rand_like(v) < 0.01, torch.nan, v),
            "finite",
            "fail",
            "NaN or Inf",
        ),
        (
            lambda v: (v - v.min()) / (v.max() - v.min()),
            "value_range",
            "fail",
            "missing Normalize",
        ),
        (
            lambda v: ((v - v.min()) / (v.max() - v.min()) * 255).round(),
            "value_range",
            "fail",
            "raw pixels",
        ),
        (lambda v: v * 100, "value_range", "fail", "far too large"),
        # Statistics over a few samples only warn (the README's table of checks says so).
        (lambda v: v * 4, "normalization", "warn", "far from mean 0 / std 1"),
    ],
)
def test_tensor_checks_flag_broken_outputs(
    small_dataset, fn, check_id: str, expected: str, pattern: str
) -> None:
    report = check(Mutated(SMALL, _map(fn)), small_dataset, expect=SMALL)
    result = report.by_id(check_id)
    assert result.status == expected, result.message
    assert pattern in result.message


def test_docs_list_every_check_in_run_order() -> None:
    """docs/checks.md's table of checks names each id of CHECK_IDS once, in the order they run."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "checks.md").read_text()
    table = page.split("# The checks", 1)[1].split("\n\n", 2)[1]
    ids = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    assert ids == CHECK_IDS


def test_duplicate_views_fail(small_dataset) -> None:
    def duplicate(sample: MultiCropSample) -> MultiCropSample:
        sample.global_crops = [sample.global_crops[0], sample.global_crops[0].clone()]
        return sample

    report = check(Mutated(SMALL, duplicate), small_dataset, expect=SMALL)
    assert status(report, "distinct_views") == "fail"


def test_unseeded_randomness_warns_determinism(small_dataset) -> None:
    generator = np.random.default_rng()  # not seeded by dinodiag

    def noisy(sample: MultiCropSample) -> MultiCropSample:
        sample.global_crops = [v + float(generator.normal()) for v in sample.global_crops]
        return sample

    report = check(Mutated(SMALL, noisy), small_dataset, expect=SMALL)
    assert status(report, "determinism") == "warn"


def test_varying_local_sizes_fail_collate_and_sizes(small_dataset) -> None:
    state = {"n": 0}

    def varying(sample: MultiCropSample) -> MultiCropSample:
        state["n"] += 1
        size = 16 if state["n"] % 2 else 8
        sample.local_crops = [
            torch.nn.functional.interpolate(v[None], size=size)[0] for v in sample.local_crops
        ]
        return sample

    report = check(Mutated(SMALL, varying), small_dataset, expect=SMALL)
    assert status(report, "collate") == "fail"
    assert (
        status(report, "view_sizes") == "fail"
        and "several sizes" in report.by_id("view_sizes").message
    )


def test_inconsistent_view_counts_fail(small_dataset) -> None:
    state = {"n": 0}

    def dropping(sample: MultiCropSample) -> MultiCropSample:
        state["n"] += 1
        if state["n"] % 2:
            sample.local_crops = sample.local_crops[:-1]
        return sample

    report = check(Mutated(SMALL, dropping), small_dataset, expect=SMALL)
    assert (
        status(report, "view_count") == "fail"
        and "changes from image to image" in report.by_id("view_count").message
    )


def test_patch_multiple_warns() -> None:
    dataset = ListDataset([make_image(300, 260)])
    report = check(build_pipeline(DINOV2.replace(patch_size=14)), dataset, samples=2)
    assert (
        status(report, "patch_multiple") == "warn"
        and "[96]" in report.by_id("patch_multiple").message
    )


def test_small_source_images_warn() -> None:
    dataset = ListDataset([make_image(64, 64, seed=i) for i in range(4)])
    report = check(build_pipeline(DINOV2), dataset, samples=2)
    assert status(report, "source_size") == "warn"
    assert "2/2 images" in report.by_id("source_size").measured
    ok = check(build_pipeline(SMALL), dataset, expect=SMALL, samples=2)
    assert status(ok, "source_size") == "pass"


def test_absolute_upsampling_warns_on_tiny_sources() -> None:
    dataset = ListDataset([make_image(40, 40, seed=i) for i in range(3)])
    report = check(build_pipeline(DINOV2), dataset, samples=2)
    assert (
        status(report, "upsampling") == "warn" and "blown up" in report.by_id("upsampling").message
    )


def test_own_pipeline_uses_measurements(small_dataset) -> None:
    pipe = load_pipeline_spec("examples/seed_pipeline.py:build_two_view_augment", {"img_size": 96})
    report = check(pipe, small_dataset)
    assert report.by_id("view_count").status == "fail"
    assert report.by_id("global_scale").status == "fail"
    assert "(0.2, 1)" in report.by_id("global_scale").measured
    assert (
        report.by_id("reference_diff").measured["differences"]["global_crops_size"]
        == "96 (expected 224)"
    )
    fixed = check(
        load_pipeline_spec("examples/seed_pipeline.py:build_multicrop_augment", {"img_size": 96}),
        small_dataset,
    )
    assert fixed.by_id("reference_diff").measured["matches"] == ["dino"]
    assert fixed.by_id("local_vs_global_size").status == "warn"


def test_own_pipeline_without_crops_skips_scale_checks(small_dataset) -> None:
    from dinodiag.probe.pipeline import OwnPipeline

    def resize_only(im):
        t = torch.from_numpy(np.array(im.resize((224, 224)), dtype=np.float32) / 255).permute(
            2, 0, 1
        )
        return [(t - 0.45) / 0.225, (t.flip(-1) - 0.45) / 0.225]

    report = check(OwnPipeline(resize_only, "resize"), small_dataset)
    assert status(report, "global_scale") == "skip"
    assert_mentions(
        report.by_id("global_scale").message, "no torchvision crop", "RandomResizedCrop"
    )
    assert any("no torchvision crop" in n for n in report.notes)


def test_report_formats(dinov2_report) -> None:
    data = json.loads(dinov2_report.to_json())
    assert set(data["checks"][0]) == {"id", "title", "status", "measured", "expected", "message"}
    assert data["verdict"] == "pass" and data["counts"]["pass"] == len(CHECK_IDS)
    markdown = dinodiag_md = dinov2_report.to_markdown()
    assert "| status | check |" in markdown and "`view_count`" in dinodiag_md
    assert "verdict: PASS" in dinov2_report.to_table()


def test_bad_arguments(small_dataset) -> None:
    with pytest.raises(ValueError, match="samples = 0"):
        check(build_pipeline(SMALL), small_dataset, samples=0)
    with pytest.raises(ValueError, match="empty"):
        check(build_pipeline(SMALL), ListDataset([]))


@pytest.mark.parametrize(
    "fn",
    [
        lambda v: v * 0.229 + 0.485,  # normalisation missing (values in [0, 1])
        lambda v: (v - 0.45) / 0.225,  # normalised twice
        lambda v: v * 0.229,  # mean subtracted, std not divided
    ],
)
def test_normalization_catches_common_mistakes(small_dataset, fn) -> None:
    report = check(Mutated(SMALL, _map(fn)), small_dataset, expect=SMALL)
    assert status(report, "normalization") == "warn"


def test_pixel_rounding_is_not_a_scale_violation() -> None:
    """Rounded boxes on small images sample 0.049 for a 0.05 minimum: still honoured."""
    dataset = ListDataset([make_image(200, 150, seed=i) for i in range(4)])
    cfg = DINOV2.replace(global_crops_size=32, local_crops_size=16, local_crops_number=8)
    report = check(build_pipeline(cfg), dataset, expect=cfg, samples=12)
    assert status(report, "local_scale") == "pass", report.by_id("local_scale").message
    assert status(report, "global_scale") == "pass"
