"""Network cost layer: alpha-beta collective costs and max-min fair link sharing.

``collectives`` turns a group's :class:`~cluster_sim.topology.levels.CommLevel` tuple into
:class:`CollectiveCost` (latency + transfer seconds); ``contention`` shares links between
concurrent flows max-min fairly. Formulas and limits: ``docs/network.md``.
"""

from __future__ import annotations

from cluster_sim.network.collectives import (
    ALGORITHMS,
    KINDS,
    CollectiveCost,
    all_gather,
    all_reduce,
    all_to_all,
    binomial_broadcast,
    broadcast,
    bus_bandwidth,
    collective,
    concurrent_all_to_all,
    domain_dedup,
    pairwise_all_to_all,
    point_to_point,
    rabenseifner_all_reduce,
    recursive_doubling_all_reduce,
    reduce_scatter,
    ring_all_gather,
    ring_all_reduce,
    ring_broadcast,
    ring_reduce_scatter,
    send_recv,
    tree_all_reduce,
)
from cluster_sim.network.contention import LinkShares, max_min_fair, max_min_fair_csr

__all__ = [
    "ALGORITHMS",
    "KINDS",
    "CollectiveCost",
    "LinkShares",
    "all_gather",
    "all_reduce",
    "all_to_all",
    "binomial_broadcast",
    "broadcast",
    "bus_bandwidth",
    "collective",
    "concurrent_all_to_all",
    "domain_dedup",
    "max_min_fair",
    "max_min_fair_csr",
    "pairwise_all_to_all",
    "point_to_point",
    "rabenseifner_all_reduce",
    "recursive_doubling_all_reduce",
    "reduce_scatter",
    "ring_all_gather",
    "ring_all_reduce",
    "ring_broadcast",
    "ring_reduce_scatter",
    "send_recv",
    "tree_all_reduce",
]
