"""photometric_rates / photometric_params on own pipelines of every style, and built ones."""

from __future__ import annotations

import pytest
import torchvision.transforms as T
from conftest import ListDataset, make_image
from own_pipelines import EXPECT, RELEASED, dino_v1_style, dinov2_style, v2_style, without_jitter

from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.checks.runner import run_checks
from dinodiag.probe.pipeline import OwnPipeline
from tests.facts import assert_mentions

DATA = ListDataset([make_image(96 + 8 * i, 72 + 4 * i, seed=i) for i in range(6)])
DINO = PRESETS["dino"].config.replace(
    global_crops_size=32, local_crops_size=16, local_crops_number=4, patch_size=8
)


def report_of(transform, samples: int = 24, expect=EXPECT, name: str = "dinov2"):
    pipeline = transform if hasattr(transform, "config") else OwnPipeline(transform, "mine")
    return run_checks(pipeline, DATA, expect=expect, expect_name=name, samples=samples, seed=1)


@pytest.mark.parametrize(
    ("make", "expect", "name"),
    [
        (dinov2_style, EXPECT, "dinov2"),
        (lambda: dinov2_style("plain"), EXPECT, "dinov2"),
        (dino_v1_style, DINO, "dino"),
        (v2_style, EXPECT, "dinov2"),
    ],
    ids=["dinov2 torchvision", "dinov2 hand-written blur", "dino v1 hand-written", "v2"],
)
def test_faithful_pipelines_pass_photometric_rates(make, expect, name: str) -> None:
    report = report_of(make(), expect=expect, name=name)
    rates = report.by_id("photometric_rates")
    assert rates.status == "pass", rates.message
    assert name in rates.measured["matches"] and "dinov2-released" not in rates.measured["matches"]
    assert report.by_id("photometric_params").status == "pass"
    assert report.by_id("distinct_views").status == "pass"


def test_an_inverted_blur_fails_and_is_recognised_as_dinov2s_released_code() -> None:
    report = report_of(dinov2_style("inverted"))
    rates = report.by_id("photometric_rates")
    assert rates.status == "fail"
    # the view, how often it was blurred, how often the recipe blurs it
    assert_mentions(rates.message, "global view 1", "blurred in 0 of 24 samples", "always")
    assert "global view 2: blurred in" in rates.message and "10% of the time" in rates.message
    assert_mentions(rates.message, "1 - p", "RandomApply")  # the released code's known bug
    assert rates.measured["global1.blur"] == "0/24" and rates.measured["matches"] == [
        "dinov2-released"
    ]
    reference = report.by_id("reference_diff").message
    assert_mentions(reference, "photometric rates", "dinov2-released")
    # Against the released code's recipe, the same pipeline passes.
    assert (
        report_of(dinov2_style("inverted"), expect=RELEASED, name="dinov2-released")
        .by_id("photometric_rates")
        .status
        == "pass"
    )


def test_a_pipeline_without_colour_jitter_fails_with_what_is_missing() -> None:
    rates = report_of(without_jitter(), expect=DINO, name="dino").by_id("photometric_rates")
    assert rates.status == "fail"
    assert_mentions(rates.message, "global view 1", "colour-jittered", "0 of 24 samples", "80%")
    assert_mentions(rates.message, "Nothing in the pipeline", "jitter")


def test_few_samples_do_not_cause_false_alarms() -> None:
    """Four samples of the built recipe: wide binomial intervals, every rate accepted."""
    for seed in range(5):
        report = run_checks(build_pipeline(EXPECT), DATA, expect=EXPECT, samples=4, seed=seed)
        assert report.by_id("photometric_rates").status == "pass"


def test_a_built_pipeline_with_the_released_rates_fails_against_dinov2() -> None:
    report = report_of(build_pipeline(RELEASED), samples=32)
    rates = report.by_id("photometric_rates")
    assert rates.status == "fail" and "blurred in 0 of 32 samples" in rates.message
    assert rates.measured["matches"] == ["dinov2-released"]


def test_a_rate_just_outside_its_interval_warns() -> None:
    """p = 0.9 instead of 1.0: 3 misses in 24 is impossible under p = 1 but not far off."""
    almost = EXPECT.replace(global1={"blur_p": 0.9})
    for seed in range(30):
        rates = run_checks(build_pipeline(almost), DATA, expect=EXPECT, samples=24, seed=seed)
        blur = rates.by_id("photometric_rates").measured["global1.blur"]
        if blur in ("23/24",):  # 0.958: outside {24} but within 0.05 of 1
            assert rates.by_id("photometric_rates").status == "warn"
            return
    pytest.fail("no seed drew 23 of 24")


def test_photometric_params_warn_on_strengths_and_normalisation() -> None:
    strong = report_of(dinov2_style(jitter=0.8), samples=8).by_id("photometric_params")
    assert strong.status == "warn"
    assert_mentions(strong.message, "brightness (0.2, 1.8)", "(0.6, 1.4)")
    view = T.Compose(
        [T.RandomResizedCrop(32), T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
    )
    half = report_of(lambda im: [view(im), view(im)], samples=4).by_id("photometric_params")
    assert half.status == "warn"
    assert_mentions(half.message, "Normalize mean", "(0.5, 0.5, 0.5)", "(0.485")
    built = report_of(build_pipeline(EXPECT.replace(local={"blur_sigma": (0.5, 4.0)})), samples=4)
    built_message = built.by_id("photometric_params").message
    assert_mentions(built_message, "local views", "blur sigma (0.5, 4)", "(0.1, 2)")


def test_hand_written_steps_say_what_could_not_be_measured() -> None:
    """Without torchvision's jitter / blur / Normalize there is nothing to compare: skip."""
    crop = T.RandomCrop(32, pad_if_needed=True)  # no resizing: no interpolation to compare
    report = report_of(lambda im: [T.ToTensor()(crop(im))] * 2, samples=4)
    params = report.by_id("photometric_params")
    assert params.status == "skip"
    assert_mentions(params.message, "solarize threshold", "blur sigma")  # what it could not read

    def odd(image):
        return image.rotate(7)

    rotated = T.Compose([T.RandomResizedCrop(32), odd, T.ToTensor()])
    rates = report_of(lambda im: [rotated(im), rotated(im)], samples=4).by_id("photometric_rates")
    assert_mentions(rates.message, "step(s) changed images", "could not tell")


def test_the_examples_tell_the_released_code_from_the_published_recipe(capsys) -> None:
    """examples/dino_pipelines.py as the README runs it, at small sizes."""
    from dinodiag.cli import main

    small = '{"global_size": 32, "local_size": 16, "local_crops": 4}'
    argv = ["check", "--samples", "16", "--pipeline-kwargs", small, "--json", "-"]
    released = main([*argv[:-2], "--pipeline", "examples/dino_pipelines.py:released_dinov2"])
    out = capsys.readouterr().out
    assert released == 1 and "[FAIL] photometric_rates" in out
    assert_mentions(out, "match dinov2-released", "released code")
    for factory in ("published_dinov2", "dino_v1"):
        main(
            [*argv[:-2], "--pipeline", f"examples/dino_pipelines.py:{factory}", "--expect", "dino"]
        )
        out = capsys.readouterr().out
        assert "[PASS] photometric_rates" in out, out
