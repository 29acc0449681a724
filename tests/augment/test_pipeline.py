"""The instrumented pipeline: shapes, records, reproducibility, sampled distributions."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

from dinodiag.augment import photometric
from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.pipeline import build_pipeline, fallback_crop_box, sample_crop_box
from dinodiag.augment.presets import PRESETS
from dinodiag.augment.records import collate_views
from tests.facts import assert_mentions


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_produces_its_views(name: str, image: Image.Image) -> None:
    cfg = PRESETS[name].config
    sample = build_pipeline(cfg)(image, seed=1)
    assert len(sample.global_crops) == cfg.global_crops_number
    assert len(sample.local_crops) == cfg.local_crops_number
    assert all(
        v.shape == (3, cfg.global_crops_size, cfg.global_crops_size) for v in sample.global_crops
    )
    assert all(
        v.shape == (3, cfg.local_crops_size, cfg.local_crops_size) for v in sample.local_crops
    )
    assert len(sample.records) == cfg.num_views
    assert [r.group for r in sample.records] == ["global"] * cfg.global_crops_number + [
        "local"
    ] * cfg.local_crops_number
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in sample.views)


def test_seed_reproduces_and_differs(image: Image.Image) -> None:
    pipe = build_pipeline(PRESETS["dinov2"].config)
    a, b, c = pipe(image, seed=3), pipe(image, seed=3), pipe(image, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views, strict=False))
    assert [r.to_dict() for r in a.records] == [r.to_dict() for r in b.records]
    assert not torch.equal(a.global_crops[0], c.global_crops[0])


def test_record_flag_does_not_change_the_draws(image: Image.Image) -> None:
    cfg = PRESETS["dinov2"].config
    recorded = build_pipeline(cfg, record=True)(image, seed=9)
    plain = build_pipeline(cfg, record=False)(image, seed=9)
    assert plain.records == []
    assert all(torch.equal(x, y) for x, y in zip(recorded.views, plain.views, strict=False))


def test_records_describe_the_views(image: Image.Image) -> None:
    """Re-rendering a view from its record alone gives the same pixels."""
    cfg = PipelineConfig(
        global1=ViewAugment(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, flip_p=1.0),
        global2=ViewAugment(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, solarize_p=0.0, flip_p=0.0),
        local=ViewAugment(jitter_p=0.0, grayscale_p=0.0, blur_p=0.0),
        local_crops_number=2,
    )
    pipe = build_pipeline(cfg)
    sample = pipe(image, seed=5)
    for view, rec in zip(sample.views, sample.records, strict=False):
        left, top, w, h = rec.box
        size = rec.out_size[0]
        expected = image.resize(
            (size, size), Image.Resampling.BICUBIC, box=(left, top, left + w, top + h)
        )
        if rec.flip:
            expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        # The fast resize matches PIL's crop-then-resize to within one grey level on all
        # but a few edge pixels (bench/ and tests/augment/test_photometric.py measure it).
        one_level = 1.0 / (255 * min(cfg.std)) + 1e-4
        difference = (view - TF.normalize(TF.to_tensor(expected), cfg.mean, cfg.std)).abs()
        assert (difference > one_level).float().mean() < 0.01
        assert difference.mean() < 0.01
        assert rec.scale == pytest.approx(w * h / (image.width * image.height))
        assert rec.ratio == pytest.approx(w / h)
        lo, hi = rec.configured_scale
        assert lo - 0.02 <= rec.scale <= hi + 0.02  # rounding of the box to whole pixels
    assert sample.records[0].flip is True and sample.records[1].flip is False


def test_grayscale_and_solarize_records_match_pixels(image: Image.Image) -> None:
    cfg = PipelineConfig(
        global_crops_size=32,
        local_crops_number=0,
        global1=ViewAugment(grayscale_p=1.0, jitter_p=0.0, blur_p=0.0),
        global2=ViewAugment(
            solarize_p=1.0, jitter_p=0.0, blur_p=0.0, grayscale_p=0.0, solarize_threshold=0
        ),
    )
    sample = build_pipeline(cfg)(image, seed=0)
    gray = sample.global_crops[0]
    assert sample.records[0].grayscale and torch.allclose(
        gray[0] * cfg.std[0] + cfg.mean[0], gray[1] * cfg.std[1] + cfg.mean[1], atol=1e-5
    )
    assert sample.records[1].solarize is True and sample.records[1].grayscale is False


def test_sampled_rates_follow_the_config(image: Image.Image) -> None:
    small = Image.new("RGB", (64, 48), (90, 120, 30))
    cfg = PRESETS["dinov2"].config.replace(global_crops_size=16, local_crops_size=8)
    pipe = build_pipeline(cfg, seed=0)
    records = [r for i in range(300) for r in pipe(small).records]
    by_kind: dict[str, list] = {"global1": [], "global2": [], "local": []}
    for r in records:
        by_kind[
            "local" if r.group == "local" else ("global1" if r.index == 0 else "global2")
        ].append(r)
    for kind, op, expected in [
        ("global1", "blur", 1.0),
        ("global2", "blur", 0.1),
        ("local", "blur", 0.5),
        ("global2", "solarize", 0.2),
        ("global1", "solarize", 0.0),
        ("local", "jitter", 0.8),
        ("local", "grayscale", 0.2),
        ("local", "flip", 0.5),
    ]:
        rate = np.mean([getattr(r, op) for r in by_kind[kind]])
        n = len(by_kind[kind])
        assert abs(rate - expected) <= 4 * math.sqrt(expected * (1 - expected) / n) + 1e-9, (
            kind,
            op,
            rate,
        )
    jittered = [r for r in by_kind["local"] if r.jitter]
    assert all(
        0.6 <= r.brightness <= 1.4 and 0.8 <= r.saturation <= 1.2 and -0.1 <= r.hue <= 0.1
        for r in jittered
    )
    assert all(
        sorted(r.jitter_order) == sorted(("brightness", "contrast", "saturation", "hue"))
        for r in jittered
    )
    sigmas = [r.blur_sigma for r in by_kind["global1"]]
    assert min(sigmas) >= 0.1 and max(sigmas) <= 2.0 and np.std(sigmas) > 0.3


def test_crop_box_distribution_matches_the_configured_range() -> None:
    rng = random.Random(0)
    boxes = [sample_crop_box(rng, 500, 375, (0.32, 1.0), (3 / 4, 4 / 3)) for _ in range(3000)]
    scales = np.array([w * h / (500 * 375) for _, _, w, h, fb in boxes if not fb])
    assert scales.min() >= 0.31 and scales.max() <= 1.0
    # Accepted draws are uniform in area over the feasible part of the range.
    assert 0.5 < np.median(scales) < 0.7
    for left, top, w, h, _ in boxes:
        assert 0 <= left and left + w <= 500 and 0 <= top and top + h <= 375


def test_fallback_on_extreme_aspect_ratio() -> None:
    rng = random.Random(0)
    left, top, w, h, fallback = sample_crop_box(rng, 2000, 10, (0.32, 1.0), (3 / 4, 4 / 3))
    assert fallback and h == 10 and w == round(10 * 4 / 3) and left == (2000 - w) // 2
    sample = build_pipeline(PipelineConfig(global_crops_size=32, local_crops_size=16))(
        Image.new("RGB", (2000, 10)), seed=0
    )
    assert all(r.fallback for r in sample.records)


# Sources wider than the ratio range, taller than it, and inside it (odd sizes round).
FALLBACK_SOURCES = {
    "wide": (2000, 10),
    "wide-odd": (641, 200),
    "tall": (10, 2000),
    "tall-odd": (201, 640),
    "in-range": (500, 375),
    "in-range-tall": (375, 500),
    "square": (1, 1),
}


@pytest.mark.parametrize("width, height", FALLBACK_SOURCES.values(), ids=FALLBACK_SOURCES.keys())
@pytest.mark.parametrize("ratio", [(3 / 4, 4 / 3), (0.5, 2.0), (1.0, 1.0)])
def test_fallback_box_is_torchvisions(width: int, height: int, ratio: tuple[float, float]) -> None:
    """The centre crop both the pipeline and the probe's recorder use is torchvision's own."""
    # An area 2-3x the source's: none of the ten tries fits, torchvision takes its fallback.
    top, left, h, w = T.RandomResizedCrop.get_params(
        Image.new("RGB", (width, height)), [2.0, 3.0], list(ratio)
    )
    assert fallback_crop_box(width, height, ratio) == (left, top, w, h)
    assert sample_crop_box(random.Random(0), width, height, (2.0, 3.0), ratio) == (
        left,
        top,
        w,
        h,
        True,
    )


def test_tiny_images_work() -> None:
    sample = build_pipeline(PRESETS["dinov2"].config)(
        Image.new("RGB", (1, 1), (10, 20, 30)), seed=0
    )
    assert sample.global_crops[0].shape == (3, 224, 224)
    assert sample.records[0].box == (0.0, 0.0, 1.0, 1.0)


def test_non_rgb_input_is_converted() -> None:
    sample = build_pipeline(PRESETS["small-images"].config)(Image.new("L", (40, 40), 128), seed=0)
    assert sample.global_crops[0].shape == (3, 32, 32)


def test_normalisation_matches_totensor_normalize(image: Image.Image) -> None:
    """The fused multiply-add of the pipeline is ``ToTensor`` then ``Normalize``."""
    cfg = PipelineConfig()
    view = image.resize((32, 32))
    expected = TF.normalize(TF.to_tensor(view), cfg.mean, cfg.std)
    planes = photometric.from_uint8(np.asarray(view))  # (3, 32, 32) float32 of 0..255
    assert torch.allclose(build_pipeline(cfg)._normalise(planes), expected, atol=1e-5)


def test_collate_is_view_major(image: Image.Image) -> None:
    pipe = build_pipeline(PRESETS["small-images"].config)
    samples = [pipe(image, seed=s) for s in range(3)]
    batch = collate_views(samples)
    assert batch["global_crops"].shape == (2 * 3, 3, 32, 32)
    assert batch["local_crops"].shape == (6 * 3, 3, 16, 16)
    assert torch.equal(batch["global_crops"][1], samples[1].global_crops[0])
    assert torch.equal(batch["global_crops"][3], samples[0].global_crops[1])


def test_collate_errors_name_the_view(image: Image.Image) -> None:
    a = build_pipeline(PRESETS["small-images"].config)(image, seed=0)
    b = build_pipeline(PRESETS["small-images"].config.replace(local_crops_size=8))(image, seed=0)
    with pytest.raises(ValueError) as info:
        collate_views([a, b])
    assert str(info.value).startswith("local_crops: ")
    assert_mentions(str(info.value), "view 0", "sample 1", "(3, 8, 8)")
    with pytest.raises(ValueError, match="at least one sample"):
        collate_views([])
