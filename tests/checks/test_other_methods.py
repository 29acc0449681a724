"""Other methods' faithful pipelines: warnings that name the method, failures only for bugs."""

from __future__ import annotations

import pytest
import torchvision.transforms as T
from conftest import ListDataset, make_image
from other_methods import (
    EXPECT,
    EnhanceJitter,
    HandCrop,
    LightlyBlur,
    LightlySolarize,
    MultiView,
    RandomThresholdSolarize,
    ibot,
    lightly_dino,
    vissl,
    with_step,
)

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.checks.crops import scale_coverage
from dinodiag.checks.runner import run_checks
from dinodiag.probe.pipeline import OwnPipeline
from tests.facts import assert_mentions

DATA = ListDataset([make_image(96 + 8 * i, 72 + 4 * i, seed=i) for i in range(6)])


def report_of(transform, samples: int = 12, expect=EXPECT):
    return run_checks(
        OwnPipeline(transform, "mine"),
        DATA,
        expect=expect,
        expect_name="dinov2",
        samples=samples,
        seed=1,
    )


@pytest.fixture(scope="module")
def lightly_report():
    return report_of(lightly_dino())


def test_lightly_dino_transform_passes_with_warnings_that_name_lightly(lightly_report) -> None:
    report = lightly_report
    assert report.verdict == "warn", [(r.id, r.status, r.message) for r in report.failures()]
    count = report.by_id("view_count")
    assert count.status == "warn" and count.measured == "2 global + 6 local"
    assert "lightly DINOTransform" in count.message and "SwAV" in count.message
    assert "dinov2 uses 8" in count.message and "usual range" not in count.message
    for check_id in ("global_scale", "local_scale"):
        result = report.by_id(check_id)
        assert result.status == "warn"
        assert_mentions(result.message, "lightly DINOTransform", "preset lightly")
    assert report.by_id("reference_diff").measured["matches"] == ["lightly"]


def test_ibot_ten_locals_warn_naming_ibot() -> None:
    report = report_of(ibot())
    count = report.by_id("view_count")
    assert count.status == "warn" and count.measured == "2 global + 10 local"
    assert "iBOT" in count.message and "MSN" in count.message
    for check_id in ("global_scale", "local_scale"):
        result = report.by_id(check_id)
        assert result.status == "warn" and "range of iBOT" in result.message
    assert report.verdict == "warn"


def test_one_local_crop_still_fails() -> None:
    count = report_of(MultiView(n_local=1), samples=2).by_id("view_count")
    assert count.status == "fail" and "single local crop" in count.message


def test_a_ten_local_pipeline_fails_only_for_its_real_bug() -> None:
    """10 locals with a global scale of (0.1, 1): view_count warns, global_scale fails."""
    report = report_of(MultiView(10, (0.1, 1.0), (0.05, 0.32)), samples=4)
    assert {r.id for r in report.results if r.status == "fail"} == {"global_scale"}
    message = report.by_id("global_scale").message
    # the share too small, the recipe's minimum, how far down, and the coverage of the range
    assert_mentions(message, "24% of the crops", "smaller than 32%", "down to 10%")
    assert_mentions(message, "covers 100%", "(0.32, 1)")


def test_scale_coverage() -> None:
    assert scale_coverage((0.3, 1.0), (0.32, 1.0)) == pytest.approx((1.0, 0.68 / 0.7))
    assert scale_coverage((0.4, 1.0), (0.32, 1.0)) == pytest.approx((0.6 / 0.68, 1.0))
    assert scale_coverage((0.05, 0.1), (0.32, 1.0)) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("scale", "status"),
    [((0.3, 1.0), "pass"), ((0.33, 1.0), "pass"), ((0.2, 1.0), "fail"), ((0.5, 1.0), "fail")],
)
def test_global_scale_within_a_documented_tolerance(scale, status) -> None:
    pipe = MultiView(8, scale, (0.05, 0.32))
    result = report_of(pipe, samples=2).by_id("global_scale")
    assert result.status == status, result.message
    if scale == (0.3, 1.0):
        assert_mentions(result.message, "covers 100%", "(0.32, 1)", "97% of its crops")
    if scale == (0.5, 1.0):
        # No sentence about crops being too small: none are.
        assert "smaller than" not in result.message
        assert_mentions(result.message, "No crops", "32%-50%")
        assert_mentions(result.message, "covers 74%", "(0.32, 1)", "100% of its crops")
        assert_mentions(result.message, "tolerance", "95%")


def _params(transform, samples: int = 24):
    report = run_checks(
        OwnPipeline(transform, "mine"),
        DATA,
        expect=EXPECT.replace(local_crops_number=6),
        expect_name="dinov2",
        samples=samples,
        seed=1,
    )
    return report.by_id("photometric_params")


def test_hand_written_solarize_thresholds_are_judged(lightly_report) -> None:
    faithful = lightly_report.by_id("photometric_params")
    assert faithful.status == "pass" and faithful.measured["global2.solarize_threshold"] == "128"
    fixed = _params(MultiView(solarize=LightlySolarize(0.2, threshold=200)))
    assert fixed.status == "warn" and fixed.measured["global2.solarize_threshold"] == "200"
    assert_mentions(fixed.message, "global view 2", "solarize threshold 200", "128")
    drawn = _params(MultiView(solarize=RandomThresholdSolarize(0.5)))
    assert drawn.status == "warn"
    assert drawn.measured["global2.solarize_threshold"].endswith("(varies between draws)")
    assert_mentions(drawn.message, "solarize threshold", "varies between draws", "128")


def test_a_hand_written_blur_far_stronger_than_the_recipe_is_judged() -> None:
    strong = MultiView()
    for transform in strong.transforms:
        transform.transforms[5] = LightlyBlur(transform.transforms[5].prob, sigmas=(4.0, 5.0))
    params = _params(strong, samples=12)
    assert params.status == "warn"
    assert_mentions(params.message, "global view 1", "blur sigma")
    assert "lie outside 0.067-3" in params.message


def test_small_global_crops_blown_up_warn() -> None:
    """5-14% global crops of ~100 px images, resized to 96 px: about 3x upsampled."""
    zoomed = MultiView(8, (0.05, 0.14), (0.05, 0.32))
    for transform in zoomed.transforms[:2]:
        transform.transforms[0] = T.RandomResizedCrop(96, scale=(0.05, 0.14))
    report = report_of(zoomed, samples=4, expect=EXPECT.replace(global_crops_size=96))
    result = report.by_id("upsampling")
    assert result.status == "warn"
    assert "Global crops are blown up" in result.message
    assert "globals: median" in result.measured
    assert "global_crops_size" in result.message and "local_crops_size" not in result.message
    faithful = report_of(MultiView(8, (0.32, 1.0), (0.05, 0.32)), samples=2).by_id("upsampling")
    assert faithful.status == "pass", faithful.message


def test_vissl_bilinear_crops_are_named_in_photometric_params_and_reference_diff() -> None:
    """VISSL / SwAV keep RandomResizedCrop's bilinear default; DINOv2 crops with bicubic."""
    report = report_of(vissl(), samples=4)
    params = report.by_id("photometric_params")
    assert params.status == "warn"
    assert params.measured["local.interpolation"] == "RandomResizedCrop: bilinear"
    # every view named, the transform, what it does, what DINOv2 does, and the fix
    assert_mentions(params.message, "global view 1", "global view 2", "local views")
    assert_mentions(params.message, "RandomResizedCrop", "bilinear", "dinov2 with bicubic")
    assert_mentions(params.message, "InterpolationMode.BICUBIC")
    diff = report.by_id("reference_diff")
    assert diff.status == "warn"
    assert diff.measured["differences"]["interpolation"] == "bilinear (expected bicubic)"
    bicubic = report_of(vissl(interpolation=True), samples=4)
    assert "interpolation" not in bicubic.by_id("reference_diff").measured["differences"]
    assert "resizes with" not in bicubic.by_id("photometric_params").message


def test_a_hand_written_crop_is_judged_by_the_interpolation_it_passed() -> None:
    def crop(interpolation) -> MultiView:
        return with_step(
            MultiView(8, (0.32, 1.0), (0.05, 0.32)),
            0,
            lambda old: HandCrop(old.size[0], old.scale, interpolation),
        )

    params = report_of(crop(T.InterpolationMode.BILINEAR), samples=2).by_id("photometric_params")
    assert params.status == "warn"
    assert_mentions(params.message, "HandCrop", "resized_crop", "bilinear")
    faithful = report_of(crop(T.InterpolationMode.BICUBIC), samples=2).by_id("photometric_params")
    measured = faithful.measured["global1.interpolation"]
    assert measured.startswith("HandCrop") and measured.endswith(": bicubic")
    assert "resizes with" not in faithful.message


def test_a_built_config_with_bilinear_crops_warns() -> None:
    config = EXPECT.replace(interpolation="bilinear")
    report = run_checks(
        build_pipeline(config), DATA, expect=EXPECT, expect_name="dinov2", samples=2
    )
    params = report.by_id("photometric_params")
    assert params.status == "warn" and params.measured["local.interpolation"] == (
        "RandomResizedCrop: bilinear"
    )
    assert_mentions(params.message, "interpolation: bicubic", "config")


@pytest.mark.parametrize(
    ("strength", "verdict", "factors"),
    [
        ((0.4, 0.4, 0.2, 0.1), None, ()),
        ((0.8, 0.8, 0.8, 0.2), "stronger than", ("brightness", "saturation")),
        ((0.1, 0.1, 0.05, 0.02), "weaker than", ("brightness", "contrast", "saturation", "hue")),
    ],
)
def test_hand_written_jitter_factors_are_judged(strength, verdict, factors) -> None:
    """A colour jitter written on PIL's ImageEnhance in place of torchvision's: its factors,
    estimated from its effect, against the recipe's (0.4, 0.4, 0.2, 0.1)."""
    params = _params(with_step(MultiView(), 3, lambda old: EnhanceJitter(strength)))
    assert params.measured["global1.brightness_estimate"].startswith("median change")
    if verdict is None:
        assert params.status == "pass", params.message
        return
    assert params.status == "warn"
    global1 = next(p for p in params.message.split("; ") if p.startswith("global view 1:"))
    assert_mentions(global1, "hand-written jitter", f"{verdict} the recipe")
    for factor in factors:
        assert f"{factor} " in global1.split("views): ")[1]
    if verdict == "stronger than":  # each with its median change and the recipe's
        # the factor, its median change, the recipe's range and its median change
        assert_mentions(global1, "brightness 0.31", "(0.6, 1.4): 0.2")
