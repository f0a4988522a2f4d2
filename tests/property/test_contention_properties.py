"""Hypothesis properties of max-min fair sharing: feasibility, demands, optimality, symmetry."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster_sim.network import LinkShares, max_min_fair
from cluster_sim.network import contention as C

EPS = 1e-9

# Capacities from a small set make ties (several links saturating together) common.
cap_st = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 10.0]), st.floats(0.01, 100.0))
demand_st = st.one_of(st.just(math.inf), st.sampled_from([0.0, 0.5, 1.0]),
                      st.floats(0.0, 50.0))


@st.composite
def instances(draw, with_demand: bool | None = None):
    n_links = draw(st.integers(1, 8))
    cap = np.array(draw(st.lists(cap_st, min_size=n_links, max_size=n_links)))
    flows = draw(st.lists(st.lists(st.integers(0, n_links - 1), max_size=4), max_size=14))
    if with_demand is None:
        with_demand = draw(st.booleans())
    demand = (np.array(draw(st.lists(demand_st, min_size=len(flows), max_size=len(flows))))
              if with_demand else None)
    return flows, cap, demand


# The solver has two exact paths: vectorised rounds, and a heap that finishes the residual.
# "rounds" never hands over; "heap" hands over after the first round; "default" as shipped.
MODES = {"default": {}, "rounds": {"_ROUND_OVERHEAD_PAIRS": 0, "_ROUND_COST_PER_PAIR": 0},
         "heap": {"_ROUND_OVERHEAD_PAIRS": 10**9}}


def solve(flows, cap, demand, mode="default"):
    with mock.patch.multiple(C, **MODES[mode]) if MODES[mode] else _null():
        return max_min_fair(flows, cap, demand)


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def reference(flows, cap, demand):
    """Textbook progressive filling, one bottleneck level at a time, in plain Python."""
    n = len(flows)
    want = [math.inf] * n if demand is None else list(map(float, demand))
    paths = [sorted(set(f)) for f in flows]
    rate = [want[i] if not paths[i] else None for i in range(n)]
    used = [0.0] * len(cap)
    while any(r is None for r in rate):
        active = [i for i in range(n) if rate[i] is None]
        on = {}
        for i in active:
            for l in paths[i]:
                on.setdefault(l, []).append(i)
        levels = {l: (cap[l] - used[l]) / len(fs) for l, fs in on.items()}
        t = min([*levels.values(), *(want[i] for i in active)])
        frozen = {i for i in active if want[i] <= t}
        frozen |= {i for l, fs in on.items() if levels[l] <= t for i in fs}
        for i in sorted(frozen):
            rate[i] = min(t, want[i])
            for l in paths[i]:
                used[l] += rate[i]
    return np.array(rate, dtype=float)


def check_certificate(flows, cap, demand, r):
    n = len(flows)
    want = np.full(n, np.inf) if demand is None else demand
    load = np.zeros(len(cap))
    for i, f in enumerate(flows):
        assert r[i] >= 0
        assert r[i] <= want[i] * (1 + EPS) + EPS           # never more than it asks
        for l in set(f):
            load[l] += r[i]
    assert (load <= cap * (1 + EPS) + EPS).all()             # feasible on every link
    for i, f in enumerate(flows):
        if r[i] >= want[i] * (1 - EPS) - EPS:
            continue                                          # satisfied
        # otherwise some link of the flow is saturated and the flow is among its largest
        ok = False
        for l in set(f):
            on_l = [r[j] for j, g in enumerate(flows) if l in g]
            if load[l] >= cap[l] * (1 - EPS) - EPS and r[i] >= max(on_l) * (1 - EPS) - EPS:
                ok = True
        assert ok, f"flow {i} has no bottleneck link"


@settings(max_examples=300, deadline=10_000)
@given(instances(), st.sampled_from(list(MODES)))
def test_feasible_within_demand_and_max_min_optimal(inst, mode):
    flows, cap, demand = inst
    r = solve(flows, cap, demand, mode)
    assert r.shape == (len(flows),)
    check_certificate(flows, cap, demand, r)


@settings(max_examples=300, deadline=10_000)
@given(instances(), st.sampled_from(list(MODES)))
def test_equals_textbook_progressive_filling(inst, mode):
    flows, cap, demand = inst
    np.testing.assert_allclose(solve(flows, cap, demand, mode), reference(flows, cap, demand),
                               rtol=1e-9, atol=1e-12)


@settings(max_examples=200, deadline=10_000)
@given(instances(), st.integers(0, 13), st.integers(2, 5))
def test_identical_flows_get_identical_rates(inst, which, copies):
    flows, cap, demand = inst
    if not flows:
        return
    k = which % len(flows)
    flows = flows + [list(reversed(flows[k]))] * copies       # same links, any order
    if demand is not None:
        demand = np.concatenate([demand, np.full(copies, demand[k])])
    r = max_min_fair(flows, cap, demand)
    twins = np.array([r[k], *r[-copies:]])
    np.testing.assert_allclose(twins, twins[0], rtol=1e-12, atol=1e-15)


@settings(max_examples=150, deadline=10_000)
@given(instances(with_demand=False), st.floats(1.0, 10.0))
def test_more_capacity_never_lowers_the_smallest_rate(inst, factor):
    flows, cap, _ = inst
    flows = [f for f in flows if f]
    if not flows:
        return
    assert max_min_fair(flows, cap * factor).min() >= max_min_fair(flows, cap).min() * (1 - EPS)


ops_st = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 9), st.lists(st.integers(0, 4), max_size=3),
                  st.one_of(st.none(), st.floats(0.0, 20.0))),
        st.tuples(st.just("remove"), st.integers(0, 9)),
        st.tuples(st.just("cap"), st.integers(0, 4), st.sampled_from([0.0, 1.0, 5.0, 7.5])),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=10_000)
@given(ops_st)
def test_link_shares_reproduces_the_pure_function(ops):
    cap = np.array([5.0, 1.0, 7.5, 5.0, 1.0])
    shares = LinkShares(cap)
    flows: dict[int, tuple[list[int], float | None]] = {}
    version = 0
    for op in ops:
        if op[0] == "add" and op[1] not in flows:
            shares.add(op[1], op[2], op[3])
            flows[op[1]] = (op[2], op[3])
            version += 1
        elif op[0] == "remove" and op[1] in flows:
            shares.remove(op[1])
            del flows[op[1]]
            version += 1
        elif op[0] == "cap":
            version += cap[op[1]] != op[2]
            cap[op[1]] = op[2]
            shares.set_capacity(op[1], op[2])
        else:
            continue
        assert shares.version == version
        ids = sorted(flows)
        want = np.array([math.inf if flows[i][1] is None else flows[i][1] for i in ids])
        expect = max_min_fair([flows[i][0] for i in ids], cap, want)
        got = shares.rates()
        assert list(got) == ids
        assert list(got.values()) == pytest.approx(expect.tolist())
