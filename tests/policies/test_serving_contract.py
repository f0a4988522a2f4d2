"""Contract of every serving policy in the registry (routing, autoscaling).

Each entry: decides the same way twice, never writes into its view (arrays are read-only and
unchanged after the call), handles a pool with no requests, and returns a valid decision; the
engine runs a small workload with it and every request ends exactly once. Name, parameters,
``repr``, the registry round trip and statelessness are the family-independent contract of
``test_policy_contract.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ServiceSpec, ServingOptions
from cluster_sim.errors import ConfigError
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies import registry
from cluster_sim.policies.serving.base import (
    AutoscalingView,
    RouteDecision,
    RoutingView,
    ScaleDecision,
    readonly,
)
from cluster_sim.workload.requests import RequestTable

ROUTERS = registry.names("routing")
SCALERS = registry.names("autoscaling")


def routing_view(seq=5, empty=False, ids=(3, 4, 6, 9)):
    n = len(ids)
    z = np.zeros(n, dtype=np.int64)

    def arr(values):
        return readonly(z.copy() if empty else np.asarray(values, dtype=np.int64))

    return RoutingView(
        now_s=1.5, service="chat", pool="colocated", sequence=seq, prompt_tokens=2000, output_tokens=100,
        replicas=readonly(np.asarray(ids, dtype=np.int64)), queue_len=arr([2, 0, 1, 3][:n]),
        running=arr([5, 7, 1, 2][:n]), pending_prefill_tokens=arr([4000, 0, 900, 3000][:n]),
        kv_used_tokens=arr([100, 900, 50, 10][:n]), kv_capacity_tokens=readonly(np.full(n, 1000, dtype=np.int64)),
        cached_blocks=arr([0, 1, 3, 0][:n]), block_tokens=512)


def scale_view(now=30.0, empty=False):
    return AutoscalingView(
        now_s=now, service="chat", pool="colocated", max_replicas=8, active=3, warming=1,
        queue_len=0 if empty else 40, running=0 if empty else 60, arrival_rate_per_s=0.0 if empty else 12.0,
        ttft_p90_s=math.nan if empty else 2.0, tpot_p90_s=math.nan if empty else 0.05,
        slo_ttft_s=1.0, slo_tpot_s=0.1, kv_occupancy=0.0 if empty else 0.6)


def _arrays(view):
    return {k: getattr(view, k).copy() for k in view.__slots__ if isinstance(getattr(view, k), np.ndarray)}


@pytest.mark.parametrize("name", ROUTERS)
def test_router_contract(name):
    policy = registry.make("routing", name)
    for empty in (False, True):
        view = routing_view(empty=empty)
        before = _arrays(view)
        d1 = policy.route(view)
        d2 = registry.make("routing", name).route(view)
        assert isinstance(d1, RouteDecision) and d1 == d2
        assert d1.replica in view.replicas.tolist()
        after = _arrays(view)
        assert all(np.array_equal(before[k], after[k]) for k in before)
        with pytest.raises(ValueError):
            view.queue_len[0] = 7
    # a pool of one replica, and non-contiguous ids
    one = routing_view(ids=(11,))
    assert policy.route(one).replica == 11


@pytest.mark.parametrize("name", SCALERS)
def test_autoscaler_contract(name):
    policy = registry.make("autoscaling", name)
    assert policy.interval_s is None or policy.interval_s > 0
    for view in (scale_view(0.0, empty=True), scale_view(empty=True), scale_view()):
        d1 = policy.scale(view)
        assert isinstance(d1, ScaleDecision) and d1 == registry.make("autoscaling", name).scale(view)
        assert isinstance(d1.target_replicas, int) and d1.target_replicas >= 1 and d1.warmup_s >= 0
    assert policy.scale(scale_view(0.0, empty=True)).target_replicas == 8   # all serve at t = 0 by default


@pytest.mark.parametrize("family,name", [("routing", n) for n in ROUTERS] + [("autoscaling", n) for n in SCALERS])
def test_every_policy_runs_in_the_engine(family, name):
    rng = np.random.default_rng(1)
    n = 200
    blocks = [rng.integers(0, 6, int(rng.integers(1, 4))) for _ in range(n)]
    reqs = RequestTable(np.sort(rng.uniform(0, 20, n)), rng.integers(1, 1500, n).astype(np.int32),
                        rng.integers(1, 50, n).astype(np.int32),
                        block_hashes=np.concatenate(blocks).astype(np.int64),
                        block_offsets=np.cumsum([0] + [len(b) for b in blocks]))
    perf = LinearServingPerf(prefill_s=0.01, prefill_s_per_token=1e-4, decode_s=0.02, kv_capacity_tokens=20_000)
    svc = ServiceSpec("s", reqs, (PoolSpec("colocated", 3, perf),), slo_ttft_s=0.5, slo_tpot_s=0.05)
    kw = {"routing": registry.make("routing", name)} if family == "routing" else \
        {"autoscaling": registry.make("autoscaling", name)}
    runs = [ServingEngine([svc], options=ServingOptions(), **kw).run() for _ in range(2)]
    df = runs[0].requests
    assert (df.status == "finished").all() and df.equals(runs[1].requests)


def test_unknown_names_and_params_fail_with_the_list():
    with pytest.raises(ConfigError, match="known: least_loaded, prefix_aware, random, round_robin"):
        registry.make("routing", "kv_magic")
    with pytest.raises(ConfigError, match="policy.autoscaling.params"):
        registry.make("autoscaling", type("Ref", (), {"name": "queue_driven", "params": {"bogus": 1}})())
