"""PD separation: KV transfer flows (time, max-min sharing, TP split, topology routes), placement,
hand-off, and the conservation invariants of disaggregated runs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.catalog import accelerator
from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.pd import KVNetwork, nic_links, place_pools
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.errors import PlacementError
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies.serving.autoscaling import LatencyDriven, QueueDriven
from cluster_sim.topology import rail_optimized
from cluster_sim.workload.requests import RequestTable

NIC = accelerator("a100-80gb").nic_bytes_per_s     # 25 GB/s per card
KVB = 1e6                                          # 1 MB of KV per prompt token
PRE = LinearServingPerf(prefill_s=0.5, kv_bytes_per_token=KVB, kv_capacity_tokens=100_000)
DEC = LinearServingPerf(decode_s=0.25, kv_bytes_per_token=KVB, kv_capacity_tokens=100_000)


def pd(arrival, prompt, output, pre=PRE, dec=DEC, n_pre=1, n_dec=1, topology=None, autoscaling=None, **opt):
    reqs = RequestTable.from_arrays(arrival, prompt, output)
    pools = (PoolSpec("prefill", n_pre, pre, "a100-80gb"), PoolSpec("decode", n_dec, dec, "a100-80gb"))
    svc = ServiceSpec("s", reqs, pools, slo_ttft_s=0.05, slo_tpot_s=0.01)
    return ServingEngine([svc], options=ServingOptions(**opt), topology=topology, autoscaling=autoscaling).run()


def test_one_request_hand_computed():
    run = pd([1.0], [1000], [5])
    r = run.requests.iloc[0]
    xfer = 1000 * KVB / NIC + 5e-6                 # egress -> ingress at the NIC line rate, + latency
    assert r.first_token_s == 1.5 and r.ttft_s == 0.5  # TTFT: the prefill replica emits token 1
    assert r.kv_ready_s == pytest.approx(1.5 + xfer)
    assert r.last_token_s == pytest.approx(1.5 + xfer + 4 * 0.25)
    assert r.replica == 0 and r.decode_replica == 1
    assert run.info["kv_transfers"] == 1 and run.info["kv_bytes_moved"] == 1000 * KVB


def test_concurrent_transfers_share_the_decode_nic_max_min_fairly():
    run = pd([0.0, 0.0], [1000, 1000], [3, 3], n_pre=2)   # two prefill cards -> one decode card
    df = run.requests
    wait = df.kv_ready_s - df.first_token_s
    assert wait.tolist() == pytest.approx([2 * 1000 * KVB / NIC + 5e-6] * 2)  # each at half the ingress
    # one transfer alone, then a later one alone: no sharing
    run = pd([0.0, 5.0], [1000, 1000], [3, 3], n_pre=2)
    wait = run.requests.kv_ready_s - run.requests.first_token_s
    assert wait.tolist() == pytest.approx([1000 * KVB / NIC + 5e-6] * 2)


def test_unequal_transfers_rates_change_when_one_ends():
    # 500 and 1500 tokens start together: both at NIC/2 until the small one is done, then NIC
    run = pd([0.0, 0.0], [500, 1500], [2, 2], n_pre=2)
    df = run.requests
    small = 2 * 500 * KVB / NIC
    large = small + (1500 - 500) * KVB / NIC
    assert (df.kv_ready_s - df.first_token_s).tolist() == pytest.approx([small + 5e-6, large + 5e-6])


def test_tensor_parallel_replicas_split_the_transfer_over_their_cards():
    pre2 = LinearServingPerf(prefill_s=0.5, kv_bytes_per_token=KVB, kv_capacity_tokens=100_000, cards=2)
    dec2 = LinearServingPerf(decode_s=0.25, kv_bytes_per_token=KVB, kv_capacity_tokens=100_000, cards=2)
    run = pd([0.0], [1000], [2], pre=pre2, dec=dec2)
    r = run.requests.iloc[0]
    assert r.kv_ready_s - r.first_token_s == pytest.approx(1000 * KVB / (2 * NIC) + 5e-6)


def test_topology_route_scaleup_inside_a_domain_scaleout_across():
    topo = rail_optimized("dgx-a100", 2)
    same = pd([0.0], [1000], [2], topology=topo)            # prefill card 0, decode card 1: NVLink
    r = same.requests.iloc[0]
    assert r.kv_ready_s - r.first_token_s == pytest.approx(1000 * KVB / topo.path_bandwidth_Bps(0, 1)
                                                           + topo.path_latency_s(0, 1))
    across = pd([0.0], [1000], [2], n_pre=8, topology=topo)  # 8 prefill replicas fill node 0
    r2 = across.requests.iloc[0]
    assert across.replicas.card_ids.tolist()[-1] == "8"
    assert r2.kv_ready_s - r2.first_token_s == pytest.approx(1000 * KVB / topo.path_bandwidth_Bps(0, 8)
                                                             + topo.path_latency_s(0, 8))
    assert r2.kv_ready_s - r2.first_token_s > 10 * (r.kv_ready_s - r.first_token_s)


def test_placement_packs_domains_and_reports_missing_cards():
    topo = rail_optimized("dgx-a100", 2)
    placed = place_pools(topo, [("p", "a100-80gb", 3, 2), ("d", "a100-80gb", 2, 4)])
    assert [c.tolist() for c in placed[0]] == [[0, 1], [2, 3], [4, 5]]
    assert [c.tolist() for c in placed[1]] == [[8, 9, 10, 11], [12, 13, 14, 15]]  # domain 0 has 2 left
    with pytest.raises(PlacementError, match="needs 5 replicas x 4 a100-80gb cards = 20, the topology has 16"):
        place_pools(topo, [("d", "a100-80gb", 5, 4)])
    with pytest.raises(PlacementError, match="h20"):
        place_pools(topo, [("d", "h20", 1, 1)])
    virtual = place_pools(None, [("p", "x", 2, 2), ("d", "y", 1, 1)])
    assert [c.tolist() for c in virtual[0]] + [virtual[1][0].tolist()] == [[0, 1], [2, 3], [4]]


def test_kv_network_matches_max_min_on_a_shared_link():
    cap, route = nic_links([10.0, 10.0, 10.0], 0.0)
    net = KVNetwork(cap, route)
    net.start(0.0, np.array([0]), np.array([2]), 10.0, "a")
    net.start(0.0, np.array([1]), np.array([2]), 30.0, "b")
    assert sorted(net.rates().values()) == [5.0, 5.0]
    assert net.next_t == pytest.approx(2.0)
    assert net.complete(net.next_t) == [(2.0, "a")]
    assert list(net.rates().values()) == [10.0]
    assert net.next_t == pytest.approx(4.0)


def test_single_output_token_finishes_at_prefill_without_transfer():
    run = pd([0.0, 0.0], [100, 100], [1, 4])
    df = run.requests
    assert df.status.tolist() == ["finished", "finished"]
    assert df.last_token_s.iloc[0] == df.first_token_s.iloc[0] and np.isnan(df.kv_ready_s.iloc[0])
    assert run.info["kv_transfers"] == 1


def test_decode_kv_full_makes_transfers_wait():
    dec = LinearServingPerf(decode_s=0.25, kv_bytes_per_token=KVB, kv_capacity_tokens=1500)
    run = pd([0.0, 0.0], [1000, 1000], [3, 3], dec=dec, n_pre=2)
    df = run.requests
    # both KV blocks cannot sit on the decode replica at once: the second waits for the first to finish
    assert df.kv_ready_s.iloc[1] > df.last_token_s.iloc[0]
    assert (df.status == "finished").all()


@settings(max_examples=60, deadline=10_000)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["wait", "preempt"]), st.sampled_from([None, 2.0]),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(["fixed", "queue", "latency"]))
def test_pd_requests_end_once_tokens_conserved(seed, on_kv_full, horizon, n_pre, n_dec, scaler):
    rng = np.random.default_rng(seed)
    n = 50
    arrival = np.sort(rng.uniform(0, 3, n))
    prompt, output = rng.integers(1, 800, n), rng.integers(1, 60, n)
    pre = LinearServingPerf(prefill_s=1e-3, prefill_s_per_token=2e-5, kv_bytes_per_token=2e5,
                            kv_capacity_tokens=int(rng.integers(900, 3000)))
    dec = LinearServingPerf(decode_s=5e-3, decode_s_per_seq=1e-4, decode_s_per_context_token=1e-7,
                            kv_bytes_per_token=2e5, kv_capacity_tokens=int(rng.integers(900, 3000)))
    autoscaling = {"fixed": None,
                   "queue": QueueDriven(target_outstanding=3, initial_replicas=1, interval_s=0.3, warmup_s=0.2),
                   "latency": LatencyDriven(initial_replicas=1, interval_s=0.25, warmup_s=0.1)}[scaler]
    run = pd(arrival, prompt, output, pre=pre, dec=dec, n_pre=n_pre, n_dec=n_dec, on_kv_full=on_kv_full,
             horizon_s=horizon, max_batch_seqs=8, autoscaling=autoscaling)
    df = run.requests
    fin = df[df.status == "finished"]
    assert len(df) == n and set(df.status) <= {"finished", "rejected", "unfinished"}
    assert (fin.generated_tokens == fin.output_tokens).all() and (df.generated_tokens <= df.output_tokens).all()
    assert (fin.ttft_s <= fin.e2e_s).all()
    multi = fin[fin.output_tokens > 1]
    assert (multi.kv_ready_s >= multi.first_token_s).all() and (multi.last_token_s > multi.kv_ready_s).all()
    assert (multi.decode_replica >= n_pre).all() and (fin.replica < n_pre).all()
    if horizon is None:
        assert (df.status != "unfinished").all()
