"""Unknown steps judged by their effect: what is recognised, what is estimated, what is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import make_image
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from dinodiag.probe.effects import fit_blur, judge_step, name_hint

IMAGE = make_image(160, 120, seed=2)


def test_a_step_that_returns_its_input_did_not_apply() -> None:
    effect = judge_step("GaussianBlur", IMAGE, IMAGE)
    assert (effect.kind, effect.applied) == ("blur", False)  # the kind from the class name
    assert judge_step("Mystery", IMAGE, IMAGE).kind == "unknown"


@pytest.mark.parametrize(
    ("after", "kind", "params"),
    [
        (ImageOps.mirror(IMAGE), "flip", {"direction": "horizontal"}),
        (ImageOps.grayscale(IMAGE).convert("RGB"), "grayscale", {}),
        (ImageOps.solarize(IMAGE, 128), "solarize", None),
        (TF.to_tensor(IMAGE), "to_tensor", {}),
        (IMAGE.resize((40, 30)), "resize", {"from": (160, 120), "to": (40, 30)}),
    ],
    ids=["flip", "grayscale", "solarize", "to_tensor", "resize"],
)
def test_exact_changes_are_recognised(after, kind: str, params) -> None:
    effect = judge_step("Step", IMAGE, after)
    assert (effect.kind, effect.applied) == (kind, True)
    if params is not None:
        assert effect.params == params


def test_a_solarize_threshold_is_pinned_to_the_values_present() -> None:
    effect = judge_step("Step", IMAGE, ImageOps.solarize(IMAGE, 128))
    low, high = effect.params["threshold_range"]
    assert low <= 128 <= high and high - low <= 8  # no pixel at exactly 128: a short range


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_a_gaussian_blur_is_recognised_and_its_sigma_fitted(sigma: float) -> None:
    for blurred in (
        IMAGE.filter(ImageFilter.GaussianBlur(sigma)),
        TF.gaussian_blur(IMAGE, 9, sigma),
    ):
        effect = judge_step("Step", IMAGE, blurred)
        assert effect.kind == "blur" and effect.applied
        assert effect.params["sigma"] == pytest.approx(sigma, rel=0.2)


@pytest.mark.parametrize(
    ("enhance", "key", "factor"),
    [
        (ImageEnhance.Contrast, "contrast", 0.7),
        (ImageEnhance.Color, "saturation", 1.2),
        (ImageEnhance.Brightness, "brightness", 0.8),
    ],
)
def test_colour_changes_are_colour_jitter_with_estimates(enhance, key: str, factor: float) -> None:
    effect = judge_step("Step", IMAGE, enhance(IMAGE).enhance(factor))
    assert effect.kind == "jitter" and effect.applied
    assert effect.params[key] == pytest.approx(factor, abs=0.06)
    hue = judge_step("Step", IMAGE, TF.adjust_hue(IMAGE, 0.05))
    assert hue.kind == "jitter" and hue.params["hue"] == pytest.approx(0.05, abs=0.01)


def test_what_cannot_be_told_is_said() -> None:
    rotated = judge_step("Step", IMAGE, IMAGE.rotate(10))
    assert (rotated.kind, rotated.applied) == ("unknown", None)
    assert "cannot tell" in rotated.note
    sharpened = judge_step("Step", IMAGE, IMAGE.filter(ImageFilter.SHARPEN))
    assert sharpened.kind == "unknown"  # neither a blur nor a colour map


def test_the_class_name_decides_when_the_pixels_cannot() -> None:
    flat = Image.new("RGB", (32, 32), (90, 120, 30))
    blurred = flat.filter(ImageFilter.GaussianBlur(1.5))  # a new object, the same pixels
    effect = judge_step("GaussianBlur", flat, blurred)
    assert (effect.kind, effect.applied) == ("blur", True) and "no visible change" in effect.note
    assert judge_step("Augment", flat, blurred).kind == "unknown"
    assert [name_hint(n) for n in ("RandomSolarization", "MyGreyScale", "ColourShift")] == [
        "solarize",
        "grayscale",
        "jitter",
    ]


def test_fit_blur_on_tensors_and_tiny_images() -> None:
    tensor = TF.to_tensor(IMAGE).permute(1, 2, 0).double().numpy()
    blurred = TF.gaussian_blur(TF.to_tensor(IMAGE), 9, 1.5).permute(1, 2, 0).double().numpy()
    sigma, residual = fit_blur(tensor, blurred)
    assert sigma == pytest.approx(1.5, rel=0.1) and residual < 1e-3
    tiny = torch.zeros(2, 2, 3).numpy()
    assert fit_blur(tiny, tiny)[1] == float("inf")  # nothing to fit on


GRADIENT = Image.fromarray(
    np.stack([np.tile(np.arange(256, dtype=np.uint8), (8, 1))] * 3, axis=-1), "RGB"
)  # every grey level 0..255: the threshold is pinned exactly


@pytest.mark.parametrize("threshold", [1, 50, 100, 127, 128, 129, 200, 255])
def test_pil_and_torchvision_solarize_thresholds_read_exactly(threshold: int) -> None:
    pil = judge_step("Solarization", GRADIENT, ImageOps.solarize(GRADIENT, threshold))
    assert pil.kind == "solarize" and pil.params["threshold"] == threshold
    assert pil.params["threshold_range"] == (threshold, threshold)
    tensor = TF.pil_to_tensor(GRADIENT)  # uint8, as transforms v2 solarizes it
    tv = judge_step("Step", tensor, TF.solarize(tensor, threshold))
    assert tv.kind == "solarize" and tv.params["threshold"] == threshold
    floats = TF.to_tensor(GRADIENT)  # [0, 1] floats: the threshold in 0..255 units
    fl = judge_step("Step", floats, TF.solarize(floats, threshold / 255))
    assert fl.kind == "solarize" and fl.params["threshold"] == threshold


def test_jitter_factors_are_told_apart_and_read_for_a_class_named_as_a_jitter() -> None:
    """Brightness 0.8, contrast 1.2 and saturation 1.1 composed: each factor read back (the
    spread alone would read 0.96, brightness times contrast), also for a class whose name
    says jitter (which used to get the kind from its name and no estimates)."""
    after = ImageEnhance.Brightness(IMAGE).enhance(0.8)
    after = ImageEnhance.Color(ImageEnhance.Contrast(after).enhance(1.2)).enhance(1.1)
    for name in ("Step", "RandomColorJitter"):
        effect = judge_step(name, IMAGE, after)
        assert effect.kind == "jitter" and effect.applied
        assert effect.params["brightness"] == pytest.approx(0.8, abs=0.05)
        assert effect.params["contrast"] == pytest.approx(1.2, abs=0.06)
        assert effect.params["saturation"] == pytest.approx(1.1, abs=0.06)
