"""Colocated vs disaggregated (PD分离) serving of Llama-2-13B on 8 A100s over a rate sweep.

Experiment (a) of ``docs/experiments_serving.md``: runs ``workloads/serving_13b_colocated_vs_pd.yaml``
for both deployment modes at several Poisson arrival rates, under two SLOs:

* ``tight-TPOT``: TTFT <= 1 s and TPOT <= 25 ms (the file's SLO);
* ``tight-TTFT``: TTFT <= 250 ms and TPOT <= 100 ms.

Prints one markdown table per SLO (SLO attainment, goodput, TTFT p90, TPOT p90 per mode and rate)
and which mode wins at each rate; writes ``rate_sweep.csv`` to the output directory (the only
argument, default ``runs/serving_rate_sweep``). About 5 s.

    .venv/bin/python examples/serving_rate_sweep.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

import cluster_sim as cs

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = REPO / "workloads" / "serving_13b_colocated_vs_pd.yaml"
RATES = (2, 4, 8, 12, 16)
MODES = ("colocated", "disaggregated")
SLOS = {"tight-TPOT": {"ttft": "1s", "tpot": "25ms"}, "tight-TTFT": {"ttft": "250ms", "tpot": "100ms"}}
SVC = "inference.services.0"


def sweep(rates: tuple[float, ...] = RATES, slos: dict[str, dict[str, str]] | None = None,
          max_requests: int | None = None) -> pd.DataFrame:
    """One row per (SLO, mode, rate) with the headline serving metrics.

    Parameters
    ----------
    rates : tuple of float
        Poisson arrival rates, requests per second.
    slos : dict, optional
        SLO name -> ``{ttft, tpot}`` strings; default :data:`SLOS`.
    max_requests : int, optional
        Override the experiment's request count (tests use fewer).
    """
    rows = []
    for slo_name, slo in (slos or SLOS).items():
        for rate in rates:
            for mode in MODES:
                overrides = {f"{SVC}.deployment.mode": mode, f"{SVC}.arrivals.rate": rate,
                             f"{SVC}.slo.ttft": slo["ttft"], f"{SVC}.slo.tpot": slo["tpot"]}
                if max_requests is not None:
                    overrides[f"{SVC}.arrivals.max_requests"] = max_requests
                s = cs.simulate(cs.load_config(EXPERIMENT, overrides=overrides)).summary
                rows.append({
                    "slo": slo_name, "rate_rps": rate, "mode": mode,
                    "attainment": s["inference.slo_attainment"], "goodput_rps": s["inference.goodput_rps"],
                    "ttft_p90_s": s["inference.ttft_s.p90"], "tpot_p90_s": s["inference.tpot_s.p90"],
                    "tokens_per_s_per_card": s["inference.tokens_per_s_per_card"],
                    "rejected": s["inference.rejected"], "requests": s["inference.requests"],
                })
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, slo_name: str) -> str:
    """The sweep of one SLO as a markdown table, colocated and disaggregated side by side."""
    part = df[df["slo"] == slo_name]
    lines = ["| rate (req/s) | attainment colocated | attainment disagg. | goodput colocated (req/s) | "
             "goodput disagg. (req/s) | TTFT p90 col. / dis. (ms) | TPOT p90 col. / dis. (ms) | winner |",
             "|---|---|---|---|---|---|---|---|"]
    for rate, g in part.groupby("rate_rps", sort=True):
        c = g[g["mode"] == "colocated"].iloc[0]
        d = g[g["mode"] == "disaggregated"].iloc[0]
        gap = d["goodput_rps"] - c["goodput_rps"]
        winner = "tie" if abs(gap) < 0.02 * max(c["goodput_rps"], d["goodput_rps"], 1e-9) else (
            "disaggregated" if gap > 0 else "colocated")
        lines.append(
            f"| {rate:g} | {c['attainment']:.1%} | {d['attainment']:.1%} | {c['goodput_rps']:.2f} | "
            f"{d['goodput_rps']:.2f} | {c['ttft_p90_s'] * 1e3:.0f} / {d['ttft_p90_s'] * 1e3:.0f} | "
            f"{c['tpot_p90_s'] * 1e3:.1f} / {d['tpot_p90_s'] * 1e3:.1f} | {winner} |")
    return "\n".join(lines)


def main(out_dir: Path) -> pd.DataFrame:
    """Run the sweep, print the tables, write ``rate_sweep.csv``."""
    df = sweep()
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(out_dir / "rate_sweep.csv", index=False)
    for name, slo in SLOS.items():
        print(f"\n### SLO {name}: TTFT <= {slo['ttft']}, TPOT <= {slo['tpot']} "
              f"(Llama-2-13B, 8 x A100-80GB; colocated 8 x tp1 vs 2 prefill + 6 decode x tp1)\n")
        print(markdown(df, name))
    print(f"\nwrote {out_dir / 'rate_sweep.csv'}")
    return df


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "runs" / "serving_rate_sweep")
