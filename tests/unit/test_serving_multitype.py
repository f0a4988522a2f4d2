"""One service on replicas of unequal speed under one router (一云多芯, issue #13 item 2).

A colocated pool of several :class:`ReplicaGroup` s (one card type each): the routers divide
load by each replica's speed (its saturated request rate from its own perf model, the fastest
1.0), the autoscaler starts replicas in group order, and the summary has per-type keys.
The test double is :class:`LinearServingPerf` with a per-sequence decode cost only, so a
replica is a processor-sharing server of ``1 / (output * decode_s_per_seq)`` requests per
second whatever its batch: speeds are exact dyadic ratios.
"""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.serving.engine import ServingEngine
from cluster_sim.engine.serving.specs import PoolSpec, ReplicaGroup, ServiceSpec, saturated_rate
from cluster_sim.errors import ConfigError
from cluster_sim.metrics.serving import summarize
from cluster_sim.perf.linear_serving import LinearServingPerf
from cluster_sim.policies.serving.base import RoutingView, ScaleDecision
from cluster_sim.policies.serving.routing import LeastLoaded, PrefixAware, RandomRouting, RoundRobin
from cluster_sim.workload.requests import RequestTable

OUT = 64
FAST = LinearServingPerf(decode_s_per_seq=2**-10, kv_capacity_tokens=1 << 20)   # 16 requests/s
SLOW = LinearServingPerf(decode_s_per_seq=2**-9, kv_capacity_tokens=1 << 20)    # 8 requests/s
CAPACITY = 2 * 16 + 2 * 8   # requests/s of 2 fast + 2 slow replicas


def _pool(*groups: tuple[str, int, LinearServingPerf]) -> PoolSpec:
    return PoolSpec.of_groups("colocated", [ReplicaGroup(t, n, p) for t, n, p in groups])


def _poisson(rate: float, n: int, seed: int = 0) -> RequestTable:
    arr = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, n))
    return RequestTable.from_arrays(arr, np.full(n, 100), np.full(n, OUT))


def _run(reqs: RequestTable, pool: PoolSpec, **kw):
    return ServingEngine([ServiceSpec("s", reqs, (pool,))], **kw).run()


def test_saturated_rate_closed_form():
    # b = max_batch_seqs requests decoded together for OUT iterations of b * c seconds each
    assert saturated_rate(FAST, 100, OUT, 256) == 1.0 / (OUT * 2**-10) == 16.0
    assert saturated_rate(SLOW, 100, OUT, 256) == 8.0
    # a KV cache holding 3 whole requests caps the batch at 3: prefill 3 x 0.5 s + decode 3 x 1 s
    small = LinearServingPerf(prefill_s=0.5, decode_s=1.0 / OUT, kv_capacity_tokens=3 * (100 + OUT) + 5)
    assert saturated_rate(small, 100, OUT, 256) == 3 / (3 * 0.5 + 1.0)


def test_the_engine_gives_routers_relative_speeds_only_when_replicas_differ():
    seen = []

    class Spy(LeastLoaded):
        def route(self, view: RoutingView):
            seen.append(None if view.speed is None else view.speed.tolist())
            return super().route(view)

    reqs = RequestTable.from_arrays([0.0, 0.0], [100, 100], [OUT, OUT])
    _run(reqs, _pool(("", 1, FAST), ("", 2, SLOW)), routing=Spy())
    _run(reqs, PoolSpec("colocated", 3, FAST), routing=Spy())
    assert seen == [[1.0, 0.5, 0.5]] * 2 + [None] * 2


def test_exact_small_case_shortest_expected_delay():
    # six requests at t = 0 on one fast (speed 1) and one slow (speed 0.5) replica: (n + 1) / speed
    # is 1 vs 2 -> fast; 2 vs 2 -> fast (tie, lowest id); 3 vs 2 -> slow; 3 vs 4 -> fast; 4 vs 4
    # -> fast; 5 vs 4 -> slow
    reqs = RequestTable.from_arrays([0.0] * 6, [100] * 6, [OUT] * 6)
    run = _run(reqs, _pool(("", 1, FAST), ("", 1, SLOW)), routing=LeastLoaded())
    assert run.requests["replica"].tolist() == [0, 0, 1, 0, 0, 1]
    # the old, speed-blind loads would alternate 0, 1, 0, 1, ...; round robin does
    rr = _run(reqs, _pool(("", 1, FAST), ("", 1, SLOW)), routing=RoundRobin())
    assert rr.requests["replica"].tolist() == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("policy, lo, hi", [
    (LeastLoaded(), 0.64, 0.70),                   # measured 0.675 (seed 0)
    (LeastLoaded(metric="kv"), 0.64, 0.70),        # measured 0.658
    (LeastLoaded(metric="tokens"), 0.64, 0.72),
    (PrefixAware(), 0.64, 0.74),                   # measured 0.710
    (RandomRouting(), 0.65, 0.685),                # proportional to speed: 2/3 +- 3 sigma (n = 20,000)
    (RoundRobin(), 0.5, 0.5),                      # load-blind baseline: equal turns
])
def test_fast_replicas_share_of_requests_is_their_speed_share(policy, lo, hi):
    # Near saturation (95% of the pool's capacity) every replica is busy nearly always, so each
    # serves at its own rate and the fast pair's share tends to its speed share 2 / (2 + 1) = 2/3;
    # a speed-aware router keeps the slow pair stable, round robin overloads it. The slow group
    # is listed first, so ties to the lowest id do not favour the fast one.
    n = 20_000
    run = _run(_poisson(0.95 * CAPACITY, n), _pool(("", 2, SLOW), ("", 2, FAST)), routing=policy)
    share = float((run.requests["replica"] >= 2).mean())
    assert lo <= share <= hi, share
    e2e = run.requests["e2e_s"].mean()   # measured 0.36 s (least_loaded), 52 s (round robin)
    assert (e2e > 10.0) if isinstance(policy, RoundRobin) else (e2e < 6.0), e2e


def test_at_half_load_least_loaded_prefers_the_fast_replicas():
    # (n + 1) / speed: an empty fast replica beats an empty slow one, and a fast one with one
    # request ties with an empty slow one; the speed-blind count split evenly (0.48 measured)
    run = _run(_poisson(0.5 * CAPACITY, 20_000), _pool(("", 2, SLOW), ("", 2, FAST)), routing=LeastLoaded())
    share = float((run.requests["replica"] >= 2).mean())
    assert 0.70 <= share <= 0.80, share   # measured 0.753
    assert run.requests["e2e_s"].mean() < 0.1   # measured 0.086 s (speed-blind: 0.112 s)


def test_one_group_is_the_plain_pool():
    reqs = _poisson(20.0, 2000)
    a = _run(reqs, PoolSpec("colocated", 3, SLOW, "h100-sxm"), routing=LeastLoaded())
    b = _run(reqs, _pool(("h100-sxm", 3, SLOW)), routing=LeastLoaded())
    cols = ["replica", "first_token_s", "last_token_s"]
    assert a.requests[cols].equals(b.requests[cols])
    assert a.replicas.drop(columns="card_ids").equals(b.replicas.drop(columns="card_ids"))


class Target:
    """Autoscaler stub: the targets in turn, one per tick."""

    def __init__(self, *targets: int) -> None:
        self.targets = list(targets)
        self.interval_s = 1.0

    def scale(self, view):
        return ScaleDecision(self.targets.pop(0) if len(self.targets) > 1 else self.targets[0])


@pytest.mark.parametrize("order", ["fast_first", "slow_first"])
def test_autoscaling_order_is_group_order(order):
    h100, ascend = ("h100-sxm", 2, FAST), ("ascend-910b", 2, SLOW)
    groups = [h100, ascend] if order == "fast_first" else [ascend, h100]
    n = 400
    reqs = RequestTable.from_arrays(np.linspace(0.0, 3.99, n), np.full(n, 100), np.full(n, 1))
    run = _run(reqs, _pool(*groups), routing=RoundRobin(), autoscaling=Target(3, 1, 2, 4))
    r = run.requests
    # targets 3, 1, 2, 4 at ticks t = 0, 1, 2, 3 (arrivals at a tick time are routed before it):
    # (0, 1): replicas 0-2 (the first group, then the second's first); (1, 2): replica 0 only;
    # (2, 3): the whole first group; (3, 4): all four
    windows = [(r.arrival_s > k) & (r.arrival_s < k + 1) for k in range(4)]
    assert [sorted(set(r.loc[w, "replica"])) for w in windows] == [[0, 1, 2], [0], [0, 1], [0, 1, 2, 3]]
    kind = run.replicas.set_index("replica")["card_type"]
    assert set(kind[r.loc[windows[2], "replica"]]) == {groups[0][0]}


def test_per_type_summary_keys_add_up():
    reqs = _poisson(0.8 * CAPACITY, 5000)
    s = summarize(_run(reqs, _pool(("h100-sxm", 2, FAST), ("ascend-910b", 2, SLOW)), routing=LeastLoaded()))
    types = ("h100-sxm", "ascend-910b")
    for k in ("requests", "finished", "tokens_per_s"):
        parts = [s[f"inference.s.by_type.{t}.{k}"] for t in types]
        assert sum(parts) == pytest.approx(s[f"inference.s.{k}"], rel=1e-12), k
    assert [s[f"inference.s.by_type.{t}.cards"] for t in types] == [2.0, 2.0]
    assert s["inference.s.by_type.h100-sxm.finished"] > 1.5 * s["inference.s.by_type.ascend-910b.finished"]
    one = summarize(_run(reqs, PoolSpec("colocated", 2, FAST, "h100-sxm")))
    assert not any(".by_type." in k for k in one)


def test_pool_spec_errors():
    with pytest.raises(ConfigError, match="groups must not be empty"):
        PoolSpec.of_groups("colocated", [])
    with pytest.raises(ConfigError, match=r"replicas \(3\) must be the groups' sum \(4\)"):
        PoolSpec("colocated", 3, FAST, groups=(ReplicaGroup("", 2, FAST), ReplicaGroup("", 2, SLOW)))
    with pytest.raises(ConfigError, match="replicas must be >= 1"):
        ReplicaGroup("x", 0, FAST)
