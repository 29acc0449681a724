"""Training step throughput, model FLOPs (and MFU on a GPU), peak memory and k-NN evaluation time.

    python bench/bench_train.py           # cpu-demo, small-images, gpu (about 2 min on CPU)
    python bench/bench_train.py --presets cpu-demo   # one preset
    python bench/bench_train.py --presets gpu small-images --compile both --out $OUT  # GPU suite

Throughput: each preset runs through the real engine (``run_training``) for a few steps in a
fresh child process (so that its peak memory is its own), without k-NN evaluation or
checkpoints, into a temporary run directory. ``img_per_s`` is the median of the engine's
``metrics.jsonl`` train rows after the first (the first holds the warm-up: loader start,
first allocations). On a CPU the ``small-images`` and ``gpu`` presets run with a smaller batch
and only a few steps (ViT-S at 224 px with K = 65536 takes seconds per image there); on CUDA
they use the preset's batch. Peak memory beside every figure: the engine's ``peak_mem_mb``
(CUDA allocator peak on a GPU, max resident set on a CPU) and the child's max resident set
(``ru_maxrss``; loader workers are separate processes, reported as ``rss_workers_mb``).

FLOPs: the first ``train_step`` runs under ``torch.utils.flop_counter.FlopCounterMode``
(teacher forward, student forward + backward, heads, losses; matmuls, convolutions and
attention only, the optimiser and element-wise ops are not counted), divided by the batch.
On CUDA the ``gpu`` / ``small-images`` runs make their views on the GPU (``--augment-device
device``) from a few thousand generated images decoded once (``--decode-cache-gb``), so that
the loader is not what is measured; ``data ms`` / ``step ms`` (median ``data_time`` /
``iter_time`` of the train rows) show whether it still waits. ``--compile both`` adds a
torch.compile run per preset (FLOPs counted on the plain run of the same model).
MFU = FLOPs/image x images/s / the GPU's dense bf16 peak (H100 / H200 SXM 989 TFLOP/s, H100
PCIe 756, A100 312); "n/a" on a CPU or an unknown GPU, where the achieved GFLOP/s is still shown.

k-NN: ``knn_classify`` on random L2-normalised features for each preset's bank / test sizes
(``data.knn_train_max`` / ``data.knn_test_max``, dim = embed dim), and the whole cpu-demo
evaluation as the engine runs it: preparing the images (``build_evaluator``: generate,
centre-crop, cache) and ``evaluate`` (features of bank + test through a fresh teacher
backbone in batches of 256, then the k-NN).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, seed_everything, write_results  # noqa: E402

from dinodiag.recipe.config import TrainConfig  # noqa: E402
from dinodiag.recipe.crops import resolve_pipeline
from dinodiag.recipe.presets import get_train_preset  # noqa: E402
from dinodiag.rundir import read_metrics  # noqa: E402
from dinodiag.train import engine  # noqa: E402
from dinodiag.train.eval.evaluator import build_evaluator  # noqa: E402
from dinodiag.train.eval.knn import knn_classify  # noqa: E402
from dinodiag.train.models.network import build_backbone  # noqa: E402

PRESETS = ("cpu-demo", "small-images", "gpu")
# preset -> (batch or None = the preset's, steps, log_every), on a CPU and on CUDA
PLAN_CPU: dict[str, tuple[int | None, int, int]] = {
    "cpu-demo": (None, 15, 5),
    "small-images": (8, 4, 1),
    "gpu": (4, 3, 1),
}
PLAN_CUDA: dict[str, tuple[int | None, int, int]] = {
    "cpu-demo": (None, 25, 5),
    "small-images": (None, 60, 10),
    "gpu": (None, 60, 10),
}
# On CUDA the loader must not be what is measured: a few thousand generated images of the
# preset's size, decoded once (--decode-cache-gb) and cut / coloured on the device.
DATA_CUDA = {
    "small-images": "generated:n=4096,val_n=512,size=32",
    "gpu": "generated:n=2048,val_n=256,size=128",
}
# dense bf16 peak FLOP/s by a substring of torch.cuda.get_device_name (first match wins)
GPU_PEAKS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("A100", 312e12))


def device_name() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def gpu_peak_flops() -> float | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((peak for key, peak in GPU_PEAKS if key in name), None)


def bench_config(preset: str, compile: bool = False) -> tuple[TrainConfig, str]:
    """The preset, shortened to a few steps without k-NN / checkpoints; and what was changed."""
    cuda = torch.cuda.is_available()
    plan = PLAN_CUDA if cuda else PLAN_CPU
    batch, steps, log_every = plan[preset]
    overrides: dict[str, Any] = {
        "run.compile": compile,
        "run.max_steps": steps,
        "run.eval_every": 0,
        "run.checkpoint_every": 0,
        "run.max_seconds": None,
        "run.fit_to_time": False,
        "run.log_every": log_every,
    }
    note = f"{steps} steps" + (", torch.compile" if compile else "")
    if cuda and preset in DATA_CUDA:
        overrides["data.data"] = DATA_CUDA[preset]
        overrides["data.decode_cache_gb"] = 2.0
        overrides["data.augment_device"] = "device"
        note += ", views made on the GPU from decoded images"
    if batch is not None:
        overrides["data.batch_size"] = batch
        note += f", batch {batch} (preset {get_train_preset(preset).config.data.batch_size})"
    return get_train_preset(preset).config.with_overrides(overrides), note


# --------------------------------------------------------------------------- child: training


def run_child(preset: str, compile: bool = False) -> dict[str, Any]:
    """Train ``preset`` briefly through the engine; FLOPs counted on the first step (not under
    torch.compile: the same model's count comes from the plain run)."""
    from torch.utils.flop_counter import FlopCounterMode

    config, note = bench_config(preset, compile)
    load_before = list(os.getloadavg())  # other processes on the machine skew CPU figures
    counted: dict[str, float] = {}
    real_step = engine.train_step

    def counting_step(*args: Any, **kwargs: Any) -> dict[str, float]:
        if counted or compile:
            return real_step(*args, **kwargs)
        with FlopCounterMode(display=False) as counter:
            values = real_step(*args, **kwargs)
        counted["flops"] = float(counter.get_total_flops())
        return values

    engine.train_step = counting_step  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        start = time.perf_counter()
        result = engine.run_training(config, Path(tmp) / "run", progress=None)
        seconds = time.perf_counter() - start
        if result.state != "finished":
            raise SystemExit(f"{preset}: the run {result.state}: {result.message}")
        train = read_metrics(Path(tmp) / "run", kind="train")
    rates = train["img_per_s"].tolist()
    measured = rates[1:] or rates
    batch = config.data.batch_size
    timings = {
        key: statistics.median(train[key].dropna().tolist()[1:] or train[key].dropna().tolist())
        for key in ("data_time", "iter_time", "augment_time")
        if key in train and train[key].notna().any()
    }
    return {
        "preset": preset,
        "compile": compile,
        "augment_device": config.data.augment_device,
        "median_seconds_per_step": timings,
        "setting": note,
        "batch_size": batch,
        "steps": result.step,
        "train_rows": len(rates),
        "img_per_s": statistics.median(measured),
        "img_per_s_rows": rates,
        "peak_mem_mb": float(train["peak_mem_mb"].max()),
        "rss_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "flops_per_image": counted.get("flops", float("nan")) / batch,
        "threads": torch.get_num_threads(),
        "run_seconds": seconds,
        "load_average_before": load_before,
    }


def train_in_child(preset: str, compile: bool = False) -> dict[str, Any]:
    """``run_child`` in a fresh interpreter (own peak memory); its last stdout line is JSON."""
    command = [sys.executable, __file__, "--child", preset]
    command += ["--child-compile"] if compile else []
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"the {preset} child failed (exit code {proc.returncode})")
    return json.loads(lines[-1].removeprefix("RESULT "))


# --------------------------------------------------------------------------- k-NN


def knn_time(n_train: int, n_test: int, dim: int, device: str, classes: int = 10) -> float:
    """Seconds of one ``knn_classify`` (k = 20) on random unit features (median of 3)."""
    gen = torch.Generator().manual_seed(0)
    train = torch.nn.functional.normalize(torch.randn(n_train, dim, generator=gen), dim=1)
    test = torch.nn.functional.normalize(torch.randn(n_test, dim, generator=gen), dim=1)
    train_y = torch.randint(0, classes, (n_train,), generator=gen)
    test_y = torch.randint(0, classes, (n_test,), generator=gen)
    train, test = train.to(device), test.to(device)
    times = []
    for _ in range(3):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        knn_classify(train, train_y, test, test_y)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def embed_dim(config: TrainConfig) -> int:
    return int(build_backbone(config.model, resolve_pipeline(config).global_crops_size).embed_dim)


def cpu_demo_evaluation(device: str) -> dict[str, Any]:
    """The engine's k-NN evaluation of cpu-demo: prepare the images, then features + k-NN."""
    config = get_train_preset("cpu-demo").config
    pipeline = resolve_pipeline(config)
    from dinodiag.data import open_dataset

    train_set = open_dataset(config.data.data, split=config.data.train_split)
    torch.set_num_threads(config.run.threads or torch.get_num_threads())
    start = time.perf_counter()
    evaluator, reason = build_evaluator(
        train_set,
        config.data,
        pipeline,
        seed=0,
        device=torch.device(device),
        autocast_dtype=torch.bfloat16 if device == "cuda" else None,
        workers=0,
    )
    prepare = time.perf_counter() - start
    if evaluator is None:
        raise SystemExit(f"cpu-demo k-NN evaluator: {reason}")
    seed_everything(0)
    backbone = build_backbone(config.model, pipeline.global_crops_size).to(device)
    evaluator.evaluate(backbone)  # warm-up
    result = evaluator.evaluate(backbone)
    return {
        "bank": evaluator.sizes[0],
        "test": evaluator.sizes[1],
        "prepare_s": prepare,
        "evaluate_s": result["eval_seconds"],
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument(
        "--compile",
        choices=("no", "yes", "both"),
        default="no",
        help="train without / with torch.compile, or both (compiled after plain)",
    )
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--name", default="bench_train", help="results file name (no .json)")
    parser.add_argument("--child", choices=PRESETS, help=argparse.SUPPRESS)
    parser.add_argument("--child-compile", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(run_child(args.child, args.child_compile)), flush=True)
        return
    variants = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]

    device = device_name()
    peak = gpu_peak_flops()
    train_rows, train_results = [], []
    flops: dict[str, float] = {}
    for preset, compile in [(p, c) for p in args.presets for c in variants]:
        r = train_in_child(preset, compile)
        if compile and preset in flops:  # counted on the plain run of the same model
            r["flops_per_image"] = flops[preset]
        flops.setdefault(preset, r["flops_per_image"])
        achieved = r["flops_per_image"] * r["img_per_s"]
        r["achieved_gflop_per_s"] = achieved / 1e9
        r["mfu"] = achieved / peak if peak else None
        train_results.append(r)
        train_rows.append(
            [
                preset,
                r["setting"],
                r["img_per_s"],
                r["flops_per_image"] / 1e9,
                r["achieved_gflop_per_s"],
                f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a",
                r["peak_mem_mb"],
                r["median_seconds_per_step"].get("data_time", float("nan")) * 1000,
                r["median_seconds_per_step"].get("iter_time", float("nan")) * 1000,
                r["rss_self_mb"],
                r["rss_workers_mb"],
            ]
        )
    print(f"Training throughput on {device} (engine, median of train rows after the first)")
    print_table(
        [
            "preset",
            "setting",
            "img/s",
            "GFLOP/img",
            "GFLOP/s",
            "MFU",
            "peak MB",
            "data ms",
            "step ms",
            "RSS MB",
            "workers RSS MB",
        ],
        train_rows,
    )

    knn_rows, knn_results = [], []
    for preset in args.presets:
        config = get_train_preset(preset).config
        n_train, n_test = config.data.knn_train_max, config.data.knn_test_max
        dim = embed_dim(config)
        seconds = knn_time(n_train, n_test, dim, device)
        knn_results.append(
            {"preset": preset, "bank": n_train, "test": n_test, "dim": dim, "seconds": seconds}
        )
        knn_rows.append([preset, n_train, n_test, dim, 1000 * seconds])
    print(f"\nk-NN classification (k = 20, random unit features) on {device}")
    print_table(["preset", "bank", "test", "dim", "ms"], knn_rows)

    evaluation = None
    if "cpu-demo" in args.presets:
        evaluation = cpu_demo_evaluation(device)
        print(f"\ncpu-demo k-NN evaluation as the engine runs it on {device}")
        print_table(
            ["bank", "test", "prepare images s", "features + k-NN s", "threads"],
            [
                [
                    evaluation["bank"],
                    evaluation["test"],
                    evaluation["prepare_s"],
                    evaluation["evaluate_s"],
                    evaluation["threads"],
                ]
            ],
        )

    path = write_results(
        args.name,
        {
            "machine": machine_info(device),
            "figures_are": f"{'GPU' if device == 'cuda' else 'CPU'} figures ({device})",
            "gpu_peak_flops_bf16": peak,
            "training": train_results,
            "knn": knn_results,
            "cpu_demo_evaluation": evaluation,
        },
        args.out,
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
