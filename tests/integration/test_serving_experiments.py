"""The four serving experiments of issue #5 (workloads/serving_*.yaml), reduced, end to end.

Each test loads the committed experiment file with ``load_config(..., overrides=...)`` to shrink
it (fewer requests, shorter horizon), runs it through :func:`cluster_sim.simulate` and asserts
the qualitative direction the full run shows in ``docs/experiments_serving.md``, plus closed-form
checks of the summary (cost = card-hours x catalog price; attainment recomputed per tier).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import cluster_sim as cs
from cluster_sim.catalog import accelerator
from cluster_sim.cli import main
from cluster_sim.errors import ConfigError
from cluster_sim.perf.inference import ReplicaPerf

SVC0 = "inference.services.0"


def _load(repo, name, **overrides):
    return cs.load_config(repo / "workloads" / name, overrides=overrides)


def _run(repo, name, **overrides):
    return cs.simulate(_load(repo, name, **overrides)).summary


def _mode_pair(repo, rate, ttft, tpot, n=600):
    """(colocated, disaggregated) summaries of experiment (a) at one rate and SLO."""
    out = []
    for mode in ("colocated", "disaggregated"):
        out.append(_run(repo, "serving_13b_colocated_vs_pd.yaml", **{
            f"{SVC0}.deployment.mode": mode, f"{SVC0}.arrivals.rate": rate,
            f"{SVC0}.arrivals.max_requests": n, f"{SVC0}.slo.ttft": ttft, f"{SVC0}.slo.tpot": tpot}))
    return out


# ---- (a) 13B dense, colocated vs disaggregated --------------------------------------------
def test_13b_disaggregation_wins_goodput_under_tight_tpot_at_moderate_rate(repo):
    col, dis = _mode_pair(repo, 8, "1s", "25ms")
    assert col["inference.requests"] == dis["inference.requests"] == 600
    # same cards, same requests (same seed): only the deployment differs
    assert col["inference.cards"] == dis["inference.cards"] == 8
    # measured 6.01 vs 5.50 req/s (1.09x; 1.12x before the A100 efficiency refit 0.64 -> 0.66,
    # which speeds colocated prefills more than it helps the decode pool)
    assert dis["inference.goodput_rps"] > 1.05 * col["inference.goodput_rps"]
    assert dis["inference.slo_attainment"] > col["inference.slo_attainment"] + 0.05
    # why: decodes never wait behind prefills, so the TPOT tail is shorter
    assert dis["inference.tpot_s.p90"] < col["inference.tpot_s.p90"]


def test_13b_colocated_wins_under_tight_ttft_at_high_rate(repo):
    col, dis = _mode_pair(repo, 12, "250ms", "100ms")
    assert col["inference.goodput_rps"] > 1.1 * dis["inference.goodput_rps"]
    # why: 8 replicas can prefill vs 2 in the disaggregated split
    assert col["inference.ttft_s.p90"] < dis["inference.ttft_s.p90"]


def test_13b_modes_tie_at_low_rate(repo):
    col, dis = _mode_pair(repo, 2, "1s", "25ms", n=300)
    assert dis["inference.goodput_rps"] == pytest.approx(col["inference.goodput_rps"], rel=0.05)


def test_13b_rejects_requests_beyond_llama2_context(repo):
    res = cs.simulate(_load(repo, "serving_13b_colocated_vs_pd.yaml", **{f"{SVC0}.arrivals.max_requests": 400}))
    req = res.requests
    rejected = req[req["status"] == "rejected"]
    assert len(rejected) == res.summary["inference.rejected"] > 0
    assert ((rejected["prompt_tokens"] + rejected["output_tokens"]) > 4096).all()
    served = req[req["status"] == "finished"]
    assert ((served["prompt_tokens"] + served["output_tokens"]) <= 4096).all()


def test_rate_sweep_example_reports_both_slos(repo):
    import importlib.util

    spec = importlib.util.spec_from_file_location("serving_rate_sweep", repo / "examples" / "serving_rate_sweep.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    df = mod.sweep(rates=(8,), max_requests=400)
    assert set(df["slo"]) == set(mod.SLOS) and len(df) == 2 * len(mod.MODES)
    table = mod.markdown(df, "tight-TPOT")
    assert table.count("\n") == 2 and "| 8 |" in table


# ---- (b) DeepSeek-V3 on a CloudMatrix384 supernode vs 8-card 910B servers -----------------
def test_deepseek_does_not_fit_one_910b_server():
    with pytest.raises(ConfigError, match="missing"):
        ReplicaPerf("deepseek-v3", "ascend-910b", tp=8, ep=1, dtype="fp8")
    # the pool shapes of the experiment fit
    for acc, tp, ep in (("ascend-910c", 1, 16), ("ascend-910c", 2, 8), ("ascend-910b", 1, 16), ("ascend-910b", 4, 8)):
        assert ReplicaPerf("deepseek-v3", acc, tp=tp, ep=ep, dtype="fp8").kv_capacity_tokens > 1_000_000


def test_deepseek_supernode_beats_910b_servers_per_card(repo, traces):
    s = _run(repo, "serving_deepseek_supernode.yaml", duration="6s")
    sn, nb = "inference.supernode", "inference.nodes910b"
    assert s[f"{sn}.cards"] == s[f"{nb}.cards"] == 64
    assert s[f"{sn}.requests"] == s[f"{nb}.requests"]  # identical request streams
    assert s[f"{sn}.tokens_per_s_per_card"] > 2.0 * s[f"{nb}.tokens_per_s_per_card"]
    assert s[f"{sn}.input_tokens_per_s"] > 2.0 * s[f"{nb}.input_tokens_per_s"]
    assert s[f"{sn}.tpot_s.p50"] < 0.050  # decode steps within the report's 50 ms class
    assert s["inference.kv_transfers"] > 0


def test_supernode_drivers_in_the_perf_model(repo):
    """The card drives the per-card gap; with hierarchical, node-deduplicated dispatch (each token
    crosses RoCE once per target server, issue #15 item 2) the 910B servers' expert all-to-all is
    no longer the bulk of prefill (it was 43% under the old (p - 1)-round pairwise model)."""
    topo = cs.load_topology(_load(repo, "serving_deepseek_supernode.yaml").cluster.topology)
    cards = topo.cards_by_type()
    per_card = {}
    for acc in ("ascend-910c", "ascend-910b"):
        c = cards[acc]
        r = ReplicaPerf("deepseek-v3", acc, tp=1, ep=16, dtype="fp8", ep_comm_levels=topo.comm_levels(c[:16]))
        n = 16384
        bd = r.prefill_breakdown(n)
        per_card[acc] = (n / bd.total / r.cards, bd["ep_comm"] / bd.total)
    assert per_card["ascend-910c"][0] > 2.0 * per_card["ascend-910b"][0]  # 2.35x the BF16 FLOP/s
    assert per_card["ascend-910b"][1] < 0.3 and per_card["ascend-910c"][1] < 0.3


# ---- (c) heterogeneous prefill/decode, cost per million tokens ----------------------------
def test_hetero_cost_per_million_tokens(repo, traces):
    n = {f"inference.services.{i}.arrivals.max_requests": 600 for i in range(3)}
    s = _run(repo, "serving_hetero_prefill_decode.yaml", **n)
    end_h = s["sim.end_s"] / 3600
    pools = {"h100_colocated": [(20, "h100-sxm")], "h100_h20": [(12, "h100-sxm"), (12, "h20")],
             "ascend_h20": [(18, "ascend-910c"), (12, "h20")]}
    for name, parts in pools.items():
        k = f"inference.{name}"
        assert s[f"{k}.requests"] == 600 and s[f"{k}.slo_attainment"] >= 0.95
        # closed form: every card is held for the whole run at its catalog price
        cost = sum(cards * accelerator(card).price_usd_per_hour for cards, card in parts) * end_h
        assert s[f"{k}.cost_usd"] == pytest.approx(cost, rel=1e-9)
        assert s[f"{k}.cost_per_mtok_usd"] == pytest.approx(cost / (s[f"{k}.tokens_per_s"] * s["sim.end_s"] / 1e6))
    # same requests, same tokens: cost ranks like price x cards
    assert s["inference.ascend_h20.cost_per_mtok_usd"] > 2 * s["inference.h100_h20.cost_per_mtok_usd"]
    # Splitwise: decode on the low-power H20 costs less energy per token than H100 colocated
    assert s["inference.h100_h20.energy_j_per_token"] < s["inference.h100_colocated.energy_j_per_token"]


# ---- (d) latency tiers ----------------------------------------------------------------------
TIERS = {"chat": ("tpot_s", 0.050), "voice": ("ttft_s", 0.100), "image": ("e2e_s", 0.200)}


def _tiers(repo, load=1.0):
    ov = {}
    for i, rate in enumerate((8, 20, 30)):  # chat, voice, image: the file's rates
        ov[f"inference.services.{i}.arrivals.rate"] = rate * load
        ov[f"inference.services.{i}.arrivals.max_requests"] = int(rate * 60)
    return cs.simulate(_load(repo, "serving_latency_tiers.yaml", **ov))


def test_latency_tiers_attainment_per_service(repo):
    res = _tiers(repo)
    s, req = res.summary, res.requests
    for name, (metric, limit) in TIERS.items():
        part = req[req["service"] == name]
        ok = (part["status"] == "finished") & (part[metric].fillna(0.0) <= limit)
        assert s[f"inference.{name}.slo_attainment"] == pytest.approx(ok.mean())
        assert s[f"inference.{name}.slo_attainment"] > 0.9
    # the interpretation matters: chat's 50 ms as an end-to-end bound is unreachable
    chat = req[(req["service"] == "chat") & (req["status"] == "finished")]
    assert (chat["e2e_s"] <= 0.050).mean() < 0.05


def test_latency_tiers_image_degrades_first_under_double_load(repo):
    low, high = _tiers(repo, 1.0).summary, _tiers(repo, 2.0).summary
    drop = {n: low[f"inference.{n}.slo_attainment"] - high[f"inference.{n}.slo_attainment"] for n in TIERS}
    assert drop["image"] > 0.05
    assert drop["image"] > max(drop["chat"], drop["voice"])


def test_cli_runs_tiers_json(repo, capsys):
    path = str(repo / "workloads" / "serving_latency_tiers.yaml")
    sets = []
    for i in range(3):
        sets += ["--set", f"inference.services.{i}.arrivals.max_requests=200"]
    assert main(["run", path, "--json", *sets]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {f"inference.{n}.slo_attainment" for n in TIERS} <= set(data)
    assert np.isfinite(data["inference.slo_attainment"])
