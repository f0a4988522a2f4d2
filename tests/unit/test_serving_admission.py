"""Serving admission: rejections counted by reason (summary keys and one note per service),
``overlong: truncate``, rejected requests as SLO misses, and no silent fallbacks (catalog price,
NIC bandwidth, unbalanced TP groups)."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from cluster_sim.catalog import accelerator
from cluster_sim.config.load import load_config
from cluster_sim.engine.serving import admission as serving_admission
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.build import services_from_config
from cluster_sim.metrics.serving import summarize
from cluster_sim.perf.inference import ReplicaPerf
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.topology import load_topology
from cluster_sim.topology.levels import CommLevel
from cluster_sim.workload.requests import RequestTable

PERF = LinearServingPerf(prefill_s=2.0**-4, decode_s=2.0**-5, kv_capacity_tokens=1000)
CTX = 100
# Mooncake-like: long multi-turn prompts sharing 16-token prefix blocks, against a 100-token context
PROMPT = [40, 95, 150, 60, 200]
OUTPUT = [10, 10, 5, 20, 50]
BLOCKS = [[1, 2, 3], [1, 2, 3, 4, 5, 6], [1, 2, 9], [1, 2, 7, 8], [11, 12]]


def chat(overlong="reject", name="chat", prompt=PROMPT, output=OUTPUT, blocks=BLOCKS, card="h100-sxm", **kw):
    offsets = np.cumsum([0] + [len(b) for b in blocks])
    reqs = RequestTable(np.arange(len(prompt), dtype=np.float64) * 10.0, np.asarray(prompt, np.int32),
                        np.asarray(output, np.int32), block_hashes=np.concatenate(blocks).astype(np.int64),
                        block_offsets=offsets.astype(np.int64), block_tokens=16)
    return ServiceSpec(name, reqs, (PoolSpec("colocated", 1, PERF, card),), max_context=CTX, model="toy",
                       overlong=overlong, slo_ttft_s=10.0, **kw)


def test_rejections_are_counted_by_reason_and_noted_once():
    run = ServingEngine([chat()]).run()
    s = summarize(run)
    assert run.requests.reason.tolist() == ["", "request_exceeds_context", "prompt_exceeds_context", "",
                                            "prompt_exceeds_context"]
    assert s["inference.rejected"] == 3 and s["inference.finished"] == 2
    assert s["inference.rejected.prompt_exceeds_context"] == 2
    assert s["inference.rejected.request_exceeds_context"] == 1
    for r in ("empty_request", "prompt_exceeds_kv", "request_exceeds_kv", "output_exceeds_context"):
        assert s[f"inference.rejected.{r}"] == 0
    assert s["inference.chat.rejected.prompt_exceeds_context"] == 2 and s["inference.truncated"] == 0
    assert run.notes == (
        "service 'chat': 3 of 5 requests (60.0%) rejected: 2 with a prompt longer than toy's 100-token "
        "context, 1 with prompt+output longer than toy's 100-token context; set overlong: truncate on the "
        "service to cut such prompts to fit instead",)


def test_rejected_requests_count_as_slo_misses():
    s = summarize(ServingEngine([chat()]).run())
    # both finished requests meet the 10 s TTFT; the 3 rejected are decided misses: 2 / 5
    assert s["inference.slo_met"] == 2 and s["inference.slo_attainment"] == 0.4
    assert s["inference.goodput_rps"] == 2 / s["sim.end_s"]


def test_truncate_keeps_every_request_and_cuts_prompts_to_the_context():
    run = ServingEngine([chat("truncate")]).run()
    df, s = run.requests, summarize(run)
    assert len(df) == 5 and (df.status == "finished").all() and s["inference.rejected"] == 0
    assert df.truncated_tokens.tolist() == [0, 5, 55, 0, 150]
    assert df.prompt_tokens.tolist() == [40, 90, 95, 60, 50]       # = CTX - output where cut
    assert (df.prompt_tokens + df.output_tokens <= CTX).all()
    assert (df.generated_tokens == df.output_tokens).all()
    assert s["inference.truncated"] == 3 and s["inference.slo_attainment"] == 1.0
    # request 3 reuses request 0's two leading blocks; truncated request 1 lost its hashes (tail kept)
    assert df.cached_tokens.tolist() == [0, 0, 0, 32, 0]
    assert run.notes == ("service 'chat': 3 of 5 requests (60.0%) had their prompt truncated to fit toy's "
                         "100-token context (210 prompt tokens dropped, the last ones kept)",)


def test_output_that_fills_the_context_is_rejected_even_when_truncating():
    for mode in ("reject", "truncate"):
        run = ServingEngine([chat(mode, prompt=[30, 300, 0], output=[100, 120, 5], blocks=[[1], [2], [3]])]).run()
        assert run.requests.reason.tolist() == ["output_exceeds_context", "output_exceeds_context",
                                                "empty_request"]
        assert run.requests.truncated_tokens.tolist() == [0, 0, 0]
        assert run.notes[-1].startswith("service 'chat': 3 of 3 requests (100.0%) rejected: 1 with no prompt or "
                                        "no output tokens, 2 with an output alone as long as toy's 100-token context")


def test_rejections_per_service_with_several_services():
    short = chat(name="voice", prompt=[10, 20], output=[5, 5], blocks=[[1], [2]])
    run = ServingEngine([chat(), short]).run()
    s = summarize(run)
    assert s["inference.rejected"] == 3 and s["inference.chat.rejected"] == 3 and s["inference.voice.rejected"] == 0
    assert s["inference.voice.rejected.prompt_exceeds_context"] == 0
    assert s["inference.chat.rejected.request_exceeds_context"] == 1
    assert len(run.notes) == 1 and run.notes[0].startswith("service 'chat': 3 of 5")


def test_kv_rejections_name_the_capacity():
    perf = LinearServingPerf(kv_capacity_tokens=64)
    reqs = RequestTable.from_arrays([0.0, 0.0, 0.0], [10, 80, 60], [5, 5, 10])
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 1, perf, "h100-sxm"),))
    run = ServingEngine([svc]).run()
    assert run.requests.reason.tolist() == ["", "prompt_exceeds_kv", "request_exceeds_kv"]
    assert run.notes == ("service 's': 2 of 3 requests (66.7%) rejected: 1 with a prompt larger than a replica's "
                         "KV cache (64 tokens), 1 with prompt+output larger than a replica's KV cache (64 tokens); "
                         "more cards per replica (tp) or cards with more memory give more KV room",)


def test_overlong_from_the_config_file(tmp_path):
    base = {"cluster": {"topology": "x.yaml"}, "duration": "1m", "inference": {"services": [{
        "name": "chat", "model": "llama3-8b", "deployment": {"replicas": 1, "card_type": "h100-sxm"},
        "arrivals": {"rate": 1.0, "prompt_tokens": 9000, "output_tokens": 10}}]}}
    (spec,) = services_from_config(load_config(base))
    assert spec.overlong == "reject" and spec.meta["where"] == "inference.services[0] chat"
    base["inference"]["services"][0]["overlong"] = "truncate"
    (spec,) = services_from_config(load_config(base))
    assert spec.overlong == "truncate" and spec.max_context == 8192
    run = ServingEngine([spec]).run()
    assert (run.requests.prompt_tokens == 8192 - 10).all() and (run.requests.truncated_tokens == 818).all()
    assert run.notes[0].startswith("inference.services[0] chat: ")
    base["inference"]["services"][0]["overlong"] = "drop"
    with pytest.raises(ConfigError, match=r"inference.services\[0\].overlong: Input should be 'reject' or "):
        load_config(base)
    with pytest.raises(ConfigError, match="overlong must be 'reject' or 'truncate'"):
        chat("drop")


# ---- no silent fallbacks ----------------------------------------------------------------------
def _two_services(card_b):
    perf = LinearServingPerf(prefill_s=1.0, decode_s=0.5, kv_capacity_tokens=10_000)
    reqs = RequestTable.from_arrays([0.0], [100], [5])
    return [ServiceSpec("a", reqs, (PoolSpec("colocated", 1, perf, "h100-sxm"),)),
            ServiceSpec("b", reqs, (PoolSpec("colocated", 1, perf, card_b),))]


def test_missing_price_is_noted_and_excluded_from_cost():
    run = ServingEngine(_two_services(""), options=ServingOptions(horizon_s=10.0)).run()
    s = summarize(run)
    price = accelerator("h100-sxm").price_usd_per_hour
    assert s["inference.cost_usd"] == pytest.approx(price * 10 / 3600)   # service a only
    b = run.replicas[run.replicas.service == "b"].iloc[0]
    assert math.isnan(b.price_usd_per_card_hour) and math.isnan(b.cost_usd)
    assert run.notes == ("service 'b' colocated pool: no card type, so no catalog price: cost excludes it",)


def test_catalog_card_without_a_price_is_noted(monkeypatch):
    free = dataclasses.replace(accelerator("h100-sxm"), price_usd_per_hour=0.0)
    monkeypatch.setattr(serving_admission, "accelerator", lambda name: free)
    run = ServingEngine(_two_services("h100-sxm")[1:], options=ServingOptions(horizon_s=10.0)).run()
    assert run.notes == ("service 'b' colocated pool: no price for card 'h100-sxm' in the catalog: cost excludes it",)
    assert summarize(run)["inference.cost_usd"] == 0.0


def test_unknown_card_type_is_an_error_not_a_free_card():
    with pytest.raises(ConfigError, match=r"service 'b' colocated pool: .*nope-9000"):
        ServingEngine(_two_services("nope-9000"))


def _pd(card, **kw):
    perf = LinearServingPerf(prefill_s=0.5, decode_s=0.25, kv_bytes_per_token=1e6, kv_capacity_tokens=100_000)
    reqs = RequestTable.from_arrays([0.0], [1000], [5])
    return ServingEngine([ServiceSpec("pd", reqs, (PoolSpec("prefill", 1, perf, card),
                                                    PoolSpec("decode", 1, perf, card)))], **kw)


def test_kv_transfer_bandwidth_comes_from_the_catalog_or_fails():
    with pytest.raises(ConfigError, match=r"service 'pd' prefill pool: no card_type, so no NIC bandwidth for KV "
                                          r"transfers; give the pool a catalog card_type or run on a topology"):
        _pd("")
    with pytest.raises(ConfigError, match=r"service 'pd' prefill pool: .*nope-9000"):
        _pd("nope-9000")
    r = _pd("h100-sxm").run().requests.iloc[0]
    assert r.kv_ready_s - r.first_token_s == pytest.approx(1000 * 1e6 / accelerator("h100-sxm").nic_bytes_per_s
                                                           + 5e-6)


def test_card_without_nic_bandwidth_fails(monkeypatch):
    nonic = dataclasses.replace(accelerator("h100-sxm"), nic_gbit_s=0.0)
    monkeypatch.setattr(serving_admission, "accelerator", lambda name: nonic)
    with pytest.raises(ConfigError, match="card 'h100-sxm' has no NIC bandwidth in the catalog"):
        _pd("h100-sxm")


TOPO = {"name": "two-hgx", "builder": "fat_tree", "system": "hgx-h100", "nodes": 2}


def test_unbalanced_tp_group_is_a_flat_ring_at_the_bottleneck_with_a_note():
    topo = load_topology(TOPO)
    perf = ReplicaPerf("llama3-8b", "h100-sxm", tp=12)
    reqs = RequestTable.from_arrays([0.0], [1000], [10])
    eng = ServingEngine([ServiceSpec("chat", reqs, (PoolSpec("colocated", 1, perf, "h100-sxm", tp=12),))],
                        topology=topo)
    su, so = topo.comm_levels(list(range(12)))          # 8 cards in node 0, 4 in node 1
    assert (su.tier, su.fanout, so.tier, so.fanout) == ("scaleup", 8, "scaleout", 2)
    flat = CommLevel("scaleout", 12, so.bandwidth_Bps, max(su.latency_s, so.latency_s), so.efficiency)
    assert eng.replicas[0].perf.comm_levels == (flat,)
    assert eng.notes == [f"service 'chat' colocated pool replica 0: its 12-card TP group spans scaleup 8 x "
                         f"scaleout 2 unevenly; modelled as one flat ring at the scaleout bottleneck "
                         f"({so.bandwidth_Bps / 1e9:g} GB/s per rank)"]
    ttft = eng.run().requests.ttft_s.iloc[0]
    assert ttft == pytest.approx(dataclasses.replace(perf, comm_levels=(flat,)).prefill_time_s(1000))


def test_broken_comm_levels_raise_instead_of_keeping_the_defaults():
    topo = load_topology(TOPO)

    class Broken:   # the real topology, but its TP groups come back as something that is no CommLevel
        def __getattr__(self, name):
            return getattr(topo, name)

        def comm_levels(self, cards):
            return (SimpleNamespace(tier="scaleup", fanout=len(cards)),)

    perf = ReplicaPerf("llama3-8b", "h100-sxm", tp=2)
    svc = ServiceSpec("chat", RequestTable.from_arrays([0.0], [10], [2]),
                      (PoolSpec("colocated", 1, perf, "h100-sxm", tp=2),))
    with pytest.raises(ValueError, match="levels\\[0\\] must be a CommLevel"):
        ServingEngine([svc], topology=Broken())


def test_rejection_note_reaches_the_result_and_the_cli_summary(capsys):
    from rich.console import Console

    from cluster_sim.cli.run import print_summary
    from cluster_sim.experiment import simulate

    res = simulate({"name": "long", "cluster": {"topology": {"name": "one", "builder": "fat_tree",
                                                             "system": "hgx-h100", "nodes": 1}},
                    "inference": {"services": [{
                        "name": "chat", "model": "llama3-8b", "deployment": {"replicas": 1, "card_type": "h100-sxm"},
                        "arrivals": {"rate": 1.0, "prompt_tokens": 9000, "output_tokens": 10, "max_requests": 3}}]}})
    line = ("inference.services[0] chat: 3 of 3 requests (100.0%) rejected: 3 with a prompt longer than "
            "llama3-8b's 8,192-token context; set overlong: truncate on the service to cut such prompts to fit "
            "instead")
    assert line in res.notes
    assert res.summary["inference.rejected.prompt_exceeds_context"] == 3
    assert res.summary["inference.slo_attainment"] == 0.0   # rejected requests are misses
    print_summary(Console(width=400, force_terminal=False), res)
    assert f"note: {line}" in capsys.readouterr().out
