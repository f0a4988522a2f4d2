"""Routes, path latency and bottleneck bandwidth, and a group's collective levels.

Routes are shortest paths on the graph weighted by ``latency_s + 1 MB / bandwidth_Bps``
(so traffic inside a scale-up domain stays on the scale-up fabric and long-haul links are
used only when needed); ties are broken by the graph's insertion order, so routes are
deterministic. :func:`comm_levels` never touches the graph: it works on the per-card numpy
arrays of :class:`~cluster_sim.topology.graph.CardTable`, so the performance model can call it
for every job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from ..errors import TopologyError
from .levels import CommLevel

if TYPE_CHECKING:  # pragma: no cover
    from .graph import Node, Topology

__all__ = ["comm_levels", "route", "route_bandwidth_Bps", "route_latency_s"]

ROUTE_REF_BYTES = 1e6  # message size that weighs bandwidth against latency when routing


def _weight(u: Any, v: Any, d: dict[str, Any]) -> float:
    return d["latency_s"] + ROUTE_REF_BYTES / d["bandwidth_Bps"]


def route(topo: Topology, a: int, b: int) -> list[tuple[Node, Node]]:
    """Links ``(u, v)`` of the deterministic shortest path from card ``a`` to card ``b``."""
    if a == b:
        return []
    try:
        _, nodes = nx.bidirectional_dijkstra(topo.graph, a, b, weight=_weight)
    except nx.NetworkXNoPath:
        raise TopologyError(f"topology {topo.name!r}: no route from card {a} to card {b}") from None
    return list(zip(nodes[:-1], nodes[1:], strict=False))


def route_latency_s(topo: Topology, links: Sequence[tuple[Node, Node]]) -> float:
    """Sum of link latencies on ``links``, plus the site fabric's NIC latency if any link is
    a scale-out or DCI link (the message then leaves the scale-up domain through a NIC)."""
    if not links:
        return 0.0
    g = topo.graph
    data = [g.edges[u, v] for u, v in links]
    total = sum(d["latency_s"] for d in data)
    src = links[0][0]
    if isinstance(src, int) and any(d["tier"] != "scaleup" for d in data):
        total += float(topo._site_nic_lat[topo.dc[src]])
    return total


def route_bandwidth_Bps(topo: Topology, links: Sequence[tuple[Node, Node]]) -> float:
    """Smallest link capacity on ``links`` (bytes/s per direction); ``inf`` for an empty route."""
    g = topo.graph
    return min((g.edges[u, v]["bandwidth_Bps"] for u, v in links), default=float("inf"))


def _turn_level(chain: np.ndarray, sel: np.ndarray) -> int:
    """Lowest switching level at which every card of ``sel`` shares one block."""
    for j in range(chain.shape[0]):
        row = chain[j, sel]
        if (row == row[0]).all():
            return j
    return chain.shape[0] - 1  # pragma: no cover - the last row is the site: always shared


def comm_levels(topo: Topology, cards: Sequence[int] | np.ndarray) -> tuple[CommLevel, ...]:
    """Describe the group ``cards`` (the ranks of one collective) as levels, innermost first.

    * ``scaleup``: fanout = most ranks inside one scale-up domain; bandwidth = the slowest
      card's scale-up bandwidth per direction; latency = the system's scale-up latency.
    * ``scaleout`` (group spans >1 domain): fanout = most domains of the group in one site;
      bandwidth per rank = slowest NIC / cumulative oversubscription of the highest switch
      tier crossed (every card below it assumed to send at once); latency = longest route's
      hops + NIC latency; efficiency from the site fabric.
    * ``dci`` (group spans >1 site): fanout = sites; bandwidth per rank = DCI capacity /
      the group's cards in the busiest site (never above the scale-out share); latency =
      fibre (5 us/km) + DCI equipment + the route up to each site's top + NIC.

    Levels with fanout 1 are left out, except that at least one level is returned.
    """
    idx = np.unique(np.asarray(cards, dtype=np.int64).ravel())
    n = topo.n_cards
    if idx.size == 0:
        raise TopologyError(f"topology {topo.name!r}: comm_levels needs at least one card")
    if idx[0] < 0 or idx[-1] >= n:
        bad = int(idx[0] if idx[0] < 0 else idx[-1])
        raise TopologyError(f"topology {topo.name!r}: no card {bad} (cards are 0..{n - 1})")
    c = topo.cards
    dom = c.domain[idx]
    _, per_domain = np.unique(dom, return_counts=True)
    types = np.unique(topo.card_type_idx[idx])
    systems = np.unique(c.system_idx[idx])
    levels: list[CommLevel] = []
    su_fanout = int(per_domain.max())
    if su_fanout > 1 or per_domain.size == 1:
        levels.append(CommLevel(
            "scaleup", su_fanout, float(topo._type_scaleup_Bps[types].min()),
            float(topo._sys_scaleup_lat[systems].max()), float(topo._type_scaleup_eff[types].min())))
    if per_domain.size == 1:
        return tuple(levels)

    dcs = c.dc[idx]
    sites, per_site = np.unique(dcs, return_counts=True)
    nic = float(c.nic_Bps[idx].min())
    fanout, divisor, latency, eff = 1, 1.0, 0.0, 1.0
    for s in sites.tolist():
        sel = idx if sites.size == 1 else idx[dcs == s]
        n_dom = int(np.unique(c.domain[sel]).size)
        if n_dom < 2:
            continue
        j = _turn_level(c.chain, sel)
        fanout = max(fanout, n_dom)
        divisor = max(divisor, float(c.osub[j, sel].max()))
        latency = max(latency, 2.0 * float(c.up_latency_s[j, sel].max()) + float(topo._site_nic_lat[s]))
        eff = min(eff, float(topo._site_eff[s]))
    rank_Bps = nic / divisor
    if fanout > 1:
        levels.append(CommLevel("scaleout", fanout, rank_Bps, latency, eff))
    if sites.size > 1:
        pair = np.ix_(sites, sites)
        cap = float(topo._dci_cap[pair].min())
        dci_lat = float(topo._dci_lat[pair].max())
        top = c.chain.shape[0] - 1
        lat = dci_lat + 2.0 * float(c.up_latency_s[top, idx].max()) + float(topo._site_nic_lat[sites].max())
        dci_eff = float(topo._dci_eff[pair].min())
        bw = min(cap / float(per_site.max()), rank_Bps)
        levels.append(CommLevel("dci", int(sites.size), bw, lat, dci_eff))
    if not levels:  # pragma: no cover - one level always exists when >1 domain
        raise TopologyError(f"topology {topo.name!r}: empty comm levels")
    return tuple(levels)
