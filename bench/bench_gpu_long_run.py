"""A short real run: the ``small-images`` preset on CIFAR-10-sized data for N minutes on the GPU.

    python bench/bench_gpu_long_run.py --minutes 10                 # generated, CIFAR-10-sized
    python bench/bench_gpu_long_run.py --minutes 10 --data cifar10:~/data
    python bench/bench_gpu_long_run.py --quick                      # 40 s, a smaller model

The run goes through the engine as ``python -m dinodiag train`` runs it: ``max_seconds`` with
the schedules fitted to the time (``fit_to_time``), the views made on the training device
(``--augment-device`` auto: the GPU), k-NN every ``--eval-every`` steps. The data defaults to
generated images the size of CIFAR-10 (50,000 train / 10,000 val, 32 px, 10 classes). Results:
the k-NN curve (step, seconds, top-1 / top-5), images/s, and where a step's time goes (median
``data_time``: waiting for the loader, ``augment_time``: making the views on the device,
``iter_time``: the whole step), peak memory, how the run ended.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_results  # noqa: E402

from dinodiag.recipe.presets import get_train_preset  # noqa: E402
from dinodiag.rundir import read_metrics  # noqa: E402
from dinodiag.train import engine  # noqa: E402

CIFAR_SIZED = "generated:n=50000,val_n=10000,size=32,classes=10"


def median_of(rows: Any, key: str) -> float | None:
    if key not in rows or not rows[key].notna().any():
        return None
    values = rows[key].dropna().tolist()
    return statistics.median(values[1:] or values)  # the first row holds the warm-up


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--data", default=CIFAR_SIZED, help="dataset spec (cifar10:ROOT ...)")
    parser.add_argument("--eval-every", type=int, default=500, help="k-NN every N steps")
    parser.add_argument("--decode-cache-gb", type=float, default=0.0)
    parser.add_argument("--run-dir", default=None, help="keep the run here (default: temporary)")
    parser.add_argument("--out", default=None, help="results folder (default bench/results)")
    parser.add_argument("--quick", action="store_true", help="40 s, cpu-demo's small model")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    preset = "small-images"
    overrides: dict[str, Any] = {
        "data.data": args.data,
        "data.decode_cache_gb": args.decode_cache_gb,
        "run.max_seconds": args.minutes * 60,
        "run.fit_to_time": True,
        "run.eval_every": args.eval_every,
        "run.checkpoint_every": 0,
        "run.checkpoint_seconds": 120,
        "run.max_steps": None,
    }
    if args.quick:  # a CPU smoke of the script: cpu-demo's model on the same kind of data
        preset = "cpu-demo"
        overrides.update(
            {
                "data.data": "generated:n=512,val_n=128,size=32,classes=10",
                "data.batch_size": 32,
                "data.knn_train_max": 512,
                "data.knn_test_max": 128,
                "run.max_seconds": 40.0,
                "run.eval_every": 10,
                "run.log_every": 5,
            }
        )
    config = get_train_preset(preset).config.with_overrides(overrides)
    with tempfile.TemporaryDirectory(prefix="dinodiag-long-run-") as tmp:
        run_dir = Path(args.run_dir or Path(tmp) / "run")
        start = time.perf_counter()
        result = engine.run_training(config, run_dir, progress=lambda line: print(line, flush=True))
        seconds = time.perf_counter() - start
        metrics = read_metrics(run_dir)
    train = metrics[metrics["kind"] == "train"]
    evals = metrics[metrics["kind"] == "eval"]
    curve = [
        {
            "step": int(row["step"]),
            "seconds": float(row["time"]),
            "knn_top1": float(row["knn_top1"]),
            "knn_top5": float(row["knn_top5"]),
        }
        for _, row in evals.iterrows()
    ]
    timing = {key: median_of(train, key) for key in ("data_time", "augment_time", "iter_time")}
    results = {
        "machine": machine_info("cuda" if cuda else "cpu"),
        "figures_are": f"{'GPU' if cuda else 'CPU'} figures",
        "preset": preset,
        "data": config.data.data,
        "minutes": config.run.max_seconds / 60,
        "state": result.state,
        "message": result.message,
        "steps": result.step,
        "wall_seconds": seconds,
        "batch_size": config.data.batch_size,
        "img_per_s_median": median_of(train, "img_per_s"),
        "median_seconds_per_step": timing,
        "data_wait_fraction": (timing["data_time"] or 0.0) / timing["iter_time"]
        if timing["iter_time"]
        else None,
        "peak_mem_mb": float(train["peak_mem_mb"].max()) if len(train) else None,
        "final_loss": float(train["loss"].iloc[-1]) if len(train) else None,
        "knn_curve": curve,
    }
    print(f"\n{preset} for {results['minutes']:.1f} min: {result.state} ({result.message})")
    print_table(["step", "seconds", "k-NN top-1", "top-5"], [list(c.values()) for c in curve])
    shown = {k: "-" if v is None else f"{1000 * v:.1f} ms" for k, v in timing.items()}
    print(
        f"{results['img_per_s_median'] or 0:.0f} img/s; per step: data wait "
        f"{shown['data_time']}, views on the device {shown['augment_time']} (- = made by CPU "
        f"workers), whole step {shown['iter_time']}"
    )
    print(f"wrote {write_results('bench_gpu_long_run', results, args.out)}")
    if result.state == "failed":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
