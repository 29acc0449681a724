"""Peak memory of ``check`` and ``stats`` against ``--samples``: it must stay flat.

    python bench/bench_check_memory.py                          # 16 / 256 / 1024, 3 runs each
    python bench/bench_check_memory.py --samples 16,256 --runs 1 --quick
    python bench/bench_check_memory.py --label before --code /path/to/older/checkout

Each run is a fresh ``python -m dinodiag {check,stats} --preset dinov2 --data sample
--samples N`` process (the CLI exactly as a user runs it); the child reports its own peak
resident set (``getrusage(RUSAGE_SELF).ru_maxrss``) and its wall time. ``--code`` points
``PYTHONPATH`` at another checkout (the code before a change), and ``--label`` files the
results under that name in ``bench/results/bench_check_memory.json`` (other labels already
there are kept, so ``before`` and ``after`` sit side by side). Reported per command and N:
the median of the runs, their spread (max - min), and the growth per sample between the
smallest and the largest N.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine_info, print_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NAME = "bench_check_memory"
# The child runs the CLI, then prints its own peak RSS and wall time as one JSON line.
CHILD = """
import json, resource, sys, time, contextlib, io
from dinodiag.cli import main
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
seconds = time.perf_counter() - start
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"exit": code, "peak_mib": peak_mib, "seconds": seconds}))
"""


def run_once(code_root: Path, command: str, samples: int, extra: list[str]) -> dict[str, Any]:
    """One fresh CLI process: ``{"exit", "peak_mib", "seconds"}``."""
    argv = [command, "--preset", "dinov2", "--data", "sample", "--samples", str(samples), *extra]
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, *argv],
            cwd=scratch,  # no stray output files in the checkout
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", default="16,256,1024", help="comma-separated sample counts")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per (command, N)")
    parser.add_argument("--commands", default="check,stats", help="check, stats or both")
    parser.add_argument("--code", default=str(ROOT), help="checkout whose dinodiag is measured")
    parser.add_argument("--label", default="after", help="name the results are filed under")
    parser.add_argument("--quick", action="store_true", help="one run of 16 and 64 samples")
    args = parser.parse_args()
    counts = [16, 64] if args.quick else [int(s) for s in args.samples.split(",")]
    runs = 1 if args.quick else args.runs
    code_root = Path(args.code).resolve()

    measured: dict[str, dict[str, Any]] = {}
    rows = []
    for command in args.commands.split(","):
        per_n: dict[str, Any] = {}
        for n in counts:
            results = [run_once(code_root, command, n, []) for _ in range(runs)]
            peaks = [r["peak_mib"] for r in results]
            seconds = [r["seconds"] for r in results]
            per_n[str(n)] = {
                "peak_mib": peaks,
                "median_mib": statistics.median(peaks),
                "spread_mib": max(peaks) - min(peaks),
                "median_seconds": statistics.median(seconds),
                "exit": results[0]["exit"],
            }
            rows.append([command, n, statistics.median(peaks), max(peaks) - min(peaks)])
            rows[-1].append(statistics.median(seconds))
        low, high = str(min(counts)), str(max(counts))
        growth = (per_n[high]["median_mib"] - per_n[low]["median_mib"]) / (int(high) - int(low))
        measured[command] = {"by_samples": per_n, "growth_mib_per_sample": growth}
    print(f"dinodiag from {code_root} ({args.label})")
    print_table(["command", "samples", "peak MiB (median)", "spread MiB", "seconds"], rows)
    for command, result in measured.items():
        print(f"{command}: {result['growth_mib_per_sample'] * 1024:.1f} KiB more per sample")

    path = RESULTS_DIR / f"{NAME}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {}
    labels = previous.get("labels", {})
    labels[args.label] = {"code": str(code_root), "runs": runs, "results": measured}
    written = write_results(NAME, {"machine": machine_info(), "labels": labels})
    print(f"results: {written}")


if __name__ == "__main__":
    main()
