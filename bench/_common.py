"""Shared helpers of the benchmark scripts: machine info, images, timing, memory, results.

Every script prints a table and writes ``bench/results/<name>.json`` with the
machine it ran on (CPU model, cores, torch version, device), so numbers from
different machines are never mixed up.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, library versions, device."""
    import PIL
    import torchvision

    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A decoded RGB image with photo-like statistics: smooth shading, edges, texture, noise.

    Flat or pure-noise images make some operations unrealistically cheap or
    expensive (JPEG, resampling); this mixes gradients, shapes and mild noise.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(x / rng.uniform(20, 60) + rng.uniform(0, 6)),
            128 + 90 * np.cos(y / rng.uniform(20, 60) + rng.uniform(0, 6)),
            128 + 90 * np.sin((x + y) / rng.uniform(30, 90)),
        ],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(10, width // 2)), y0 + int(rng.integers(10, height // 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(1.0))
    noisy = np.asarray(image).astype(np.float32) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def photo_set(count: int, width: int, height: int, seed: int = 0) -> list[Image.Image]:
    return [photo_like(width, height, seed + i) for i in range(count)]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _status_kib(field: str) -> int | None:
    """A ``VmRSS`` / ``VmHWM`` line of /proc/self/status in KiB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak memory of a block, in MiB.

    ``mode="rss"``: the peak resident set during the block minus the resident set at
    its start (the kernel's peak mark is reset on entry through /proc/self/clear_refs;
    where that is not possible, the growth of ``ru_maxrss`` is used, which reads 0
    when an earlier peak was higher). It counts every allocator: PIL, numpy, torch.
    ``mode="tracemalloc"``: the peak of Python / numpy allocations (not PIL's or
    torch's C allocations); it slows the code down, so it is measured apart from timing.
    """

    def __init__(self, mode: str = "rss") -> None:
        self.mode = mode
        self.peak_mib = 0.0
        self.method = mode
        self._start_kib = 0

    def __enter__(self) -> PeakMemory:
        if self.mode == "tracemalloc":
            tracemalloc.start()
            tracemalloc.reset_peak()
            return self
        start = _status_kib("VmRSS")
        if start is not None and _reset_peak_rss():
            self.method = "VmHWM - VmRSS (clear_refs)"
            self._start_kib = start
        else:
            self.method = "ru_maxrss growth"
            self._start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mode == "tracemalloc":
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            self.peak_mib = peak / 2**20
            return
        if self.method.startswith("VmHWM"):
            end = _status_kib("VmHWM") or self._start_kib
        else:
            end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        self.peak_mib = max(0, end - self._start_kib) / 1024


def interleaved_rates(
    candidates: dict[str, Callable[[], int]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Items per second of each candidate, alternating candidates within every round.

    Each callable processes a fixed workload and returns the number of items it
    processed. Alternating (A, B, C, A, B, C, ...) spreads machine noise (other
    processes, thermal state) evenly over the candidates; ratios are taken per round.
    """
    for _ in range(warmup):
        for run in candidates.values():
            run()
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    order = list(candidates)
    for round_index in range(rounds):
        # rotate the starting candidate so that none always runs first
        rotated = order[round_index % len(order) :] + order[: round_index % len(order)]
        for name in rotated:
            start = time.perf_counter()
            items = candidates[name]()
            rates[name].append(items / (time.perf_counter() - start))
    return rates


def ratio_median(rates: dict[str, list[float]], name: str, baseline: str) -> float:
    """Median over rounds of (candidate rate / baseline rate) in the same round."""
    return statistics.median(a / b for a, b in zip(rates[name], rates[baseline], strict=True))


def write_results(name: str, payload: dict[str, Any], out: str | Path | None = None) -> Path:
    """Write ``<out>/<name>.json`` (default ``bench/results/``) and return its path."""
    folder = Path(out) if out else RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    payload = {"benchmark": name, "command": f"python bench/{name}.py", **payload}
    payload.setdefault("argv", sys.argv[1:])
    path.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    return path


def print_table(headers: list[str], rows: list[list[Any]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
