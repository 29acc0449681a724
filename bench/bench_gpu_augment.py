"""On-device multi-crop throughput: dinodiag.augment.gpu.GPUMultiCrop on CUDA if present, else CPU.

    python bench/bench_gpu_augment.py                 # device: cuda if available, else cpu
    python bench/bench_gpu_augment.py --device cpu --batch 16
    python bench/bench_gpu_augment.py --quick

Decoded uint8 images (500 x 375, photo-like) already in device memory, the DINOv2
preset (2 x 224 + 8 x 96 views per image): images per second and peak memory
(``torch.cuda.max_memory_allocated`` on CUDA; on CPU the peak resident-set growth
of a first call in a fresh process) for

- a ``(B, 3, H, W)`` uint8 batch, ``record=False`` (training) and ``record=True``;
- a list of B images of different sizes (padded on the device).

When ``bench/results/bench_loader.json`` exists (``python bench/bench_loader.py
--workers 0,16`` on the same machine), the best CPU loader figure is printed next to
it: the target is at least 10x a 16-worker CPU loader. Timings synchronise the device
before reading the clock; the median over ``--rounds`` batches is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, PeakMemory, machine_info, photo_set, print_table, write_results  # noqa: E402

import dinodiag  # noqa: E402
from dinodiag.augment.gpu.multicrop import GPUMultiCrop  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_cases(device: torch.device, batch: int) -> dict[str, Any]:
    """The benchmark cases: name -> a callable that augments one batch on ``device``."""
    cfg = dinodiag.load_config("dinov2")
    pictures = photo_set(min(batch, 16), 500, 375)
    arrays = [np.array(pictures[i % len(pictures)]) for i in range(batch)]
    uniform = torch.stack([torch.from_numpy(a).permute(2, 0, 1) for a in arrays]).to(device)
    mixed = [
        torch.from_numpy(a[: 300 + (i * 37) % 75, : 400 + (i * 53) % 100].copy())
        .permute(2, 0, 1)
        .to(device)
        for i, a in enumerate(arrays)
    ]
    plain = GPUMultiCrop(cfg, device=device, seed=0, record=False)
    recorded = GPUMultiCrop(cfg, device=device, seed=0, record=True)
    return {
        "uint8 batch, record=False": lambda: plain.batch(uniform),
        "uint8 batch, record=True": lambda: recorded.batch(uniform),
        "mixed sizes list, record=False": lambda: plain.batch(mixed),
    }


def measure(run: Any, device: torch.device, rounds: int, images: int) -> dict[str, Any]:
    """Median images/s over ``rounds`` calls (after a warm-up); CUDA peak memory of one call."""
    run()  # warm-up: kernels, allocator
    synchronize(device)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        synchronize(device)
        rates.append(images / (time.perf_counter() - start))
    figures: dict[str, Any] = {"images_per_s": statistics.median(rates), "rates": rates}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        synchronize(device)
        figures["peak_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        figures["memory_method"] = (
            "torch.cuda.max_memory_allocated minus the memory allocated before"
        )
    return figures


def cpu_peak_in_child(case: str, batch: int) -> dict[str, Any]:
    """Peak RSS growth of the first call of ``case`` in a fresh process (the CPU memory figure)."""
    command = [
        sys.executable,
        __file__,
        "--device",
        "cpu",
        "--batch",
        str(batch),
        "--child-memory",
        case,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {case!r} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_loader_reference() -> dict[str, Any] | None:
    """The best dinodiag / torchvision figure of bench_loader.json, if present."""
    path = RESULTS_DIR / "bench_loader.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    best: dict[str, Any] | None = None
    for run in data.get("runs", []):
        for loader in ("dinodiag", "torchvision"):
            rate = statistics.median(run["rates"][loader])
            if best is None or rate > best["images_per_s"]:
                best = {"loader": loader, "workers": run["workers"], "images_per_s": rate}
    if best is not None:
        best["machine"] = data.get("machine", {}).get("cpu_model")
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default=None, help="cuda / cpu (default: cuda if available)")
    parser.add_argument(
        "--batch", type=int, default=None, help="images per batch (default 128 cuda, 8 cpu)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 rounds, small batch")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch or (128 if device.type == "cuda" else 8)
    rounds = args.rounds
    if args.quick:
        batch, rounds = min(batch, 4), 2
    if device.type == "cpu":
        torch.set_num_threads(1)  # per-core figure, comparable with bench_augment
    if args.child_memory:
        run = build_cases(device, batch)[args.child_memory]
        with PeakMemory("rss") as memory:
            run()
        method = f"RSS growth of a first call in a fresh process ({memory.method})"
        print(json.dumps({"peak_mib": memory.peak_mib, "memory_method": method}))
        return

    cases = build_cases(device, batch)
    results: dict[str, Any] = {
        "machine": machine_info(str(device)),
        "batch": batch,
        "rounds": rounds,
        "cases": {},
    }
    rows = []
    for name, run in cases.items():
        figures = measure(run, device, rounds, batch)
        if device.type == "cpu":
            figures.update(cpu_peak_in_child(name, batch))
        results["cases"][name] = figures
        rows.append([name, figures["images_per_s"], figures["peak_mib"]])
    reference = cpu_loader_reference()
    results["cpu_loader_reference"] = reference
    where = results["machine"].get("gpu", results["machine"]["cpu_model"])
    print(f"GPUMultiCrop on {device} ({where}), batch {batch}, dinov2 preset, 500x375 uint8 images")
    print_table(["case", "images/s", "peak MiB"], rows)
    if reference:
        best = results["cases"]["uint8 batch, record=False"]["images_per_s"]
        results["ratio_vs_cpu_loader"] = best / reference["images_per_s"]
        print(
            f"vs the best CPU loader in bench_loader.json ({reference['loader']}, "
            f"{reference['workers']} workers, "
            f"{reference['images_per_s']:.1f} images/s on {reference['machine']}): "
            f"{results['ratio_vs_cpu_loader']:.2f}x (target: >= 10x a 16-worker loader on the "
            "same machine)"
        )
    print(f"wrote {write_results('bench_gpu_augment', results)}")


if __name__ == "__main__":
    main()
