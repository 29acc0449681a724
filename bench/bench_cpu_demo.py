"""How much cpu-demo learns in its time budget: k-NN points gained over three runs.

    python bench/bench_cpu_demo.py                  # 3 runs of the cpu-demo preset (~16 min)
    python bench/bench_cpu_demo.py --runs 1 -- --max-seconds 120   # flags for `train`

Each run is ``python -m dinodiag train --preset cpu-demo --run-dir DIR`` in a fresh process,
one after the other (they would share the cores). Per run it reads the run directory back:
the k-NN top-1 at step 0 (random weights) and at the end, the gain in points, the steps done;
and it times the console: **set-up** is the wall time from starting the process to the line
of the first training step (imports, data, networks, the step-0 k-NN, the loader workers),
**wall** the whole process. The summary gives the median and the spread (min - max) of the
gain over the runs, with the load average before and after: the machine may be shared, and
a 2-core CPU with a load of 4 does about half the steps of a quiet one.

The result lands in ``bench/results/cpu_demo.json`` (``--name`` to write elsewhere).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, print_table, write_results  # noqa: E402

from dinodiag.rundir import read_metrics, read_status  # noqa: E402

FIRST_STEP = re.compile(r"\] step 1/")  # the progress line of step 1 ("[cpu-demo] step 1/...")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def one_run(run_dir: Path, preset: str, extra: list[str]) -> dict[str, Any]:
    """Train once in a child process; the timings and the k-NN numbers of its run directory."""
    command = [sys.executable, "-m", "dinodiag", "train", "--preset", preset]
    command += ["--run-dir", str(run_dir), *extra]
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    setup = None
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if setup is None and FIRST_STEP.search(line):
                setup = time.monotonic() - start
        code = process.wait()
    wall = time.monotonic() - start
    evals = read_metrics(run_dir, "eval")
    train = read_metrics(run_dir, "train")
    status = read_status(run_dir)
    knn = evals["knn_top1"].tolist() if "knn_top1" in evals else []
    return {
        "exit_code": code,
        "state": status.get("state"),
        "message": status.get("message"),
        "steps": int(status.get("step") or 0),
        "knn_start": knn[0] if knn else None,
        "knn_end": knn[-1] if knn else None,
        "knn_best": max(knn) if knn else None,
        "gain": knn[-1] - knn[0] if len(knn) >= 2 else None,
        "evaluations": len(knn),
        "eval_seconds": (
            float(evals["eval_seconds"].mean()) if "eval_seconds" in evals and len(evals) else None
        ),
        "first_train_row_time": float(train["time"].iloc[0]) if len(train) else None,
        "setup_s": round(setup, 2) if setup is not None else None,
        "wall_s": round(wall, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "curve": [
            {"step": int(s), "time": float(t), "knn_top1": float(k)}
            for s, t, k in zip(evals.get("step", []), evals.get("time", []), knn, strict=False)
        ],
    }


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs, one after the other (3)")
    parser.add_argument("--preset", default="cpu-demo")
    parser.add_argument("--name", default="cpu_demo", help="results file bench/results/NAME.json")
    parser.add_argument("--note", default="", help="a note stored with the results")
    parser.add_argument("train_args", nargs="*", help="more flags for `train`, after --")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cpu-demo-") as tmp:
        for index in range(args.runs):
            result = one_run(Path(tmp) / f"run{index}", args.preset, args.train_args)
            results.append(result)
            print(
                f"run {index + 1}/{args.runs}: {result['knn_start']} -> {result['knn_end']} "
                f"({result['gain']} points) in {result['steps']} steps, set-up "
                f"{result['setup_s']} s, wall {result['wall_s']} s, load "
                f"{result['load_before']} -> {result['load_after']}",
                flush=True,
            )
    gains = [r["gain"] for r in results if r["gain"] is not None]
    summary = {
        "gain_points": spread(gains),
        "knn_end": spread([r["knn_end"] for r in results if r["knn_end"] is not None]),
        "steps": spread([float(r["steps"]) for r in results]),
        "setup_s": spread([r["setup_s"] for r in results if r["setup_s"] is not None]),
        "wall_s": spread([r["wall_s"] for r in results]),
        "load_average": spread([r["load_before"] for r in results] + [results[-1]["load_after"]]),
    }
    print_table(
        ["run", "k-NN start", "k-NN end", "gain", "steps", "set-up s", "wall s", "load"],
        [
            [
                i + 1,
                r["knn_start"],
                r["knn_end"],
                r["gain"],
                r["steps"],
                r["setup_s"],
                r["wall_s"],
                f"{r['load_before']:.1f}-{r['load_after']:.1f}",
            ]
            for i, r in enumerate(results)
        ],
    )
    print(f"gain: {summary['gain_points']}  set-up: {summary['setup_s']}")
    command = f"python bench/bench_cpu_demo.py --runs {args.runs}"
    if args.train_args:
        command += " -- " + " ".join(args.train_args)
    path = write_results(
        args.name,
        {
            "command": command,
            "train_command": f"python -m dinodiag train --preset {args.preset} --run-dir DIR "
            + " ".join(args.train_args),
            "commit": git_commit(),
            "note": args.note,
            "machine": machine_info("cpu"),
            "summary": summary,
            "runs": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
