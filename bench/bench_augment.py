"""Augmentation throughput per CPU core: dinodiag's multi-crop pipeline vs a torchvision baseline.

    python bench/bench_augment.py            # full run (about 2-4 minutes)
    python bench/bench_augment.py --quick    # a few rounds, for a smoke test

One process, ``torch.set_num_threads(1)``: images per second per core on already
decoded PIL images, for the DINOv2 preset (2 x 224 px + 8 x 96 px views), on
500 x 375 images (ImageNet-like) and on 96 x 96 images (STL-10-like: every crop is
upsampled). Candidates, run interleaved in rounds (baseline, record=True,
record=False, baseline, ...) on the same images; speed-ups are the median over
rounds of the per-round ratio to the baseline:

- ``torchvision``: the recipe written with torchvision.transforms v1 on PIL images
  (RandomResizedCrop bicubic, flip, ColorJitter with p=0.8, grayscale, PIL Gaussian
  blur with a random sigma, RandomSolarize, ToTensor, Normalize), per view kind;
- ``dinodiag record=True``: the instrumented pipeline (records every parameter);
- ``dinodiag record=False``: the training loop's setting;
- ``lightly DINOTransform``: only when lightly is installed (it is not a dependency).

Peak memory: each candidate runs once more in a fresh child process (same imports,
same images) that reports the peak growth of its resident set over the workload
(first call included; every allocator counted) and the peak of Python/numpy
allocations (``tracemalloc``; PIL's and torch's C allocations are not traced, so
compare that column only between dinodiag settings).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    PeakMemory,
    interleaved_rates,
    machine_info,
    photo_set,
    print_table,
    ratio_median,
    seed_everything,
    write_results,
)

import dinodiag  # noqa: E402
from dinodiag.augment.config import PipelineConfig, ViewAugment  # noqa: E402

DATASETS = {"500x375": (500, 375, 8), "96x96": (96, 96, 16)}  # name -> (width, height, images)


# --------------------------------------------------------------------------- the baseline


class RandomPILGaussianBlur:
    """DINO's blur: with probability ``p``, PIL GaussianBlur with sigma uniform in ``sigma``."""

    def __init__(self, p: float, sigma: tuple[float, float]) -> None:
        self.p = p
        self.sigma = sigma

    def __call__(self, image: Image.Image) -> Image.Image:
        if torch.rand(1).item() >= self.p:
            return image
        return image.filter(ImageFilter.GaussianBlur(radius=random.uniform(*self.sigma)))


def torchvision_view(
    cfg: PipelineConfig, size: int, scale: tuple[float, float], aug: ViewAugment
) -> T.Compose:
    """One view kind of the recipe with torchvision.transforms v1 on PIL images."""
    return T.Compose(
        [
            T.RandomResizedCrop(
                size, scale=scale, ratio=cfg.crop_ratio, interpolation=T.InterpolationMode.BICUBIC
            ),
            T.RandomHorizontalFlip(aug.flip_p),
            T.RandomApply(
                [T.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue)],
                p=aug.jitter_p,
            ),
            T.RandomGrayscale(aug.grayscale_p),
            RandomPILGaussianBlur(aug.blur_p, aug.blur_sigma),
            T.RandomSolarize(aug.solarize_threshold, p=aug.solarize_p),
            T.ToTensor(),
            T.Normalize(cfg.mean, cfg.std),
        ]
    )


class TorchvisionMultiCrop:
    """The baseline: 1 x global1 + (G-1) x global2 + L x local views, as DINO's DataAugmentation."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.global1 = torchvision_view(
            cfg, cfg.global_crops_size, cfg.global_crops_scale, cfg.global1
        )
        self.global2 = torchvision_view(
            cfg, cfg.global_crops_size, cfg.global_crops_scale, cfg.global2
        )
        self.local = torchvision_view(cfg, cfg.local_crops_size, cfg.local_crops_scale, cfg.local)
        self.cfg = cfg

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        views = [self.global1(image)]
        views += [self.global2(image) for _ in range(self.cfg.global_crops_number - 1)]
        views += [self.local(image) for _ in range(self.cfg.local_crops_number)]
        return views


def lightly_transform(cfg: PipelineConfig) -> Callable[[Image.Image], Any] | None:
    """lightly's DINOTransform with the same crop geometry, or None when lightly is missing."""
    try:
        from lightly.transforms.dino_transform import DINOTransform  # type: ignore[import-not-found]
    except ImportError:
        return None
    return DINOTransform(
        global_crop_size=cfg.global_crops_size,
        global_crop_scale=cfg.global_crops_scale,
        local_crop_size=cfg.local_crops_size,
        local_crop_scale=cfg.local_crops_scale,
        n_local_views=cfg.local_crops_number,
    )


def candidates(cfg: PipelineConfig) -> dict[str, Callable[[Image.Image], Any]]:
    out: dict[str, Callable[[Image.Image], Any]] = {
        "torchvision": TorchvisionMultiCrop(cfg),
        "dinodiag record=True": dinodiag.build_pipeline(cfg, seed=0, record=True),
        "dinodiag record=False": dinodiag.build_pipeline(cfg, seed=0, record=False),
    }
    lightly = lightly_transform(cfg)
    if lightly is not None:
        out["lightly DINOTransform"] = lightly
    return out


# --------------------------------------------------------------------------- measuring


def child_memory(candidate: str, dataset: str, repeats: int) -> dict[str, float]:
    """Run in a fresh process: peak RSS growth and tracemalloc peak of one candidate's workload."""
    torch.set_num_threads(1)
    seed_everything(0)
    cfg = dinodiag.load_config("dinov2")
    width, height, count = DATASETS[dataset]
    images = photo_set(count, width, height)
    transform = candidates(cfg)[candidate]
    # Peak RSS growth from before the first call (lazy initialisation included) to the end.
    with PeakMemory("rss") as rss:
        for _ in range(repeats):
            for image in images:
                transform(image)
    with PeakMemory("tracemalloc") as traced:
        for image in images:
            transform(image)
    return {
        "peak_rss_growth_mib": rss.peak_mib,
        "peak_rss_method": rss.method,
        "peak_traced_mib": traced.peak_mib,
    }


def measure_memory(candidate: str, dataset: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child-memory", candidate, dataset]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {candidate!r} / {dataset} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _workload(
    transform: Callable[[Image.Image], Any], images: list[Image.Image]
) -> Callable[[], int]:
    def run() -> int:
        for image in images:
            transform(image)
        return len(images)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds per dataset")
    parser.add_argument("--quick", action="store_true", help="3 rounds, for a smoke test")
    parser.add_argument(
        "--child-memory", nargs=2, metavar=("CANDIDATE", "DATASET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child_memory:
        print(json.dumps(child_memory(*args.child_memory, repeats=2)))
        return

    torch.set_num_threads(1)
    seed_everything(0)
    rounds = 3 if args.quick else args.rounds
    cfg = dinodiag.load_config("dinov2")
    transforms = candidates(cfg)
    notes = []
    if "lightly DINOTransform" not in transforms:
        notes.append("lightly is not installed: the lightly DINOTransform column is skipped")

    results: dict[str, Any] = {"machine": machine_info("cpu"), "preset": "dinov2", "rounds": rounds}
    rows = []
    for dataset, (width, height, count) in DATASETS.items():
        images = photo_set(count, width, height)
        workloads = {name: _workload(transform, images) for name, transform in transforms.items()}
        rates = interleaved_rates(workloads, rounds)
        per_dataset: dict[str, Any] = {"images": count, "size": [width, height], "candidates": {}}
        for name in transforms:
            memory = measure_memory(name, dataset)
            ratio = ratio_median(rates, name, "torchvision")
            median_rate = sorted(rates[name])[len(rates[name]) // 2]
            per_dataset["candidates"][name] = {
                "images_per_s_per_core": median_rate,
                "rates_per_round": rates[name],
                "ratio_vs_torchvision_median": ratio,
                **memory,
            }
            rows.append(
                [
                    dataset,
                    name,
                    median_rate,
                    f"{ratio:.2f}x",
                    memory["peak_rss_growth_mib"],
                    memory["peak_traced_mib"],
                ]
            )
        results[dataset] = per_dataset
    results["notes"] = notes
    print(
        f"augmentation throughput per core ({results['machine']['cpu_model']}, 1 thread, {rounds} "
        "rounds)"
    )
    print_table(
        [
            "images",
            "pipeline",
            "img/s/core",
            "vs torchvision",
            "peak RSS growth MiB",
            "peak traced MiB",
        ],
        rows,
    )
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {write_results('bench_augment', results)}")


if __name__ == "__main__":
    main()
