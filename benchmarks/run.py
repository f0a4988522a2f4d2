"""``make bench``: run every speed benchmark and write ``benchmarks/results/*.json``.

Usage::

    python -m benchmarks.run            # all benchmarks at their default sizes (10-20 minutes)
    python -m benchmarks.run --quick    # 10k-item cases only (a minute), to check they still run

Each benchmark runs every size in a fresh subprocess (peak memory per size), prints a table and
writes JSON with the machine it ran on. Numbers go into README.md by hand, with that machine.
"""

from __future__ import annotations

import argparse
import sys

from . import cluster_year, colocation, faults_soak, serving_throughput, sweep


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; returns the worst exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smallest sizes only, results not written")
    args = ap.parse_args(argv)
    if args.quick:
        runs = [(serving_throughput.main, ["--requests", "10000", "--no-write"]),
                (cluster_year.main, ["--jobs", "10000", "--no-write"]),
                (colocation.main, ["--pool", "peak_shaving", "--duration", "1h", "--no-write"]),
                (sweep.main, ["--runs", "8", "--no-write"]),
                (faults_soak.main, ["--days", "1", "--no-write"])]
    else:
        runs = [(serving_throughput.main, []), (cluster_year.main, []), (colocation.main, []), (sweep.main, []),
                (faults_soak.main, [])]
    code = 0
    for fn, fn_args in runs:
        print(f"\n== {fn.__module__} {' '.join(fn_args)}", flush=True)
        code = max(code, fn(fn_args))
    return code


if __name__ == "__main__":
    sys.exit(main())
