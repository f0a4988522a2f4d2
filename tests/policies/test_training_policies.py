"""What each training policy decides, on hand-built cluster states."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.config import load_config
from cluster_sim.engine.cluster.state import ClusterState, layout_from_node_groups
from cluster_sim.errors import ConfigError
from cluster_sim.experiment.build import training_policies
from cluster_sim.policies import registry
from cluster_sim.policies.base import JobsView, JobView, RunningView, TenantUsage, readonly
from cluster_sim.policies.training.placement import node_fragmentation, task_classes
from cluster_sim.workload.jobs import ANY_TYPE

ANY = int(ANY_TYPE)


def job(num=1, milli=1000, mask=ANY, kind=0, prio=0, single=False, idx=99):
    return JobView(idx, idx, num, milli, mask, kind, 0, prio, True, 0.0, 100.0, 0.0, single)


def place(name, st, j, **params):
    p = registry.make("placement", name if not params else type("R", (), {"name": name, "params": params})())
    dec = p.place(j, st.view)
    return None if dec is None else sorted(dec.cards.tolist())


@pytest.fixture
def four_nodes():
    # 4 nodes x 8 H100; 2 nodes per leaf; node 0 has 5 free, node 1 has 2 free, nodes 2-3 empty
    st = ClusterState(layout_from_node_groups([("h100-sxm", 8, 4)], nodes_per_leaf=2))
    st.allocate(0, [0, 1, 2], 1000, "setup")
    st.allocate(1, list(range(8, 14)), 1000, "setup")
    return st


def test_packed_is_best_fit_and_spread_worst_fit(four_nodes):
    assert place("packed", four_nodes, job(2)) == [14, 15]  # node 1: exactly 2 free
    assert place("packed", four_nodes, job(3)) == [3, 4, 5]  # node 0: 5 free, tightest that fits
    assert place("spread", four_nodes, job(2)) == [16, 17]  # an empty node (lowest id)
    assert place("topology_aware", four_nodes, job(2)) == [14, 15]


def test_multi_node_jobs(four_nodes):
    # 20 cards: packed takes the most-free nodes first (2 and 3), then node 0
    assert place("packed", four_nodes, job(20)) == [3, 4, 5, 6] + list(range(16, 32))
    # spread alternates leaves: node 2 (leaf 1) then node 0 (leaf 0) then node 3 ...
    got = place("spread", four_nodes, job(12))
    assert got == [3, 4, 5, 6, 7] + list(range(16, 23))
    # topology_aware: 16 cards fit under leaf 1 alone
    assert place("topology_aware", four_nodes, job(16)) == list(range(16, 32))


def test_topology_aware_does_not_split_a_domain_sized_job():
    st = ClusterState(layout_from_node_groups([("h100-sxm", 8, 2)], nodes_per_leaf=2))
    st.allocate(0, [0, 1, 2, 3], 1000, "setup")
    st.allocate(1, [8, 9, 10, 11], 1000, "setup")
    assert place("topology_aware", st, job(6)) is None  # would need two domains: wait
    assert place("packed", st, job(6)) is not None  # packed splits it
    assert place("packed", st, job(6, single=True)) is None  # a pod never spans nodes


def test_fractional_best_and_worst_fit():
    st = ClusterState(layout_from_node_groups([("t4", 2, 2)]))
    st.allocate(0, [0], 600, "s")  # card 0: 400 free
    st.allocate(1, [2], 200, "s")  # card 2: 800 free
    assert place("packed", st, job(1, milli=300)) == [0]
    assert place("packed", st, job(1, milli=500)) == [2]
    assert place("spread", st, job(1, milli=300)) == [1]


def test_heterogeneity_aware_picks_the_fastest_free_type():
    lo = layout_from_node_groups([("a100-80gb", 8, 1), ("h100-sxm", 8, 1)])
    st = ClusterState(lo, throughput=np.array([[0.4, 1.0]]))
    assert place("packed", st, job(4)) == [0, 1, 2, 3]  # type-blind: lowest node id (A100)
    assert place("heterogeneity_aware", st, job(4)) == [8, 9, 10, 11]
    st.allocate(0, list(range(8, 16)), 1000, "s")
    assert place("heterogeneity_aware", st, job(4)) == [0, 1, 2, 3]  # falls back to A100
    assert place("heterogeneity_aware", st, job(4, mask=0b10)) is None


def test_node_fragmentation_hand_example():
    # one node of two cards with 300 and 1000 milli free; task classes: 50% (1 x 500), 50% (1 x 1000)
    classes = (np.array([1, 1]), np.array([500, 1000]), np.array([ANY, ANY], dtype=np.uint64),
               np.array([0.5, 0.5]))
    free = np.array([[300, 1000]])
    # 500-task fits (on the whole card): the 300 card is a fragment -> 300; 1000-task fits -> 300
    assert node_fragmentation(free, np.array([0]), classes).tolist() == [300.0]
    # a node with only 300 free: neither fits -> all 300 is fragment
    assert node_fragmentation(np.array([[300, 0]]), np.array([0]), classes).tolist() == [300.0]
    # type constraint: a class that excludes the node's type sees everything as fragmented
    c2 = (np.array([1]), np.array([500]), np.array([0b10], dtype=np.uint64), np.array([1.0]))
    assert node_fragmentation(free, np.array([0]), c2).tolist() == [1300.0]


def test_fgd_prefers_the_placement_that_fragments_least():
    # node 0 card 0 has 600 free; node 1 is empty. Recent requests are all 600-milli pods.
    st = ClusterState(layout_from_node_groups([("t4", 2, 2)]))
    st.allocate(0, [0], 400, "s")
    for _ in range(50):
        st.push_request(1, 600, ANY)
    # a 400-milli pod: best fit (packed) puts it on card 0 (600 free -> 200: unusable by 600-pods)
    assert place("packed", st, job(1, milli=400)) == [0]
    # FGD keeps card 0 usable for the common 600 pods and breaks a whole card instead
    assert place("fragmentation_aware", st, job(1, milli=400)) == [1]
    cls = task_classes(st.view, job(1, milli=400), 16)
    assert cls[1].tolist() == [600, 400] and cls[3].tolist() == pytest.approx([50 / 51, 1 / 51])


def test_ordering_keys():
    cols = dict(idx=np.arange(3), submit_s=np.array([3.0, 1.0, 2.0]), duration_s=np.array([10.0, 30.0, 20.0]),
                num_cards=np.array([1, 8, 2]), card_milli=np.array([1000, 1000, 500]),
                priority=np.array([0, 2, 1]), tenant=np.zeros(3, int), attained_s=np.array([0.0, 5.0, 0.0]),
                kind=np.zeros(3, int))
    v = JobsView(**{k: readonly(x) for k, x in cols.items()})
    k = {n: registry.make("ordering", n).keys(v).keys.tolist() for n in registry.names("ordering")}
    assert k["fifo"] == [3.0, 1.0, 2.0]
    assert k["sjf"] == [10.0, 25.0, 20.0]
    assert k["las"] == [0.0, 40.0, 0.0]
    assert k["priority"] == [0.0, -2.0, -1.0]
    sjf_cs = registry.make("ordering", type("R", (), {"name": "sjf", "params": {"by": "card_seconds"}})())
    assert sjf_cs.keys(v).keys.tolist() == [10.0, 200.0, 20.0]


def test_priority_preemption_picks_lowest_priority_youngest_first():
    st = ClusterState(layout_from_node_groups([("h100-sxm", 8, 2)]))
    st.allocate(0, [0, 1, 2, 3], 1000, "s")
    st.allocate(1, [4, 5, 6, 7], 1000, "s")
    st.allocate(2, list(range(8, 16)), 1000, "s")
    rv = RunningView(readonly(np.array([0, 1, 2])), readonly(np.array([1, 0, 0])), readonly(np.array([True, True, False])),
                     readonly(np.array([0.0, 5.0, 1.0])), readonly(np.array([1000, 1000, 1000])),
                     (readonly(np.arange(0, 4)), readonly(np.arange(4, 8)), readonly(np.arange(8, 16))))
    p = registry.make("preemption", "priority")
    assert p.select(job(4, prio=3), rv, st.view).victims == (1,)
    assert p.select(job(8, prio=3), rv, st.view).victims == (1, 0)
    assert p.select(job(12, prio=3), rv, st.view).victims == ()  # job 2 is not preemptible
    assert p.select(job(4, prio=1), rv, st.view).victims == (1,)  # only priority 0 is below 1
    assert registry.make("preemption", "none").select(job(4, prio=9), rv, st.view).victims == ()


def test_tenant_quota_params():
    q = registry.make("admission", type("R", (), {"name": "tenant_quota",
                                                  "params": {"quota_cards": 10, "per_tenant": {"b": 2}}})())
    usage = TenantUsage(("a", "b"), readonly(np.array([4.0, 0.0])), readonly(np.array([4.0, 1.0])))
    a = JobView(0, 0, 2, 1000, ANY, 0, 0, 0, True, 0.0, 1.0)
    b = JobView(1, 1, 2, 1000, ANY, 0, 1, 0, True, 0.0, 1.0)
    assert q.admit(a, usage).accept and not q.admit(b, usage).accept
    assert repr(q) == "TenantQuota(quota_cards=10, per_tenant={'b': 2})"


def test_training_policies_from_config_with_presets():
    base = {"cluster": {"topology": "x.yaml"}}
    cfg = load_config({**base, "policy": {"training": {"scheduler": "gavel", "ordering": "sjf"}}})
    pol = training_policies(cfg.policy.training)
    assert pol["placement"].name == "heterogeneity_aware" and pol["ordering"].name == "sjf"
    assert pol["backfill"] is False
    # the loader may check policy names itself; either way the error names the field
    with pytest.raises(ConfigError, match="unknown scheduler 'nope'; known: easy, fgd"):
        training_policies(load_config({**base, "policy": {"training": {"scheduler": "nope"}}}).policy.training)
    with pytest.raises(ConfigError, match="policy.training.placement: unknown placement policy 'best'"):
        training_policies(load_config({**base, "policy": {"training": {"placement": "best"}}}).policy.training)
