"""The on-device backend: same parameter distributions, same records, same pixels after the resize.

Runs on the CPU here; every device test also runs on CUDA when a GPU is present.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from conftest import ListDataset, ks_critical, ks_statistic, make_image
from PIL import Image

from dinodiag.augment import photometric as exact
from dinodiag.augment.gpu import photometric as on_batch
from dinodiag.augment.gpu.multicrop import GPUMultiCrop, params_from_records
from dinodiag.augment.gpu.params import records_from_params, sample_boxes, sample_params
from dinodiag.augment.pipeline import build_pipeline, sample_crop_box
from dinodiag.augment.presets import PRESETS
from dinodiag.augment.records import collate_views
from dinodiag.checks import run_checks
from dinodiag.errors import DataError
from tests.facts import assert_mentions

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: OpenMP threads only add contention on a shared CI box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _views(count: int, size: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (size, size + 3, 3)).astype(np.uint8) for _ in range(count)]
    for array in arrays:  # flat patches and grey pixels, as photos have
        array[: size // 3] = rng.integers(0, 256, 3)
        array[-2:] = array[-2:, :, :1]
    return torch.stack([torch.from_numpy(exact.from_uint8(a)) for a in arrays])


@pytest.mark.parametrize("device", DEVICES)
def test_batch_operations_equal_the_cpu_path_bit_for_bit(device: str) -> None:
    views = _views(6, 20, seed=1)
    factors = torch.tensor([0.0, 0.6, 1.0, 1.23, 1.4, 2.0], dtype=torch.float64)
    hues = torch.tensor([-0.5, -0.1, 0.0, 0.004, 0.1, 0.5], dtype=torch.float64)
    sigmas = torch.tensor([0.1, 0.6, 1.0, 1.45, 2.0, 7.5], dtype=torch.float64)
    on = views.to(device)
    outputs = {
        "brightness": (
            on_batch.adjust_brightness(on, factors.to(device)),
            exact.adjust_brightness,
            factors,
        ),
        "contrast": (
            on_batch.adjust_contrast(on, factors.to(device)),
            exact.adjust_contrast,
            factors,
        ),
        "saturation": (
            on_batch.adjust_saturation(on, factors.to(device)),
            exact.adjust_saturation,
            factors,
        ),
        "hue": (on_batch.adjust_hue(on, hues.to(device)), exact.adjust_hue, hues),
        "blur": (on_batch.gaussian_blur(on, sigmas), exact.gaussian_blur, sigmas),
    }
    for name, (batched, single, params) in outputs.items():
        for row in range(len(views)):
            expected = single(views[row].numpy(), float(params[row]))
            np.testing.assert_array_equal(
                batched[row].cpu().numpy(), expected, err_msg=f"{name} row {row}"
            )
    gray = on_batch.to_grayscale(on).cpu().numpy()
    solar = on_batch.solarize(on, 128.0).cpu().numpy()
    for row in range(len(views)):
        np.testing.assert_array_equal(gray[row], exact.to_grayscale(views[row].numpy()))
        np.testing.assert_array_equal(solar[row], exact.solarize(views[row].numpy(), 128))


def test_jitter_applies_each_views_order() -> None:
    views = _views(3, 12, seed=2)
    order = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]])
    factors = torch.tensor(
        [[1.3, 0.7, 1.1, 0.08], [0.8, 1.2, 0.9, -0.05], [1.0, 1.4, 0.6, 0.1]], dtype=torch.float64
    )
    apply = torch.tensor([True, True, False])
    enabled = torch.ones((3, 4), dtype=torch.bool)
    out = on_batch.color_jitter(views, apply, order, factors, enabled)
    functions = (
        exact.adjust_brightness,
        exact.adjust_contrast,
        exact.adjust_saturation,
        exact.adjust_hue,
    )
    for row in range(2):
        expected = views[row].numpy()
        for op in order[row].tolist():
            expected = functions[op](expected, float(factors[row, op]))
        np.testing.assert_array_equal(out[row].numpy(), expected)
    assert torch.equal(out[2], views[2])


# --------------------------------------------------------------------------- sampling


def test_boxes_follow_the_cpu_sampler_distribution() -> None:
    generator = torch.Generator().manual_seed(0)
    count = 3000
    sizes = torch.tensor([[500.0, 375.0]]).expand(count, 2)
    scale = torch.tensor([[0.05, 0.32]], dtype=torch.float64).expand(count, 2)
    box, fallback = sample_boxes(generator, sizes, scale, (3 / 4, 4 / 3))
    rng = random.Random(0)
    cpu = np.array(
        [sample_crop_box(rng, 500, 375, (0.05, 0.32), (3 / 4, 4 / 3))[:4] for _ in range(count)],
        float,
    )
    ours = box.numpy()
    assert not fallback.any()
    assert (ours[:, 0] >= 0).all() and (ours[:, 0] + ours[:, 2] <= 500).all()
    assert (ours[:, 1] >= 0).all() and (ours[:, 1] + ours[:, 3] <= 375).all()
    for column, name in [
        (lambda b: b[:, 2] * b[:, 3] / (500 * 375), "scale"),
        (lambda b: np.log(b[:, 2] / b[:, 3]), "log ratio"),
        (lambda b: b[:, 0] / (500 - b[:, 2] + 1), "left"),
    ]:
        assert ks_statistic(column(ours), column(cpu)) < ks_critical(count, count), name


def test_fallback_boxes_equal_the_cpu_path() -> None:
    generator = torch.Generator().manual_seed(0)
    for width, height in [(2000, 10), (10, 2000), (3, 1000)]:
        box, fallback = sample_boxes(
            generator,
            torch.tensor([[float(width), float(height)]]),
            torch.tensor([[0.32, 1.0]], dtype=torch.float64),
            (3 / 4, 4 / 3),
        )
        expected = sample_crop_box(random.Random(0), width, height, (0.32, 1.0), (3 / 4, 4 / 3))
        assert expected[4] and bool(fallback[0])
        assert tuple(box[0].tolist()) == tuple(float(v) for v in expected[:4])


def test_parameter_rates_and_ranges_follow_the_config() -> None:
    cfg = PRESETS["dinov2"].config
    params = sample_params(torch.Generator().manual_seed(1), cfg, [(500, 375)] * 400)
    records = records_from_params(cfg, params, [(500, 375)] * 400)
    cpu = build_pipeline(cfg.replace(global_crops_size=8, local_crops_size=8), seed=1)
    cpu_records = [r for _ in range(150) for r in cpu(Image.new("RGB", (500, 375))).records]
    ours = [r for sample in records for r in sample]
    kinds = {
        "global1": lambda r: r.group == "global" and r.index == 0,
        "global2": lambda r: r.group == "global" and r.index == 1,
        "local": lambda r: r.group == "local",
    }
    for kind, select in kinds.items():
        rows = [r for r in ours if select(r)]
        aug = cfg.global1 if kind == "global1" else cfg.global2 if kind == "global2" else cfg.local
        for op, p in [
            ("flip", aug.flip_p),
            ("jitter", aug.jitter_p),
            ("grayscale", aug.grayscale_p),
            ("blur", aug.blur_p),
            ("solarize", aug.solarize_p),
        ]:
            rate = np.mean([getattr(r, op) for r in rows])
            assert abs(rate - p) <= 4 * math.sqrt(p * (1 - p) / len(rows)) + 1e-9, (kind, op, rate)
    jittered = [r for r in ours if r.jitter]
    cpu_jittered = [r for r in cpu_records if r.jitter]
    for name in ("brightness", "contrast", "saturation", "hue"):
        a = np.array([getattr(r, name) for r in jittered])
        b = np.array([getattr(r, name) for r in cpu_jittered])
        assert ks_statistic(a, b) < ks_critical(len(a), len(b)), name
    a = np.array([r.blur_sigma for r in ours if r.blur])
    b = np.array([r.blur_sigma for r in cpu_records if r.blur])
    assert ks_statistic(a, b) < ks_critical(len(a), len(b))
    positions = np.array([r.jitter_order.index("hue") for r in jittered])
    assert np.allclose(np.bincount(positions, minlength=4) / len(positions), 0.25, atol=0.03)


# --------------------------------------------------------------------------- the backend


@pytest.mark.parametrize("device", DEVICES)
def test_single_image_call_matches_the_pipeline_interface(device: str, image: Image.Image) -> None:
    cfg = PRESETS["small-images"].config
    gpu = GPUMultiCrop(cfg, device=device, seed=0)
    a, b, c = gpu(image, seed=3), gpu(image, seed=3), gpu(image, seed=4)
    assert (
        len(a.global_crops) == cfg.global_crops_number
        and len(a.local_crops) == cfg.local_crops_number
    )
    assert a.global_crops[0].shape == (3, cfg.global_crops_size, cfg.global_crops_size)
    assert a.global_crops[0].device.type == "cpu"
    assert len(a.records) == cfg.num_views and a.source_size == image.size
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views, strict=True))
    assert not torch.equal(a.global_crops[0], c.global_crops[0])
    report = run_checks(
        gpu, ListDataset([make_image(96, 96, seed=s) for s in range(3)]), expect=cfg, samples=6
    )
    assert report.verdict == "pass", [
        (r.id, r.message) for r in report.results if r.status == "fail"
    ]


@pytest.mark.parametrize("device", DEVICES)
def test_batches_of_mixed_sizes(device: str) -> None:
    cfg = PRESETS["dinov2"].config.replace(
        global_crops_size=32, local_crops_size=16, local_crops_number=3
    )
    gpu = GPUMultiCrop(cfg, device=device, seed=0)
    images = [
        make_image(120, 90, seed=1),
        make_image(64, 200, seed=2),
        TF.pil_to_tensor(make_image(50, 40, seed=3)),
    ]
    batch = gpu.batch(images)
    assert batch.global_crops.shape == (2 * 3, 3, 32, 32) and batch.local_crops.shape == (
        3 * 3,
        3,
        16,
        16,
    )
    assert batch.global_crops.device.type == device
    assert torch.isfinite(batch.global_crops).all() and torch.isfinite(batch.local_crops).all()
    assert [recs[0].source_size for recs in batch.records] == [(120, 90), (64, 200), (50, 40)]
    for sample in batch.records:
        for rec in sample:
            left, top, w, h = rec.box
            width, height = rec.source_size
            assert 0 <= left and left + w <= width and 0 <= top and top + h <= height
    uniform = torch.stack([TF.pil_to_tensor(make_image(80, 60, seed=s)) for s in range(4)])
    assert gpu.batch(uniform, seed=1).local_crops.shape == (3 * 4, 3, 16, 16)


@pytest.mark.parametrize("device", DEVICES)
def test_rendering_the_cpu_records_gives_the_cpu_views(device: str) -> None:
    """Same parameters, same filter taps and pass order: the resize's float sums round
    like the CPU path's fixed point on all but ~0.2% of the pixels."""
    cfg = PRESETS["dinov2"].config.replace(
        global_crops_size=64, local_crops_size=32, local_crops_number=4
    )
    cpu = build_pipeline(cfg)
    images = [make_image(200, 150, seed=s) for s in range(3)] + [make_image(90, 260, seed=5)]
    samples = [cpu(img, seed=s) for s, img in enumerate(images)]
    batch = GPUMultiCrop(cfg, device=device).render(
        images, params_from_records(cfg, [s.records for s in samples])
    )
    std = torch.tensor(cfg.std).view(1, 3, 1, 1)
    for group in ("global_crops", "local_crops"):
        levels = ((getattr(batch, group).cpu() - collate_views(samples)[group]) * std * 255).abs()
        assert float((levels > 0.5).float().mean()) < 0.005, group
        assert levels.mean() < 0.02, group


def test_without_resize_differences_the_backends_agree_exactly() -> None:
    """A crop box equal to the output size: both resizes are the identity, the rest is exact."""
    cfg = PRESETS["dinov2"].config.replace(
        global_crops_size=48, local_crops_size=48, local_crops_number=2
    )
    cpu = build_pipeline(cfg)
    image = make_image(48, 48, seed=7)
    sample = cpu(image, seed=0)
    for rec in sample.records:
        rec.box = (0.0, 0.0, 48.0, 48.0)
    expected = [cpu._normalise(_replay_cpu(cfg, image, rec)) for rec in sample.records]
    batch = GPUMultiCrop(cfg, device="cpu").render(
        [image], params_from_records(cfg, [sample.records])
    )
    for got, want in zip([*batch.global_crops, *batch.local_crops], expected, strict=True):
        assert torch.allclose(got, want, atol=1e-5)


def _replay_cpu(cfg, image: Image.Image, rec) -> np.ndarray:  # noqa: ANN001
    aug = cfg.augment_for(rec.group, rec.index)
    planes = exact.from_uint8(np.asarray(image))
    functions = {
        "brightness": exact.adjust_brightness,
        "contrast": exact.adjust_contrast,
        "saturation": exact.adjust_saturation,
        "hue": exact.adjust_hue,
    }
    for op in rec.jitter_order or ():
        planes = functions[op](planes, getattr(rec, op))
    if rec.grayscale:
        planes = exact.to_grayscale(planes)
    if rec.blur:
        planes = exact.gaussian_blur(planes, rec.blur_sigma)
    if rec.solarize:
        planes = exact.solarize(planes, aug.solarize_threshold)
    return np.ascontiguousarray(planes[:, :, ::-1]) if rec.flip else planes


def test_bad_inputs_raise_data_errors() -> None:
    gpu = GPUMultiCrop(PRESETS["small-images"].config, device="cpu")
    with pytest.raises(DataError, match=r"\(B, 3, H, W\) uint8"):
        gpu.batch(torch.zeros((2, 3, 8, 8)))
    with pytest.raises(DataError) as info:
        gpu.batch([make_image(10, 10), torch.zeros((1, 8, 8), dtype=torch.uint8)])
    assert str(info.value).startswith("image 1: ")
    assert_mentions(str(info.value), "PIL image", "(3, H, W) uint8 tensor")
    with pytest.raises(DataError, match="empty"):
        gpu.batch([])
