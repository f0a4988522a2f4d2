"""Serving engine speed: simulated requests per wall second, events/s and peak memory.

Scenario (DESIGN 6 target: >= 25,000 requests per wall second, 1 M requests < 2 GB): 64
colocated replicas of llama3-8b on H100 (roofline :class:`~cluster_sim.perf.inference.ReplicaPerf`),
continuous batching (max 256 sequences, 8,192 prefill tokens), Poisson arrivals at
800 requests/s (replicas ~99% busy, batches of ~100), Azure-conv prompt/output lengths. Also a
PD-separated variant (32 prefill + 32 decode replicas; KV transfers as max-min fair flows).

Each size runs in a fresh subprocess so its peak RSS is its own. Wall time covers building the
engine, simulating and building the result DataFrames (request generation is excluded and
reported apart).

    python -m benchmarks.serving_throughput                 # 10k, 100k, 1M colocated + PD 10k, 100k
    python -m benchmarks.serving_throughput --requests 100000 --mode pd --single
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from benchmarks.common import machine, peak_rss_mib, table, write_json

RATE_PER_S = 800.0
REPLICAS = 64


def run_one(requests: int, mode: str, seed: int = 1) -> dict[str, Any]:
    """One measured run in this process."""
    from cluster_sim.engine.serving.engine import ServingEngine
    from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
    from cluster_sim.metrics.serving import summarize
    from cluster_sim.perf.inference import ReplicaPerf
    from cluster_sim.workload.lengths import synthetic_requests

    t0 = time.perf_counter()
    reqs = synthetic_requests(arrivals={"kind": "poisson", "rate_per_s": RATE_PER_S}, lengths="azure_conv",
                              n=requests, rng=seed)
    gen_s = time.perf_counter() - t0
    perf = ReplicaPerf("llama3-8b", "h100-sxm")
    if mode == "colocated":
        pools: tuple[PoolSpec, ...] = (PoolSpec("colocated", REPLICAS, perf, "h100-sxm"),)
    else:
        pools = (PoolSpec("prefill", REPLICAS // 2, perf, "h100-sxm"),
                 PoolSpec("decode", REPLICAS // 2, perf, "h100-sxm"))
    svc = ServiceSpec("chat", reqs, pools, slo_ttft_s=1.0, slo_tpot_s=0.1, max_context=8192)
    t1 = time.perf_counter()
    engine = ServingEngine([svc], options=ServingOptions())
    run = engine.run()
    wall = time.perf_counter() - t1
    t2 = time.perf_counter()
    summary = summarize(run)
    sum_s = time.perf_counter() - t2
    return {
        "mode": mode, "requests": requests, "replicas": REPLICAS, "rate_per_s": RATE_PER_S,
        "wall_s": wall, "requests_per_wall_s": requests / wall, "events": run.events,
        "events_per_wall_s": run.events / wall, "events_per_request": run.events / requests,
        "simulated_s": run.end_s, "peak_rss_mib": peak_rss_mib(), "generate_s": gen_s, "summarize_s": sum_s,
        "busy_fraction": summary["inference.busy_fraction_mean"],
        "batch_size_mean": summary["inference.batch_size_mean"],
        "ttft_p50_s": summary["inference.ttft_s.p50"], "tpot_p50_s": summary["inference.tpot_s.p50"],
        "finished": summary["inference.finished"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, nargs="*", default=None)
    ap.add_argument("--mode", choices=["colocated", "pd", "both"], default="both")
    ap.add_argument("--single", action="store_true", help="run in this process and print JSON")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/results JSON")
    args = ap.parse_args(argv)
    if args.single:
        print(json.dumps(run_one(args.requests[0], "colocated" if args.mode == "colocated" else "pd")))
        return 0
    plan = []
    if args.mode in ("colocated", "both"):
        plan += [("colocated", n) for n in (args.requests or [10_000, 100_000, 1_000_000])]
    if args.mode in ("pd", "both"):
        plan += [("pd", n) for n in (args.requests or [10_000, 100_000])]
    rows = []
    for mode, n in plan:
        out = subprocess.run([sys.executable, "-m", "benchmarks.serving_throughput", "--single", "--mode", mode,
                              "--requests", str(n)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  {mode} {n:,}: {rows[-1]['requests_per_wall_s']:,.0f} requests/s", file=sys.stderr)
    print(table(rows, [("mode", "mode", ""), ("requests", "requests", ","), ("wall_s", "wall s", ".1f"),
                       ("requests_per_wall_s", "req/s", ",.0f"), ("events", "events", ","),
                       ("events_per_wall_s", "events/s", ",.0f"), ("peak_rss_mib", "peak MiB", ",.0f"),
                       ("simulated_s", "sim s", ",.0f"), ("busy_fraction", "busy", ".2f"),
                       ("batch_size_mean", "batch", ".1f")]))
    if not args.no_write:
        path = write_json("serving_throughput", {"machine": machine(), "target_requests_per_wall_s": 25_000,
                                                 "results": rows})
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
