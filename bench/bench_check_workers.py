"""``check`` on your own pipeline against the raw pipeline, quiet and with the cores busy.

Run from the repository root::

    .venv/bin/python bench/bench_check_workers.py                 # 256 samples, 3 repeats
    .venv/bin/python bench/bench_check_workers.py --samples 64 --repeats 1      # a quick look

Goals (issue 21): per sample, ``check`` costs at most 1.2x the raw pipeline on one thread
under the same load; on 2 quiet cores, 2 workers are at least 1.7x faster than 1.

Every measurement is a fresh process (its imports, torchvision's included, are not timed):
the clock starts before the pipeline is loaded and the dataset opened, and stops when the last
sample is done, so the per-sample figure carries the set-up (for ``check``: the workers' start,
the report) spread over the samples.

- ``raw``: the user's transform itself (``examples/dino_pipelines.py:published_dinov2``) on
  one torch thread, on the images ``check`` draws (same dataset, same seeded order), with the
  image loads; nothing recorded, nothing checked.
- ``check``: ``python -m dinodiag check --pipeline ... --data sample --samples N`` as a user
  runs it (default ``--workers``: one per available core), stdout discarded.
- ``check --workers 1`` and ``--workers 2``: the same on 1 and 2 workers.

Conditions: ``quiet`` (nothing started by the benchmark; other jobs on the machine are not
ours to stop: the load average is written next to each figure) and ``busy`` (two processes
spinning in Python for the whole condition). Rounds interleave the candidates, so a change in
the machine's load hits each alike; ratios are taken within a round, then the median and the
spread (min-max) over the rounds. Writes ``bench/results/bench_check_workers.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import machine_info, print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
SPEC = "examples/dino_pipelines.py:published_dinov2"

# The raw pipeline: the user's transform on one thread over check's images, timed from the
# pipeline's load (so that both sides carry their set-up) to the last sample.
RAW = """
import json, sys, time
import torch, torchvision
from dinodiag.data import inspection_split, open_dataset
from dinodiag.probe.pipeline import load_pipeline_spec
from dinodiag.stats import sample_tasks
spec, samples = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
start = time.perf_counter()
transform = load_pipeline_spec(spec).transform
dataset = open_dataset("sample", split=inspection_split("sample"))
for task in sample_tasks(dataset, samples, 0):
    image, _ = dataset[task.image_index]
    torch.manual_seed(task.seed)
    transform(image)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# check as the CLI runs it, timed inside the process from main() to its return; the modules
# it imports on first use are imported before the clock starts, as the raw side's are.
CHECK = """
import contextlib, io, json, sys, time
import torchvision
import dinodiag.augment.presets, dinodiag.checks.runner, dinodiag.data, dinodiag.probe.pipeline
from dinodiag.cli import main
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"seconds": time.perf_counter() - start, "exit": code}))
"""


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def run_child(script: str, argv: list[str]) -> float:
    """Seconds the child measured itself; the child gets no OMP_NUM_THREADS (a user's shell)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise RuntimeError(f"{argv} failed ({done.returncode}):\n{done.stderr[-2000:]}") from None
    if result.get("exit", 0) not in (0, 1):
        raise RuntimeError(f"check {argv} exited {result['exit']}:\n{done.stderr[-2000:]}")
    return float(result["seconds"])


def candidates(samples: int) -> dict[str, tuple[str, list[str]]]:
    check = ["check", "--pipeline", SPEC, "--data", "sample", "--samples", str(samples)]
    return {
        "raw (1 thread)": (RAW, [SPEC, str(samples)]),
        "check": (CHECK, check),
        "check --workers 1": (CHECK, [*check, "--workers", "1"]),
        "check --workers 2": (CHECK, [*check, "--workers", "2"]),
    }


def measure(samples: int, repeats: int, busy: int) -> dict[str, Any]:
    """Per-sample seconds of every candidate, ``repeats`` interleaved rounds."""
    spinners = [
        multiprocessing.Process(target=_spin, args=(time.time() + 3600,)) for _ in range(busy)
    ]
    for process in spinners:
        process.start()
    runs = candidates(samples)
    per_sample: dict[str, list[float]] = {name: [] for name in runs}
    loads: list[float] = []
    try:
        for round_index in range(repeats):
            order = list(runs)
            order = order[round_index % len(order) :] + order[: round_index % len(order)]
            for name in order:
                loads.append(os.getloadavg()[0])
                script, argv = runs[name]
                per_sample[name].append(run_child(script, argv) / samples)
                print(f"  {name}: {per_sample[name][-1] * 1e3:.1f} ms a sample", flush=True)
    finally:
        for process in spinners:
            process.terminate()
    return {"per_sample_s": per_sample, "load_average_1min": loads, "busy_processes": busy}


def ratios(result: dict[str, Any], name: str, baseline: str) -> list[float]:
    values = result["per_sample_s"]
    return [a / b for a, b in zip(values[name], values[baseline], strict=True)]


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=256, help="samples per run (256)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--busy", type=int, default=2, help="busy processes when busy (2)")
    args = parser.parse_args()

    conditions: dict[str, Any] = {}
    for condition, busy in (("quiet", 0), ("busy", args.busy)):
        print(f"{condition} ({busy} busy processes):", flush=True)
        conditions[condition] = measure(args.samples, args.repeats, busy)
    rows, figures = [], {}
    for condition, result in conditions.items():
        for name, values in result["per_sample_s"].items():
            stats = summary([v * 1e3 for v in values])
            rows.append(
                [condition, name, stats["median"], f"{stats['min']:.1f}-{stats['max']:.1f}"]
            )
        figures[condition] = {
            "check / raw": summary(ratios(result, "check", "raw (1 thread)")),
            "check --workers 1 / raw": summary(
                ratios(result, "check --workers 1", "raw (1 thread)")
            ),
            "speed-up of 2 workers over 1": summary(
                ratios(result, "check --workers 1", "check --workers 2")
            ),
            "load_average_1min": summary(result["load_average_1min"]),
        }
    print_table(["condition", "candidate", "ms a sample (median)", "spread"], rows)
    for condition, figure in figures.items():
        for name, stats in figure.items():
            print(
                f"{condition}: {name} {stats['median']:.2f} ({stats['min']:.2f}-{stats['max']:.2f})"
            )
    payload = {
        "machine": machine_info(),
        "spec": SPEC,
        "samples": args.samples,
        "repeats": args.repeats,
        "conditions": conditions,
        "figures": figures,
    }
    print(write_results("bench_check_workers", payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
