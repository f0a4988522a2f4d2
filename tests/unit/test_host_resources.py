"""Host CPU and memory as capacity dimensions of the cluster state (openb-style node inventories)."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_sim.engine.cluster.state import (
    UNLIMITED,
    ClusterState,
    host_share,
    layout_from_node_groups,
)
from cluster_sim.errors import ConfigError, PlacementError, TopologyError
from cluster_sim.workload.jobs import JobTable
from cluster_sim.workload.traces import alibaba


def _state():
    # node 0, 1: 2 x t4, 8 cores, 32 GiB; node 2: 4 x t4, 16 cores, memory unknown (-1)
    return ClusterState(layout_from_node_groups([("t4", 2, 2, 8000, 32768), ("t4", 4, 1, 16000, -1)]))


def test_host_share_is_a_ceiling_split():
    assert host_share(1000, 1, 1) == 1000
    assert [host_share(1000, j, 3) for j in (1, 2)] == [334, 667]
    assert host_share(0, 2, 4) == 0


def test_allocate_and_release_track_cpu_and_memory():
    st = _state()
    assert st.has_host and st.node_cpu_free.tolist() == [8000, 8000, 16000]
    assert st.node_mem_free.tolist() == [32768, 32768, UNLIMITED]
    st.allocate(0, [0], 500, "t", cpu_milli=3000, memory_mib=10000)
    st.allocate(1, [1, 2, 3], 1000, "t", cpu_milli=3000, memory_mib=300)  # 1 card on node 0, 2 on node 1
    assert st.node_cpu_free.tolist() == [8000 - 3000 - 1000, 8000 - 2000, 16000]
    assert st.node_mem_free.tolist() == [32768 - 10000 - 100, 32768 - 200, UNLIMITED]
    st.check()
    st.release(0)
    assert st.node_cpu_free.tolist() == [7000, 6000, 16000]
    st.release(1)
    assert st.node_cpu_free.tolist() == [8000, 8000, 16000] and st.node_mem_free[0] == 32768
    st.check()


def test_over_allocation_of_cpu_or_memory_raises_and_changes_nothing():
    st = _state()
    st.allocate(0, [0], 1000, "t", cpu_milli=6000)
    with pytest.raises(PlacementError, match=r"policy 'p'.*node 0 has 2000 milli-cores of CPU free, needs 3000"):
        st.allocate(1, [1], 1000, "p", cpu_milli=3000)
    with pytest.raises(PlacementError, match="node 1 has 32768 MiB of memory free, needs 40000"):
        st.allocate(1, [2], 1000, "p", memory_mib=40000)
    assert 1 not in st.alloc and st.free[1] == 1000 and st.free[2] == 1000
    assert st.node_cpu_free.tolist() == [2000, 8000, 16000] and st.node_mem_free[1] == 32768
    st.check()
    st.allocate(1, [1], 1000, "p", cpu_milli=2000, memory_mib=32768)  # exactly what is left
    assert st.node_cpu_free[0] == 0 and st.node_mem_free[0] == 0
    st.allocate(2, [4], 1000, "p", memory_mib=10**9)  # node 2's memory is not given: unlimited
    st.check()


def test_layouts_without_host_resources_are_unlimited():
    st = ClusterState(layout_from_node_groups([("t4", 2, 2)]))
    assert not st.has_host and (st.node_cpu_free == UNLIMITED).all()
    st.allocate(0, [0, 1], 1000, "t", cpu_milli=10**9, memory_mib=10**9)
    st.check()
    with pytest.raises(TopologyError, match="groups must all be"):
        layout_from_node_groups([("t4", 2, 2), ("t4", 2, 1, 8000, 1024)])


def test_job_table_host_columns():
    t = JobTable(job_id=[0, 1], submit_s=0.0, num_cards=1, duration_s=1.0, cpu_milli=[0, 4000])
    assert t.cpu_milli.tolist() == [0, 4000] and t.memory_mib.tolist() == [0, 0]
    with pytest.raises(ConfigError, match=r"memory_mib.*must be >= 0"):
        JobTable(job_id=[0], submit_s=0.0, num_cards=1, duration_s=1.0, memory_mib=[-1])


def test_openb_host_groups_and_pod_requests(traces):
    d = traces / "alibaba_gpu_v2023"
    inv = alibaba.read_openb_nodes(d / "openb_node_list_gpu_node.csv")
    full = inv.host_groups()
    assert sum(c for _, _, c, _, _ in full) == 1213 and sum(g * c for _, g, c, _, _ in full) == 6212
    assert sum(c * cpu for _, _, c, cpu, _ in full) == int(inv.cpu_milli.sum())
    assert ("G2", 8, 549, 96000, 393216) in full
    scaled = inv.host_groups(0.75)
    assert sum(g * c for _, g, c, _, _ in scaled) == 4662  # same GPU count as scaling the (type, size) groups
    pods = alibaba.read_openb_pods(d / "openb_pod_list_default.csv")
    assert len(pods) == 7064 and int(pods.cpu_milli.sum()) == 66238112
    assert int(pods.memory_mib.max()) > 100_000 and (pods.memory_mib >= 0).all()
    lo = layout_from_node_groups(scaled)
    assert lo.node_cpu_milli.size == int(lo.card_node.max()) + 1
    assert np.isin(lo.node_cpu_milli, [c for *_, c, _ in scaled]).all()
