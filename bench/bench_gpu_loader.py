"""On-device multi-crop against the CPU loader and against DALI / kornia, on the same images.

    python bench/bench_gpu_loader.py                 # on CUDA (on a CPU: CPU figures only)
    python bench/bench_gpu_loader.py --quick         # every case briefly (a smoke run)
    python bench/bench_gpu_loader.py --out $OUT --workers 0,4,16

Images: ``--images`` photo-like 500 x 375 JPEGs (quality 90) in a temporary folder, read as a
dinodiag image folder; the recipe is the ``dinov2`` preset (2 x 224 + 8 x 96 px views), batches
of ``--batch``. Each case delivers batches of finished views on the training device, as a
training step takes them; images/s is the median of ``--rounds`` timed runs of at least
``--seconds`` each, after a warm-up (workers started, kernels compiled), the device
synchronised before every clock reading:

- ``cpu loader, N workers``: the CPU path of training (:mod:`dinodiag.train.data`): decode +
  cut + colour in N DataLoader workers, pinned, copied to the device;
- ``device, end to end``: the on-device path (:mod:`dinodiag.train.device_batches`): workers
  only decode, :class:`GPUMultiCrop` makes the views on the device;
- ``device, end to end, decoded cache``: the same with the images decoded once (RAM);
- ``device, augmentation only``: a decoded uint8 batch already on the device;
- ``kornia, augmentation only`` / ``DALI, end to end``: the same recipe written for them
  (``bench/gpu_recipes.py``; where they differ from it is recorded), when they install;
  neither records per-view parameters, dinodiag's backend does.

The issue's target: the on-device backend >= 10x a 16-worker CPU loader, and faster than both
anchors. On a machine without CUDA every device case runs on the CPU: those are CPU figures,
labelled as such, not results for a GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, photo_like, print_table, write_results  # noqa: E402
from gpu_recipes import DIFFERENCES, why_not  # noqa: E402

import dinodiag  # noqa: E402
from dinodiag.augment.gpu import GPUMultiCrop  # noqa: E402
from dinodiag.data import open_dataset  # noqa: E402
from dinodiag.recipe.presets import get_train_preset  # noqa: E402
from dinodiag.train.data import batches, build_train_loader, default_workers  # noqa: E402
from dinodiag.train.device_augment import DeviceAugment  # noqa: E402
from dinodiag.train.device_batches import build_device_loader, cached_dataset  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(
    step: Callable[[], int], device: torch.device, seconds: float, rounds: int
) -> dict[str, Any]:
    """Images/s of ``step`` (one batch, returns its image count): ``rounds`` runs of at least
    ``seconds`` (and 3 batches) each after 2 warm-up batches; device peak memory of the runs."""
    for _ in range(2):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    rates = []
    for _ in range(rounds):
        images, count, start = 0, 0, time.perf_counter()
        while count < 3 or time.perf_counter() - start < seconds:
            images += step()
            synchronize(device)
            count += 1
        rates.append(images / (time.perf_counter() - start))
    out: dict[str, Any] = {"images_per_s": statistics.median(rates), "rates": rates}
    if device.type == "cuda":
        out["device_peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    return out


def endless(loader: Any, sampler: Any) -> Iterator[dict[str, Any]]:
    for _epoch, batch in batches(loader, sampler, 0, len(sampler)):
        yield batch


def cpu_loader_case(dataset: Any, workers: int, batch: int, device: torch.device) -> Callable:
    cfg = dinodiag.load_config("dinov2")
    loader, sampler = build_train_loader(
        dataset,
        cfg,
        batch_size=batch,
        seed=0,
        mask=None,
        workers=workers,
        pin_memory=device.type == "cuda",
    )
    stream = endless(loader, sampler)

    def step() -> int:
        views = next(stream)
        views["global_crops"].to(device, non_blocking=True)
        views["local_crops"].to(device, non_blocking=True)
        return batch

    return step


def device_case(dataset: Any, workers: int, batch: int, device: torch.device) -> Callable:
    cfg = dinodiag.load_config("dinov2")
    config = get_train_preset("gpu").config.with_overrides(
        {"data.batch_size": batch, "data.workers": workers}
    )
    loader, sampler, _ = build_device_loader(
        config,
        cfg,
        dataset,
        mask=None,
        world_size=1,
        rank=0,
        pin_memory=device.type == "cuda",
    )
    stream, augment = endless(loader, sampler), DeviceAugment(cfg, device)

    def step() -> int:
        augment(next(stream))
        return batch

    return step


def decoded_batch(dataset: Any, batch: int, device: torch.device) -> torch.Tensor:
    """(batch, 3, 375, 500) uint8 on the device: the decoded images, repeated as needed."""
    arrays = [np.asarray(dataset[i % len(dataset)][0]) for i in range(batch)]
    return torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays]).to(device)


def augmentation_only_case(images: torch.Tensor, device: torch.device) -> Callable:
    crop = GPUMultiCrop(dinodiag.load_config("dinov2"), device=device, record=False)

    def step() -> int:
        crop.batch(images)
        return images.shape[0]

    return step


def profile(step: Callable[[], int], device: torch.device, top: int = 15) -> list[dict]:
    """Where one on-device batch spends its time: the ``top`` operators by device time (CPU
    time on a CPU), from torch.profiler."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step()
    synchronize(device)
    with torch_profile(activities=activities) as prof:
        step()
        synchronize(device)
    key = "device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    rows = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0.0), reverse=True)
    return [
        {"op": e.key, "ms": getattr(e, key, 0.0) / 1000.0, "calls": e.count} for e in rows[:top]
    ]


def kornia_case(images: torch.Tensor, device: torch.device) -> Callable:
    from gpu_recipes import KorniaMultiCrop

    recipe = KorniaMultiCrop(dinodiag.load_config("dinov2"), device)

    def step() -> int:
        recipe.views(images)
        return images.shape[0]

    return step


def dali_case(files: list[str], batch: int, device: torch.device, threads: int) -> Callable:
    from gpu_recipes import dali_pipeline

    pipe = dali_pipeline(
        dinodiag.load_config("dinov2"), files, batch, gpu=device.type == "cuda", threads=threads
    )

    def step() -> int:
        pipe.run()
        return batch

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1024, help="JPEG files")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", default="0,4,16", help="CPU loader worker counts")
    parser.add_argument("--decode-workers", type=int, default=None, help="device path workers")
    parser.add_argument("--seconds", type=float, default=2.0, help="per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if present)")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--quick", action="store_true", help="a few images, short runs")
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cores = os.cpu_count() or 1
    workers = [min(int(w), cores) for w in args.workers.split(",")]
    images, batch, seconds, rounds = args.images, args.batch, args.seconds, args.rounds
    if args.quick:
        images, batch, seconds, rounds = 16, 4, 0.2, 1
        workers = sorted({min(w, 1) for w in workers})
    decode_workers = args.decode_workers or default_workers(1, on_gpu=True)
    on_gpu = device.type == "cuda"
    results: dict[str, Any] = {
        "machine": machine_info(str(device)),
        "figures_are": f"{'GPU' if on_gpu else 'CPU'} figures ({device})",
        "images": images,
        "image_size": [500, 375],
        "batch": batch,
        "recipe": "dinov2 preset: 2 x 224 + 8 x 96",
        "cases": {},
        "skipped": {},
        "differences_from_the_recipe": DIFFERENCES,
    }
    rows = []

    def record(name: str, make: Callable[[], Callable], **extra: Any) -> None:
        try:
            figures = timed(make(), device, seconds, rounds)
        except Exception as exc:  # a library that imports but fails here: say why, go on
            results["skipped"][name] = f"failed: {type(exc).__name__}: {exc}"
            print(f"{name}: failed ({type(exc).__name__}: {exc})", flush=True)
            return
        results["cases"][name] = {**figures, **extra}
        rows.append([name, figures["images_per_s"], figures.get("device_peak_mib", "-")])
        print(f"{name}: {figures['images_per_s']:.0f} images/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="dinodiag-gpu-bench-") as folder:
        for index in range(images):
            photo_like(500, 375, seed=index).save(Path(folder) / f"img_{index:05d}.jpg", quality=90)
        files = sorted(str(p) for p in Path(folder).glob("*.jpg"))
        dataset = open_dataset(folder, split="all")
        for count in workers:
            record(
                f"cpu loader, {count} workers",
                lambda c=count: cpu_loader_case(dataset, c, batch, device),
                workers=count,
            )
        record(
            "device, end to end",
            lambda: device_case(dataset, decode_workers, batch, device),
            workers=decode_workers,
        )
        cached, note = cached_dataset(dataset, 8.0)
        record(
            "device, end to end, decoded cache",
            lambda: device_case(cached, decode_workers, batch, device),
            workers=decode_workers,
            cache=note,
        )
        on_device = decoded_batch(dataset, batch, device)
        record("device, augmentation only", lambda: augmentation_only_case(on_device, device))
        results["device_profile"] = profile(augmentation_only_case(on_device, device), device)
        reason = why_not("kornia")
        if reason is None:
            record("kornia, augmentation only", lambda: kornia_case(on_device, device))
        else:
            results["skipped"]["kornia"] = reason
        reason = why_not("nvidia.dali")
        if reason is None:
            threads = max(1, min(cores, 16))
            record(
                "DALI, end to end",
                lambda: dali_case(files, batch, device, threads),
                threads=threads,
            )
        else:
            results["skipped"]["DALI"] = reason

    cases = results["cases"]
    sixteen = cases.get(f"cpu loader, {max(workers)} workers")
    best_cpu = max((c["images_per_s"] for n, c in cases.items() if n.startswith("cpu")), default=0)
    for figures in cases.values():
        if sixteen:
            figures["x_vs_cpu_loader"] = figures["images_per_s"] / sixteen["images_per_s"]
    ours = cases.get("device, end to end", {}).get("images_per_s")
    results["summary"] = {
        "cpu_loader_max_workers": max(workers),
        "best_cpu_loader_images_per_s": best_cpu,
        "device_end_to_end_x_vs_cpu_loader": ours / sixteen["images_per_s"]
        if ours and sixteen
        else None,
        "target": ">= 10x a 16-worker CPU loader; faster than kornia and DALI",
    }
    print(f"\nmulti-crop views on {device} ({results['figures_are']}), batch {batch}")
    print_table(["case", "images/s", "device peak MiB"], rows)
    print("\non-device batch, top operators by time (ms):")
    for row in results.get("device_profile", [])[:8]:
        print(f"  {row['ms']:9.2f}  {row['calls']:5d}  {row['op']}")
    for name, why in results["skipped"].items():
        print(f"skipped {name}: {why}")
    print(f"wrote {write_results('bench_gpu_loader', results, args.out)}")


if __name__ == "__main__":
    main()
