"""The static cluster the engine schedules on: :class:`ClusterLayout`.

Per-card numpy arrays (type, node, scale-up domain, leaf switch, data centre) plus per-type
speeds and feeds, per-leaf uplink capacity and, for node inventories with host resources, per-node
CPU and memory. Built from a :class:`~cluster_sim.topology.Topology`
(:func:`layout_from_topology`) or from a plain node inventory such as the Alibaba openb node list
(:func:`layout_from_node_groups`). The live allocation state is
:class:`~cluster_sim.engine.cluster.state.ClusterState`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...catalog import accelerator
from ...errors import CatalogError, TopologyError
from ...policies.base import readonly

__all__ = ["ASSUMED_TYPES", "UNLIMITED", "ClusterLayout", "layout_from_node_groups", "layout_from_topology",
           "type_specs"]

UNLIMITED = 1 << 62
"""Free host CPU / memory of a node whose host resources are not modelled."""


ASSUMED_TYPES: dict[str, dict[str, float]] = {
    # Alibaba openb G2/G3 and PAI MISC are undisclosed; assumed V100-class (125 TFLOP/s dense
    # 16-bit, 8-GPU NVLink-less PCIe boxes: 32 GB/s scale-up, 25 Gbit/s NIC). No source: an assumption.
    "G2": {"peak_flops": 125e12, "scaleup_Bps": 32e9, "nic_Bps": 25e9 / 8},
    "G3": {"peak_flops": 125e12, "scaleup_Bps": 32e9, "nic_Bps": 25e9 / 8},
    "MISC": {"peak_flops": 8.7e12, "scaleup_Bps": 16e9, "nic_Bps": 25e9 / 8},
}
"""Card types absent from the catalog: assumed dense peak FLOP/s, scale-up and NIC bytes/s."""
DEFAULT_EFFICIENCY = 0.75
PCIE_BPS = 32e9  # cards without a scale-up fabric talk over PCIe 4.0 x16 (~32 GB/s per direction)


def type_specs(name: str) -> tuple[float, float, float, float, bool]:
    """``(peak_flops, achievable_flops, scaleup_Bps, nic_Bps, assumed)`` for a card type name."""
    try:
        spec = accelerator(name)
    except CatalogError:
        a = ASSUMED_TYPES.get(name, ASSUMED_TYPES["G2"])
        return a["peak_flops"], a["peak_flops"] * DEFAULT_EFFICIENCY, a["scaleup_Bps"], a["nic_Bps"], True
    scaleup = spec.scaleup_bytes_per_s_uni or PCIE_BPS
    nic = spec.nic_bytes_per_s or 25e9 / 8  # a card without a NIC rate: 25G, noted in the run's notes
    return spec.peak_flops, spec.achievable_flops, scaleup, nic, False


def _dense_ids(a: Any) -> np.ndarray:
    _, inv = np.unique(np.asarray(a), return_inverse=True)
    return inv.reshape(-1).astype(np.int32)


@dataclass(frozen=True, eq=False)
class ClusterLayout:
    """Static description of the cards (all arrays per card, ids dense from 0).

    Parameters
    ----------
    name : str
    card_types : tuple of str
        Type vocabulary; ``card_type[c]`` indexes it.
    card_type, card_node, card_domain, card_leaf, card_dc : numpy.ndarray
        Per-card type index, server, scale-up domain, leaf switch and data centre.
    leaf_uplink_Bps : numpy.ndarray
        Per leaf: capacity of its uplinks to the spine, bytes/s per direction (inf = non-blocking).
    topology : Topology or None
        The topology the layout came from (used for explicit model jobs' step estimates).
    node_cpu_milli, node_memory_mib : numpy.ndarray or None
        Per node: host CPU (thousandths of a core) and memory (MiB) capacity; None = not modelled
        (unlimited); a negative entry = that node's value is unknown (unlimited).
    """

    name: str
    card_types: tuple[str, ...]
    card_type: np.ndarray
    card_node: np.ndarray
    card_domain: np.ndarray
    card_leaf: np.ndarray
    card_dc: np.ndarray
    leaf_uplink_Bps: np.ndarray
    topology: Any = field(default=None, repr=False)
    node_cpu_milli: np.ndarray | None = field(default=None, repr=False)
    node_memory_mib: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = self.card_type.size
        s = object.__setattr__
        n_nodes = int(np.asarray(self.card_node).max()) + 1 if n else 0
        for f in ("node_cpu_milli", "node_memory_mib"):
            v = getattr(self, f)
            if v is not None:
                a = np.asarray(v, dtype=np.int64)
                if a.shape != (n_nodes,):
                    raise TopologyError(f"layout {self.name!r}: {f} has shape {a.shape}, expected ({n_nodes},)")
                s(self, f, readonly(a))
        for f in ("card_type", "card_node", "card_domain", "card_leaf", "card_dc"):
            a = np.asarray(getattr(self, f))
            if a.shape != (n,):
                raise TopologyError(f"layout {self.name!r}: {f} has shape {a.shape}, expected ({n},)")
            s(self, f, readonly(a.astype(np.int32)))
        if n == 0:
            raise TopologyError(f"layout {self.name!r}: no cards")
        if self.card_type.max() >= len(self.card_types) or self.card_type.min() < 0:
            raise TopologyError(f"layout {self.name!r}: card_type index out of range")
        order = np.lexsort((self.card_type, self.card_node))
        nodes, types = self.card_node[order], self.card_type[order]
        mixed = (nodes[1:] == nodes[:-1]) & (types[1:] != types[:-1])
        if mixed.any():
            raise TopologyError(f"layout {self.name!r}: node {int(nodes[1:][mixed][0])} mixes card types")
        up = np.asarray(self.leaf_uplink_Bps, dtype=np.float64)
        if up.shape != (int(self.card_leaf.max()) + 1,):
            raise TopologyError(f"layout {self.name!r}: leaf_uplink_Bps needs one value per leaf")
        s(self, "leaf_uplink_Bps", readonly(up))
        specs = [type_specs(t) for t in self.card_types]
        s(self, "type_peak_flops", readonly(np.array([x[0] for x in specs])))
        s(self, "type_achievable_flops", readonly(np.array([x[1] for x in specs])))
        s(self, "type_scaleup_Bps", readonly(np.array([x[2] for x in specs])))
        s(self, "type_nic_Bps", readonly(np.array([x[3] for x in specs])))
        s(self, "assumed_types", tuple(t for t, x in zip(self.card_types, specs, strict=True) if x[4]))

    type_peak_flops: np.ndarray = field(init=False, repr=False)
    type_achievable_flops: np.ndarray = field(init=False, repr=False)
    type_scaleup_Bps: np.ndarray = field(init=False, repr=False)
    type_nic_Bps: np.ndarray = field(init=False, repr=False)
    assumed_types: tuple[str, ...] = field(init=False, default=())

    @property
    def n_cards(self) -> int:
        """Number of cards."""
        return int(self.card_type.size)

    def capacity_by_type(self) -> dict[str, int]:
        """Cards per type name."""
        counts = np.bincount(self.card_type, minlength=len(self.card_types))
        return {t: int(c) for t, c in zip(self.card_types, counts, strict=True)}


def layout_from_node_groups(groups: Sequence[tuple[Any, ...]], *, name: str = "nodes",
                            nodes_per_leaf: int = 32, oversubscription: float = 1.0) -> ClusterLayout:
    """A layout from ``[(card_type, cards_per_node, node_count), ...]`` (e.g. an openb inventory).

    Each node is its own scale-up domain; consecutive nodes of a group share a leaf switch,
    ``nodes_per_leaf`` to a leaf, whose uplink carries its cards' NIC bandwidth divided by
    ``oversubscription``. Groups may carry host resources per node, ``(card_type,
    cards_per_node, node_count, cpu_milli, memory_mib)`` (a negative value = unknown, unlimited);
    then every group must, and the layout models host CPU and memory.
    """
    types = tuple(dict.fromkeys(str(g[0]) for g in groups))
    sizes = {len(g) for g in groups}
    if not sizes <= {3, 5} or len(sizes) > 1:
        raise TopologyError(f"layout {name!r}: groups must all be (type, cards, nodes) or all "
                            "(type, cards, nodes, cpu_milli, memory_mib)")
    host = sizes == {5}
    ctype, cnode, cleaf = [], [], []
    ncpu: list[int] = []
    nmem: list[int] = []
    node = leaf = 0
    for g in groups:
        t, per_node, count = g[0], int(g[1]), int(g[2])
        if host:
            ncpu += [int(g[3])] * max(count, 0)
            nmem += [int(g[4])] * max(count, 0)
        if per_node < 1 or count < 0:
            raise TopologyError(f"layout {name!r}: group {(t, per_node, count)}: bad size")
        for i in range(int(count)):
            if i and i % nodes_per_leaf == 0:
                leaf += 1
            ctype.append(np.full(per_node, types.index(str(t))))
            cnode.append(np.full(per_node, node))
            cleaf.append(np.full(per_node, leaf))
            node += 1
        leaf += 1 if count else 0
    if not ctype:
        raise TopologyError(f"layout {name!r}: no cards")
    card_type, card_node = np.concatenate(ctype), np.concatenate(cnode)
    card_leaf = _dense_ids(np.concatenate(cleaf))
    nic = np.array([type_specs(t)[3] for t in types])[card_type]
    uplink = np.bincount(card_leaf, weights=nic) / oversubscription
    if oversubscription <= 1.0:
        uplink[:] = np.inf
    return ClusterLayout(name=name, card_types=types, card_type=card_type, card_node=card_node,
                         card_domain=card_node, card_leaf=card_leaf,
                         card_dc=np.zeros(card_type.size, np.int32), leaf_uplink_Bps=uplink,
                         node_cpu_milli=np.array(ncpu, np.int64) if host else None,
                         node_memory_mib=np.array(nmem, np.int64) if host else None)


def _topology_blocks(topo: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-card first switching block (leaf, or rail group) and each block's uplink capacity.

    The capacity of a block is the sum of its leaf switches' ``leaf-spine`` links; a block whose
    uplinks can carry all its cards' NIC bandwidth (non-blocking), or that has none, gets inf.
    """
    cards = getattr(topo, "cards", None)
    chain = getattr(cards, "chain", None)
    raw = np.asarray(chain[0]) if chain is not None else np.asarray(topo.leaf)
    uniq, block = np.unique(raw, return_inverse=True)
    block = block.reshape(-1)
    cap = np.full(uniq.size, np.inf)
    edges = getattr(topo, "edges", None)
    if edges is None:
        return block, cap
    level = np.asarray(edges.level, dtype=object)
    up_rows = np.flatnonzero(level == "leaf-spine")
    nic_rows = np.flatnonzero(level == "nic")
    if up_rows.size == 0 or nic_rows.size == 0:
        return block, cap
    up: dict[Any, float] = {}
    for r in up_rows.tolist():
        up[edges.u[r]] = up.get(edges.u[r], 0.0) + float(edges.bandwidth_Bps[r])
    nic_card = np.array([edges.u[r] for r in nic_rows.tolist()], dtype=np.int64)
    nic_leaf = [edges.v[r] for r in nic_rows.tolist()]
    pairs = sorted(set(zip(block[nic_card].tolist(), nic_leaf, strict=True)), key=lambda x: (x[0], str(x[1])))
    total = np.zeros(uniq.size)
    for b, leaf in pairs:
        total[b] += up.get(leaf, np.inf)
    nic_sum = np.bincount(block[nic_card], weights=np.asarray(edges.bandwidth_Bps)[nic_rows], minlength=uniq.size)
    finite = total < nic_sum * (1 - 1e-9)
    cap[finite] = total[finite]
    return block, cap


def layout_from_topology(topo: Any) -> ClusterLayout:
    """A layout from a :class:`~cluster_sim.topology.Topology` (per-card location arrays).

    The layout's "leaf" is the topology's first switching block (a leaf switch in a fat tree, a
    rail group in a rail-optimised fabric); only its uplink oversubscription is modelled.
    """
    block, cap = _topology_blocks(topo)
    return ClusterLayout(
        name=str(getattr(topo, "name", "topology")), card_types=tuple(topo.card_types),
        card_type=np.asarray(topo.card_type_idx), card_node=_dense_ids(topo.node),
        card_domain=_dense_ids(topo.domain), card_leaf=block, card_dc=_dense_ids(topo.dc),
        leaf_uplink_Bps=cap, topology=topo)
