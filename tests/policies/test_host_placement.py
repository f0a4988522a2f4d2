"""Placement with host CPU / memory as capacity dimensions (Kubernetes / FGD feasibility)."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.cluster.state import ClusterState, layout_from_node_groups
from cluster_sim.engine.simulation import Simulation
from cluster_sim.metrics import result_from_record
from cluster_sim.policies import registry
from cluster_sim.policies.base import JobView
from cluster_sim.policies.training.placement import node_fragmentation, task_classes
from cluster_sim.workload.jobs import ANY_TYPE, KIND_TRACE, JobTable

ANY = int(ANY_TYPE)
PLACEMENTS = registry.names("placement")


def job(num=1, milli=1000, cpu=0, mem=0, single=True, idx=99):
    return JobView(idx, idx, num, milli, ANY, 0, 0, 0, True, 0.0, 100.0, 0.0, single, cpu, mem)


def place(name, st, j):
    dec = registry.make("placement", name).place(j, st.view)
    return None if dec is None else sorted(dec.cards.tolist())


@pytest.fixture
def short_cpu():
    # two nodes of 2 x t4 with 8 cores each; node 0 has 1 card and 1 core left, node 1 is empty
    st = ClusterState(layout_from_node_groups([("t4", 2, 2, 8000, 65536)]))
    st.allocate(0, [0], 1000, "setup", cpu_milli=7000)
    return st


@pytest.mark.parametrize("name", PLACEMENTS)
def test_a_node_short_of_cpu_is_not_chosen(name, short_cpu):
    # GPU-only best fit would take card 1 (node 0: tightest); node 0 has 1,000 milli-cores left
    got = place(name, short_cpu, job(1, cpu=4000))
    assert got is not None and got[0] in (2, 3)
    assert place(name, short_cpu, job(1, milli=500, cpu=4000))[0] in (2, 3)  # a GPU share too
    assert place(name, short_cpu, job(1, cpu=500)) is not None  # a small request still fits node 0
    assert place(name, short_cpu, job(1, cpu=9000)) is None  # no node has 9 cores
    assert place(name, short_cpu, job(2, mem=70000)) is None  # nor 70,000 MiB


def test_packed_prefers_the_tight_node_when_cpu_allows(short_cpu):
    assert place("packed", short_cpu, job(1, cpu=500)) == [1]


@pytest.mark.parametrize("name", ["packed", "spread", "topology_aware", "fragmentation_aware"])
def test_multi_node_jobs_take_only_what_host_resources_allow(name):
    # 3 nodes x 2 cards, 4 cores each; node 0: 1 free card but only 1 core
    st = ClusterState(layout_from_node_groups([("t4", 2, 3, 4000, 65536)], nodes_per_leaf=1))
    st.allocate(0, [0], 1000, "setup", cpu_milli=3000)
    # 4 cards, 8 cores in all = 2 cores per card: node 0 cannot take even one card
    assert place(name, st, job(4, cpu=8000, single=False)) == [2, 3, 4, 5]
    assert place(name, st, job(5, cpu=5000, single=False)) == [1, 2, 3, 4, 5]  # 1 core per card
    assert place(name, st, job(5, cpu=10000, single=False)) is None


def test_fgd_counts_cpu_blocked_gpus_as_fragmented():
    classes = (np.array([1]), np.array([1000]), np.array([ANY], dtype=np.uint64), np.array([1.0]),
               np.array([4000]), np.array([0]))
    free = np.array([[1000, 1000], [1000, 1000]])
    frag = node_fragmentation(free, np.array([0, 0]), classes, np.array([2000, 8000]), np.array([10, 10]))
    assert frag.tolist() == [2000.0, 0.0]  # node 0 cannot host the class: both GPUs are fragments
    assert node_fragmentation(free, np.array([0, 0]), classes[:4]).tolist() == [0.0, 0.0]  # GPU-only


def test_fgd_keeps_cpu_for_the_typical_task():
    # node 0: 1 free card, 12 cores; node 1: 1 free card, 4 cores. Typical pods: 1 GPU + 8 cores.
    st = ClusterState(layout_from_node_groups([("t4", 2, 2, 16000, 65536)]))
    st.allocate(0, [0], 1000, "s", cpu_milli=4000)
    st.allocate(1, [2], 1000, "s", cpu_milli=12000)
    for _ in range(20):
        st.push_request(1, 1000, ANY, 8000, 0)
    cls = task_classes(st.view, job(1, milli=200, cpu=2000), 8)
    assert cls[4].tolist() == [8000, 2000]
    # a 0.2-GPU pod with 2 cores: on node 0 it would leave 10 cores (8-core pods still fit there)
    # and its card unusable by whole-GPU pods; on node 1 (4 cores, already unusable) nothing is lost
    assert place("fragmentation_aware", st, job(1, milli=200, cpu=2000)) == [3]


@pytest.mark.parametrize("name", PLACEMENTS)
def test_engine_run_never_over_allocates_host(name):
    rng = np.random.default_rng(3)
    n = 150
    num = rng.choice([1, 1, 1, 2, 4, 8], size=n)
    milli = np.where((num == 1) & (rng.random(n) < 0.4), rng.choice([250, 500], size=n), 1000)
    jobs = JobTable(job_id=np.arange(n), submit_s=np.sort(rng.uniform(0, 500, n)), num_cards=num,
                    card_milli=milli, duration_s=rng.exponential(200.0, n) + 1.0,
                    kind=np.where(rng.random(n) < 0.5, KIND_TRACE, 0),
                    cpu_milli=rng.integers(0, 16, n) * 1000, memory_mib=rng.integers(0, 64, n) * 1024)
    lo = layout_from_node_groups([("t4", 2, 4, 16000, 65536), ("a100-80gb", 8, 2, 64000, 262144)],
                                 nodes_per_leaf=2)
    sim = Simulation(lo, seed=0, horizon_s=2000.0)
    stages = {"admission": "accept_all", "ordering": "fifo", "preemption": "none", "placement": name}
    sim.add_training(jobs, backfill=True, **{k: registry.make(k, v) for k, v in stages.items()})
    orig = sim.training.step
    seen = []

    def step(t):
        orig(t)
        sim.state.check()
        seen.append(float(sim.state.node_cpu_free.min()))
    sim.training.step = step
    sim.run()
    res = result_from_record(sim.collect())
    assert seen and min(seen) >= 0
    assert res.summary["training.jobs.finished"] > 50
    assert min(seen) < 16000  # host resources were in use
