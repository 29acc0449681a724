"""How fast the command line answers ``--help`` and a usage error (target: under 0.5 s).

Run from the repository root::

    .venv/bin/python bench/bench_cli_help.py              # 3 repeats of each command
    .venv/bin/python bench/bench_cli_help.py --busy 2     # the same with 2 busy processes

Each command is a fresh ``python -m dinodiag ...`` process, timed from start to exit. The
baseline in the same run is ``python -c pass`` (the interpreter's own start), so the figure
that matters, dinodiag's share, is not hidden by a slow machine. Writes
``bench/results/bench_cli_help.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time

from _common import machine_info, print_table, write_results

COMMANDS = {
    "python -c pass (baseline)": ["-c", "pass"],
    "dinodiag --help": ["-m", "dinodiag", "--help"],
    "dinodiag train --help": ["-m", "dinodiag", "train", "--help"],
    "dinodiag check --help": ["-m", "dinodiag", "check", "--help"],
    "dinodiag chek (usage error)": ["-m", "dinodiag", "chek"],
}


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *argv], capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=0, help="busy processes during the timing")
    args = parser.parse_args()
    busy = [
        multiprocessing.Process(target=_spin, args=(time.time() + 600,)) for _ in range(args.busy)
    ]
    for p in busy:
        p.start()
    try:
        times = {name: [] for name in COMMANDS}
        for _ in range(args.repeats):  # interleaved: a load change hits every command alike
            for name, argv in COMMANDS.items():
                times[name].append(timed(argv))
    finally:
        for p in busy:
            p.terminate()
    rows, results = [], {}
    for name, values in times.items():
        median = statistics.median(values)
        results[name] = {"median_s": median, "min_s": min(values), "max_s": max(values)}
        rows.append([name, f"{median:.2f}", f"{min(values):.2f}-{max(values):.2f}"])
    print_table(["command", "median s", "spread s"], rows)
    payload = {"machine": machine_info(), "busy_processes": args.busy, "results": results}
    name = "bench_cli_help" if not args.busy else "bench_cli_help_busy"
    print(write_results(name, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
