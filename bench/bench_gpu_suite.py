"""Everything a GPU session measures, in one command: the GPU smoke test, then every GPU benchmark.

    python bench/bench_gpu_suite.py                   # on a CUDA machine, <= 8.5 min
    python bench/bench_gpu_suite.py --out $OUT        # results where the caller collects them
    python bench/bench_gpu_suite.py --quick           # a CPU smoke of every script (CPU figures)

Parts, in order, each in its own process (its output tail is kept in the summary):

1. ``smoke``: ``pytest tests/test_gpu_smoke.py`` (a tiny run per preset on the GPU: views made
   on the device, bf16, torch.compile; and the CPU twin);
2. ``loader``: ``bench/bench_gpu_loader.py``: on-device views vs the CPU loader with 0 / 4 / 16
   workers, kornia and DALI (where they import), on the same JPEGs;
3. ``train``: ``bench/bench_train.py`` for ``gpu`` and ``small-images``, without and with
   torch.compile: images/s, MFU against the GPU's bf16 peak, peak memory, data vs step time;
4. ``long_run``: ``bench/bench_gpu_long_run.py``: ``small-images`` on CIFAR-10-sized data for
   ``--long-minutes`` (10), shortened to what is left of ``--minutes`` (8.5) after parts 1-3:
   the summary says how long it ran. The full 10-minute run is its own command:
   ``python bench/bench_gpu_long_run.py --minutes 9 --out DIR`` (a command may take 10 min).

Each part stops at its own time limit (smoke 4 min, loader 2 min, train 4 min), recorded as
``"exit_code": "timeout"`` with the output it had, so the summary always comes back; rerun one
part with ``--only NAME``. Results: ``<out>/gpu_suite.json`` (the device, every part's
command, exit code, seconds and output tail) and each benchmark's JSON beside it (``--out``,
default ``bench/results``; ``$OUT`` when set). Without CUDA the suite refuses to run (its
figures are GPU figures) unless ``--quick`` is given: then every part runs briefly on the CPU
and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _common import RESULTS_DIR, machine_info  # noqa: E402

TAIL = 4000  # characters of each part's output kept in the summary


def parts(out: Path, quick: bool, long_minutes: float) -> list[tuple[str, list[str], float]]:
    """(name, command, time limit in s) of every part; the long run's minutes are set later."""
    python = sys.executable
    if quick:
        return [
            (
                "smoke",
                [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_gpu_smoke.py"],
                300,
            ),
            ("loader", [python, "bench/bench_gpu_loader.py", "--quick", "--out", str(out)], 300),
            (
                "train",
                [
                    python,
                    "bench/bench_train.py",
                    "--presets",
                    "small-images",
                    "--name",
                    "bench_gpu_train",
                    "--out",
                    str(out),
                ],
                600,
            ),
            (
                "long_run",
                [python, "bench/bench_gpu_long_run.py", "--quick", "--out", str(out)],
                300,
            ),
        ]
    return [
        (
            "smoke",
            [
                python,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-x",
                "tests/test_gpu_smoke.py",
            ],
            240,
        ),
        (
            "loader",
            [python, "bench/bench_gpu_loader.py", "--seconds", "1.5", "--out", str(out)],
            120,
        ),
        (
            "train",
            [
                python,
                "bench/bench_train.py",
                "--presets",
                "gpu",
                "small-images",
                "--compile",
                "both",
                "--name",
                "bench_gpu_train",
                "--out",
                str(out),
            ],
            240,
        ),
        (
            "long_run",
            [
                python,
                "bench/bench_gpu_long_run.py",
                "--minutes",
                str(long_minutes),
                "--out",
                str(out),
            ],
            60 * long_minutes + 90,
        ),
    ]


def run_part(command: list[str], limit: float) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env["PYTHONUNBUFFERED"] = "1"
    start = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit, check=False
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = "timeout"
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        output += f"\n[stopped after the part's limit of {limit:.0f} s]"
    return {
        "command": " ".join(command),
        "exit_code": code,
        "seconds": round(time.monotonic() - start, 1),
        "output_tail": output[-TAIL:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=os.environ.get("OUT") or str(RESULTS_DIR))
    parser.add_argument("--minutes", type=float, default=8.5, help="the whole suite's budget")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="the long run, at most")
    parser.add_argument("--only", nargs="+", default=None, help="run only these parts")
    parser.add_argument("--quick", action="store_true", help="a CPU smoke of every script")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda and not args.quick:
        print(
            "error: no CUDA device here: the suite measures GPU figures. Run it on a GPU "
            "machine, or with --quick for a short CPU smoke of every script (CPU figures).",
            file=sys.stderr,
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60 * args.minutes
    summary: dict[str, Any] = {
        "benchmark": "gpu_suite",
        "command": "python bench/bench_gpu_suite.py " + " ".join(sys.argv[1:]),
        "machine": machine_info("cuda" if cuda else "cpu"),
        "figures_are": "GPU figures" if cuda else "CPU figures (--quick): not GPU results",
        "parts": {},
    }
    failed = False
    for name, command, limit in parts(out, args.quick, args.long_minutes):
        if args.only and name not in args.only:
            continue
        left = deadline - time.monotonic()
        if name == "long_run" and not args.quick:
            minutes = max(1.0, min(args.long_minutes, (left - 60) / 60))
            _, command, limit = parts(out, False, round(minutes, 2))[-1]
            summary["long_run_minutes"] = round(minutes, 2)
        print(f"[suite] {name}: {' '.join(command)}", flush=True)
        result = run_part(command, limit)
        summary["parts"][name] = result
        failed = failed or result["exit_code"] != 0
        print(f"[suite] {name}: exit {result['exit_code']} in {result['seconds']} s", flush=True)
        print(result["output_tail"][-1500:], flush=True)
        (out / "gpu_suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[suite] wrote {out / 'gpu_suite.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
