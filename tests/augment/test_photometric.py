"""The fast CPU path keeps torchvision's semantics: same operations, same pixels, same draws.

- every operation of :mod:`dinodiag.augment.photometric` equals the PIL / torchvision operation it
  replaces, byte for byte;
- a view replayed from its record through torchvision's functional API on PIL images
  (the reference recipe) gives the same pixels (bit-exact when the resize goes through
  PIL; > 99 % identical and > 99.9 % within 2 grey levels with torch's resize);
- the sampled parameters follow the same distributions as torchvision's own samplers
  (two-sample Kolmogorov-Smirnov statistics).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from conftest import ks_critical, ks_statistic, make_image
from PIL import Image, ImageFilter, ImageOps

from dinodiag.augment import photometric
from dinodiag.augment.config import PipelineConfig, ViewAugment
from dinodiag.augment.pipeline import build_pipeline
from dinodiag.augment.presets import PRESETS
from dinodiag.augment.records import ViewRecord


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: OpenMP threads only add contention on a shared CI box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def to_uint8(planes: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float32 of whole numbers -> ``(H, W, 3)`` uint8, as PIL holds an image."""
    return np.ascontiguousarray(np.moveaxis(planes, 0, -1)).astype(np.uint8)


def _random_image(rng: np.random.Generator, height: int, width: int) -> Image.Image:
    """Noise, flat patches, grey pixels and channel ties: the corner cases of HSV and blends."""
    array = rng.integers(0, 256, (height, width, 3))
    flat = rng.random((height, width)) < 0.2
    array[flat] = rng.integers(0, 256, 3)
    grey = rng.random((height, width)) < 0.1
    array[grey] = array[grey][:, :1]
    tie = rng.random((height, width)) < 0.1
    array[tie, 1] = array[tie, 0]
    return Image.fromarray(array.astype(np.uint8), "RGB")


def _same_bytes(reference: Image.Image, planes: np.ndarray) -> None:
    expected = np.asarray(reference.convert("RGB"))
    assert planes.shape == (3, *expected.shape[:2])
    np.testing.assert_array_equal(to_uint8(planes), expected)


@pytest.mark.parametrize("size", [(1, 1), (1, 7), (5, 1), (17, 23), (64, 48)])
def test_every_operation_matches_pil_byte_for_byte(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(size))
    for trial in range(6):
        image = _random_image(rng, *size)
        planes = photometric.from_uint8(np.asarray(image))
        factor = float(rng.uniform(0.0, 2.0))
        hue = float(rng.uniform(-0.5, 0.5))
        sigma = float(rng.uniform(0.1, 2.0)) if trial % 3 else float(rng.uniform(2.0, 25.0))
        _same_bytes(
            TF.adjust_brightness(image, factor), photometric.adjust_brightness(planes, factor)
        )
        _same_bytes(TF.adjust_contrast(image, factor), photometric.adjust_contrast(planes, factor))
        _same_bytes(
            TF.adjust_saturation(image, factor), photometric.adjust_saturation(planes, factor)
        )
        _same_bytes(TF.adjust_hue(image, hue), photometric.adjust_hue(planes, hue))
        _same_bytes(image.convert("L").convert("RGB"), photometric.to_grayscale(planes))
        _same_bytes(
            image.filter(ImageFilter.GaussianBlur(sigma)), photometric.gaussian_blur(planes, sigma)
        )
        threshold = int(rng.integers(0, 257))
        _same_bytes(ImageOps.solarize(image, threshold), photometric.solarize(planes, threshold))


def test_hue_round_trip_matches_on_a_colour_cube_sample() -> None:
    """A dense sample of the RGB cube (every 3rd level per channel: 7,3k colours x shifts)."""
    levels = np.arange(0, 256, 3)
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    extremes = np.array(
        [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 1, 0], [1, 0, 1]]
    )
    colours = np.concatenate([cube, extremes]).astype(np.uint8)
    colours = np.concatenate([colours, np.zeros(((-len(colours)) % 64, 3), dtype=colours.dtype)])
    image = Image.fromarray(colours.reshape(64, -1, 3), "RGB")
    planes = photometric.from_uint8(np.asarray(image))
    for hue in (0.0, 0.1, -0.1, 0.0039, -0.25, 0.5, -0.5):
        _same_bytes(TF.adjust_hue(image, hue), photometric.adjust_hue(planes, hue))


def test_hue_shift_is_truncated_like_torchvision() -> None:
    assert photometric.hue_shift_byte(0.1) == 25  # int(25.5)
    assert photometric.hue_shift_byte(-0.1) == 256 - 25
    assert photometric.hue_shift_byte(0.003) == 0


def test_blur_radius_follows_pillow() -> None:
    # Pillow: three box passes whose variance adds up to sigma**2.
    for sigma in (0.1, 0.7, 1.41, 1.5, 2.0, 10.0):
        radius = photometric.box_radius_for_sigma(sigma)
        whole = int(radius)
        frac = radius - whole
        box_variance = ((2 * whole + 1) * whole * (whole + 1) / 3 + 2 * frac * (whole + 1) ** 2) / (
            2 * whole + 1 + 2 * frac
        )
        assert 3 * box_variance == pytest.approx(sigma**2, rel=1e-4)


# --------------------------------------------------------------------------- whole views


def replay_with_torchvision(
    image: Image.Image, rec: ViewRecord, cfg: PipelineConfig
) -> torch.Tensor:
    """The reference recipe (torchvision functional ops on PIL) with the record's parameters."""
    aug = cfg.augment_for(rec.group, rec.index)
    left, top, width, height = (int(v) for v in rec.box)
    resample = {"bicubic": T.InterpolationMode.BICUBIC, "lanczos": T.InterpolationMode.LANCZOS}
    view = TF.resized_crop(
        image, top, left, height, width, list(rec.out_size), resample[cfg.interpolation]
    )
    if rec.flip:
        view = TF.hflip(view)
    jitter = {
        "brightness": TF.adjust_brightness,
        "contrast": TF.adjust_contrast,
        "saturation": TF.adjust_saturation,
        "hue": TF.adjust_hue,
    }
    for op in rec.jitter_order or ():
        if getattr(aug, op) > 0:
            view = jitter[op](view, getattr(rec, op))
    if rec.grayscale:
        view = TF.rgb_to_grayscale(view, num_output_channels=3)
    if rec.blur:
        view = view.filter(ImageFilter.GaussianBlur(radius=rec.blur_sigma))
    if rec.solarize:
        view = TF.solarize(view, aug.solarize_threshold)
    return TF.normalize(TF.to_tensor(view), list(cfg.mean), list(cfg.std))


def _grey_levels(a: torch.Tensor, b: torch.Tensor, cfg: PipelineConfig) -> torch.Tensor:
    """|a - b| in uint8 grey levels (undoing the normalisation)."""
    std = torch.tensor(cfg.std).view(3, 1, 1)
    return ((a - b) * std * 255).abs()


def _busy_config(**changes: object) -> PipelineConfig:
    """Every operation with a high probability, small views (fast)."""
    busy = ViewAugment(
        jitter_p=0.9, grayscale_p=0.3, blur_p=0.6, solarize_p=0.4, blur_sigma=(0.1, 3.0)
    )
    return PRESETS["dinov2"].config.replace(
        global_crops_size=48,
        local_crops_size=24,
        local_crops_number=4,
        global1=busy.__dict__,
        global2=busy.__dict__,
        local=busy.__dict__,
        **changes,
    )


def test_views_equal_torchvision_replay_bit_for_bit_with_pil_resize() -> None:
    """With a PIL filter (lanczos) every step is PIL's: the views match to float rounding."""
    cfg = _busy_config(interpolation="lanczos")
    pipe = build_pipeline(cfg)
    image = make_image(120, 90, seed=3)
    for seed in range(6):
        sample = pipe(image, seed=seed)
        for view, rec in zip(sample.views, sample.records, strict=True):
            diff = _grey_levels(view, replay_with_torchvision(image, rec, cfg), cfg)
            assert diff.max() < 1e-3, (rec.group, rec.index, float(diff.max()))


def test_views_stay_close_to_torchvision_with_torch_resize() -> None:
    """torch's resize differs from Pillow's by a grey level on ~0.3 % of pixels; jitter can
    amplify that (a hue byte flips: a few levels), very rarely."""
    cfg = _busy_config()
    pipe = build_pipeline(cfg)
    image = make_image(160, 120, seed=4)
    diffs = []
    for seed in range(8):
        sample = pipe(image, seed=seed)
        for view, rec in zip(sample.views, sample.records, strict=True):
            diff = _grey_levels(view, replay_with_torchvision(image, rec, cfg), cfg).round()
            assert diff.max() <= 8, (rec.group, rec.index, float(diff.max()))
            diffs.append(diff.flatten())
    every = torch.cat(diffs)
    assert (every == 0).float().mean() > 0.99
    assert (every <= 2).float().mean() > 0.999


def test_upsampled_and_downsampled_crops_match_pils_pass_order() -> None:
    """Both of Pillow's pass orders (vertical first when the height shrinks much more)."""
    cfg = PipelineConfig(global_crops_size=40, local_crops_number=0)
    pipe = build_pipeline(cfg)
    image = _random_image(np.random.default_rng(0), 120, 160)
    source = torch.from_numpy(np.array(image)).unsqueeze(0).permute(0, 3, 1, 2)
    for box in [
        (0, 0, 160, 120),
        (5, 3, 20, 110),
        (7, 9, 110, 45),
        (30, 30, 12, 12),
        (0, 0, 41, 119),
    ]:
        left, top, w, h = box
        expected = np.asarray(
            image.crop((left, top, left + w, top + h)).resize((40, 40), Image.BICUBIC)
        )
        got = to_uint8(pipe._crop_resize(image, source, box, 40)).astype(int)
        diff = np.abs(got - expected)
        assert diff.max() <= 2 and (diff == 0).mean() > 0.97, (box, diff.max())


# --------------------------------------------------------------------------- distributions


def test_sampled_parameters_follow_torchvision_samplers() -> None:
    """Scale, log-ratio and jitter factors: dinodiag's draws vs torchvision's get_params."""
    cfg = PRESETS["dinov2"].config.replace(
        global_crops_size=8, local_crops_size=8, local_crops_number=2
    )
    pipe = build_pipeline(cfg, seed=0)
    width, height = 160, 120
    image = Image.new("RGB", (width, height), (120, 60, 30))
    records = [r for _ in range(800) for r in pipe(image).records]
    torch.manual_seed(0)
    ours: dict[str, list[float]] = {"global_scale": [], "local_scale": [], "log_ratio": []}
    theirs: dict[str, list[float]] = {"global_scale": [], "local_scale": [], "log_ratio": []}
    for rec in records:
        key = f"{rec.group}_scale"
        ours[key].append(rec.scale)
        ours["log_ratio"].append(math.log(rec.ratio))
        top, left, h, w = T.RandomResizedCrop.get_params(
            image, list(rec.configured_scale), list(cfg.crop_ratio)
        )
        theirs[key].append(w * h / (width * height))
        theirs["log_ratio"].append(math.log(w / h))
    jittered = [r for r in records if r.jitter]
    aug = cfg.local
    ranges = [[1 - aug.brightness, 1 + aug.brightness], [1 - aug.contrast, 1 + aug.contrast]]
    ranges += [[1 - aug.saturation, 1 + aug.saturation], [-aug.hue, aug.hue]]
    draws = [T.ColorJitter.get_params(*ranges) for _ in range(len(jittered))]
    for index, name in enumerate(("brightness", "contrast", "saturation", "hue"), start=1):
        ours[name] = [getattr(r, name) for r in jittered]
        theirs[name] = [d[index] for d in draws]
    # jitter order: the position of each operation is uniform over 4 places in both
    ours["brightness_position"] = [r.jitter_order.index("brightness") for r in jittered]
    theirs["brightness_position"] = [int((d[0] == 0).nonzero()) for d in draws]
    for name in ours:
        a, b = np.asarray(ours[name], dtype=float), np.asarray(theirs[name], dtype=float)
        assert ks_statistic(a, b) < ks_critical(len(a), len(b)), name


def test_fallback_boxes_match_torchvision() -> None:
    """The centre-crop fallback (10 failed tries) gives torchvision's box."""
    image = Image.new("RGB", (900, 30))
    cfg = PipelineConfig(global_crops_size=8, local_crops_size=8, local_crops_number=0)
    rec = build_pipeline(cfg)(image, seed=0).records[0]
    assert rec.fallback
    top, left, h, w = T.RandomResizedCrop.get_params(image, [0.32, 1.0], [3 / 4, 4 / 3])
    assert rec.box == (float(left), float(top), float(w), float(h))


def test_random_module_state_is_not_touched(image: Image.Image) -> None:
    """The pipeline draws from its own generator only: global random streams are untouched."""
    random.seed(5)
    torch.manual_seed(5)
    expected = (random.random(), torch.rand(1).item())
    random.seed(5)
    torch.manual_seed(5)
    build_pipeline(PRESETS["dinov2"].config.replace(global_crops_size=32, local_crops_size=16))(
        image
    )
    assert (random.random(), torch.rand(1).item()) == expected
