"""Data loading end to end: JPEG files -> decode -> multi-crop -> collate, N DataLoader workers.

    python bench/bench_loader.py                     # workers 0, 1, ..., os.cpu_count()
    python bench/bench_loader.py --workers 0,4,16    # on a bigger machine
    python bench/bench_loader.py --quick

Writes ``--images`` photo-like JPEGs (500 x 375, quality 90) into a temporary folder,
then for each worker count times full epochs of ``torch.utils.data.DataLoader`` over
them (persistent workers; the first epoch is a warm-up and is not timed), for:

- ``decode only``: ``dinodiag.data.load_image`` + ``ToTensor`` (the floor: no augmentation);
- ``torchvision``: decode + the torchvision v1 recipe of ``bench_augment.py``;
- ``dinodiag``: decode + ``build_pipeline(cfg, record=False)`` + ``collate_views``.

The three loaders alternate epoch by epoch (interleaved rounds); speed-ups are the
median over rounds of the per-round ratio. Memory: peak resident-set growth over the
timed epochs of the main process and of the hungriest worker (Linux /proc).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.functional as TF
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PeakMemory, machine_info, photo_like, print_table, write_results  # noqa: E402
from bench_augment import TorchvisionMultiCrop  # noqa: E402

import dinodiag  # noqa: E402
from dinodiag.data import load_image  # noqa: E402


class JpegFolder(Dataset):
    """Decode ``paths[i]`` with dinodiag's robust loader and apply ``transform``."""

    def __init__(self, paths: list[Path], transform: Callable[[Any], Any]) -> None:
        self.paths = paths
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        return self.transform(load_image(self.paths[index]))


def collate_lists(samples: list[list[torch.Tensor]]) -> dict[str, torch.Tensor]:
    """torchvision baseline: list of views per sample -> view-major stacks by size."""
    by_size: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for view in range(len(samples[0])):
        for sample in samples:
            by_size.setdefault(tuple(sample[view].shape), []).append(sample[view])
    return {str(size): torch.stack(views) for size, views in by_size.items()}


def make_jpegs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"img_{index:05d}.jpg"
        photo_like(width, height, seed=index).save(path, quality=90)
        paths.append(path)
    return paths


def loaders(paths: list[Path], workers: int, batch: int) -> dict[str, DataLoader]:
    cfg = dinodiag.load_config("dinov2")
    setups: dict[str, tuple[Callable[[Any], Any], Callable[[list], Any]]] = {
        "decode only": (TF.to_tensor, lambda items: items),
        "torchvision": (TorchvisionMultiCrop(cfg), collate_lists),
        "dinodiag": (dinodiag.build_pipeline(cfg, record=False), dinodiag.collate_views),
    }
    return {
        name: DataLoader(
            JpegFolder(paths, transform),
            batch_size=batch,
            shuffle=False,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=workers > 0,
            prefetch_factor=2 if workers > 0 else None,
        )
        for name, (transform, collate) in setups.items()
    }


def _worker_pids(loader: DataLoader) -> list[int]:
    """Process ids of a persistent loader's workers (DataLoader internals; [] if unavailable)."""
    iterator = getattr(loader, "_iterator", None)
    return [w.pid for w in getattr(iterator, "_workers", []) if w.pid is not None]


def _proc_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_worker_peaks(pids: list[int]) -> dict[int, int]:
    """Reset each worker's peak-RSS mark; returns its current RSS (KiB) to subtract later."""
    start = {}
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
            start[pid] = _proc_kib(pid, "VmRSS")
        except OSError:
            continue
    return start


def worker_peak_growth_mib(start: dict[int, int]) -> float:
    """Largest (peak RSS - RSS at reset) over the workers, in MiB."""
    growth = []
    for pid, rss in start.items():
        try:
            growth.append(_proc_kib(pid, "VmHWM") - rss)
        except OSError:
            continue
    return max(growth, default=0) / 1024


def epoch(loader: DataLoader) -> int:
    count = 0
    for batch in loader:
        count += len(batch) if isinstance(batch, list) else next(iter(batch.values())).shape[0]
    return len(loader.dataset)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=96, help="JPEG files per epoch")
    parser.add_argument(
        "--workers", default=None, help="comma-separated worker counts (default 0..cores)"
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per loader")
    parser.add_argument("--quick", action="store_true", help="32 images, 1 round")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    workers = (
        [int(w) for w in args.workers.split(",")] if args.workers else list(range(0, cores + 1))
    )
    images, rounds = (32, 1) if args.quick else (args.images, args.rounds)
    torch.set_num_threads(1)  # per-core figures: the main process uses one thread too

    results: dict[str, Any] = {
        "machine": machine_info("cpu"),
        "images": images,
        "rounds": rounds,
        "runs": [],
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="dinodiag-bench-") as folder:
        paths = make_jpegs(Path(folder), images, 500, 375)
        for count in workers:
            built = loaders(paths, count, args.batch)
            for loader in built.values():  # warm-up epoch: worker start-up, first allocations
                epoch(loader)
            rates: dict[str, list[float]] = {name: [] for name in built}
            main_peak: dict[str, float] = {name: 0.0 for name in built}
            worker_start = {
                name: reset_worker_peaks(_worker_pids(loader)) for name, loader in built.items()
            }
            for _ in range(rounds):
                for name, loader in built.items():
                    with PeakMemory("rss") as memory:
                        start = time.perf_counter()
                        rates[name].append(epoch(loader) / (time.perf_counter() - start))
                    main_peak[name] = max(main_peak[name], memory.peak_mib)
            worker_peak = {
                name: worker_peak_growth_mib(pids) for name, pids in worker_start.items()
            }
            del built
            ratio = statistics.median(
                a / b for a, b in zip(rates["dinodiag"], rates["torchvision"], strict=True)
            )
            results["runs"].append(
                {
                    "workers": count,
                    "rates": rates,
                    "ratio_dinodiag_vs_torchvision": ratio,
                    "main_peak_rss_growth_mib": main_peak,
                    "worker_peak_rss_growth_mib": worker_peak,
                }
            )
            for name, values in rates.items():
                speed = {"dinodiag": f"{ratio:.2f}x", "torchvision": "1.00x"}.get(name, "-")
                rows.append(
                    [
                        count,
                        name,
                        statistics.median(values),
                        speed,
                        main_peak[name],
                        worker_peak[name],
                    ]
                )
    print(
        f"data loading, 500x375 JPEGs, dinov2 preset ({results['machine']['cpu_model']}, {cores} "
        "cores)"
    )
    headers = [
        "workers",
        "loader",
        "images/s",
        "vs torchvision",
        "main RSS growth MiB",
        "worker RSS growth MiB",
    ]
    print_table(headers, rows)
    print(f"wrote {write_results('bench_loader', results)}")


if __name__ == "__main__":
    main()
