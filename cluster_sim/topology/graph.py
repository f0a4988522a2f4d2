"""The :class:`Topology`: a networkx graph of cards and switches, plus per-card numpy arrays.

Cards are integer nodes ``0..N-1``; switches are strings (``"leaf:3"``, ``"spine:0"``,
``"sw:dom12"``, ``"dc1/core:0"``). Everything the cluster engine calls per job
(:meth:`Topology.comm_levels`, locations, card types) works on numpy arrays and never
searches the graph; the graph itself is built on first use of :attr:`Topology.graph`
(routes, validation, drawing), so a 100,000-card topology is cheap to create.

Builders (``cluster_sim.topology.builders``) are the normal way to make one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

from .. import catalog
from ..catalog import AcceleratorSpec, FabricSpec, SystemSpec
from ..errors import TopologyError
from . import paths
from .levels import CommLevel

__all__ = ["CardTable", "DciLink", "EdgeTable", "SiteInfo", "Topology"]

Node = int | str


@dataclass(frozen=True, eq=False)
class CardTable:
    """Per-card arrays (index = card id) and the switching hierarchy used by ``comm_levels``.

    ``chain[j, c]`` is the id of the block card ``c`` belongs to at switching level ``j``
    (level 0 = leaf, or rail group; the last row = the whole site). A group whose cards all
    share the block at level ``j`` (and not at ``j-1``) turns around at level ``j``:
    its per-rank bandwidth is divided by ``osub[j, c]`` (cumulative oversubscription of the
    uplinks below that level) and one way up to the turning switch costs ``up_latency_s[j, c]``.
    """

    system_names: tuple[str, ...]
    system_idx: np.ndarray
    dc: np.ndarray
    pod: np.ndarray
    leaf: np.ndarray
    node: np.ndarray
    domain: np.ndarray
    nic_Bps: np.ndarray
    chain: np.ndarray
    osub: np.ndarray
    up_latency_s: np.ndarray


@dataclass(frozen=True, eq=False)
class EdgeTable:
    """All links as parallel arrays; the row number is the link id.

    ``level`` is the finer name of the tier: ``scaleup``, ``nic`` (card to leaf),
    ``leaf-spine``, ``spine-core`` or ``dci``.
    """

    u: tuple[Node, ...]
    v: tuple[Node, ...]
    bandwidth_Bps: np.ndarray
    latency_s: np.ndarray
    efficiency: np.ndarray
    tier: tuple[str, ...]
    level: tuple[str, ...]


@dataclass(frozen=True)
class SiteInfo:
    """One data centre of a topology (single-site topologies have one, ``dc == 0``)."""

    dc: int
    fabric: FabricSpec
    top_switch: str | None
    switch_levels: tuple[str, ...]
    oversubscription: dict[str, float] = field(hash=False)
    bisection_Bps: float = 0.0


@dataclass(frozen=True)
class DciLink:
    """A data-centre interconnect between sites ``a`` and ``b`` (per direction)."""

    a: int
    b: int
    distance_m: float
    capacity_Bps: float
    latency_s: float
    convergence_ratio: float
    fabric: FabricSpec


class Topology:
    """A cluster interconnect: cards, switches, links, and fast per-card location arrays.

    Parameters
    ----------
    name : str
        Topology name (used in messages and file names).
    cards : CardTable
        Per-card arrays and switching hierarchy.
    edges : EdgeTable
        Every link, in a stable order (row = link id).
    switches : sequence of (str, dict)
        Switch node ids with their attributes.
    sites : sequence of SiteInfo
        One entry per data centre, indexed by ``dc``.
    dci : sequence of DciLink
        Links between sites (empty for one site).
    bisection_Bps : float
        Bisection bandwidth per direction (closed form, see ``docs/topology.md``).
    builder : str
        Name of the builder that made it; ``params`` its arguments (for summaries).
    """

    def __init__(self, *, name: str, cards: CardTable, edges: EdgeTable,
                 switches: Sequence[tuple[str, dict[str, Any]]], sites: Sequence[SiteInfo],
                 dci: Sequence[DciLink] = (), bisection_Bps: float, builder: str = "custom",
                 params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.cards = cards
        self.edges = edges
        self.switches = tuple(switches)
        self.sites = tuple(sites)
        self.dci = tuple(dci)
        self.bisection_Bps = float(bisection_Bps)
        self.builder = builder
        self.params = dict(params or {})
        systems = [catalog.system(s) for s in cards.system_names]
        self.card_types: list[str] = sorted({s.accelerator for s in systems})
        sys_to_type = np.array([self.card_types.index(s.accelerator) for s in systems], dtype=np.int32)
        self.card_type_idx: np.ndarray = sys_to_type[cards.system_idx]
        self.dc, self.pod, self.leaf = cards.dc, cards.pod, cards.leaf
        self.node, self.domain = cards.node, cards.domain
        accs = [catalog.accelerator(t) for t in self.card_types]
        self._systems = systems
        self._accs = accs
        self._type_scaleup_Bps = np.array([a.scaleup_bytes_per_s_uni for a in accs])
        self._type_scaleup_eff = np.array([a.scaleup_efficiency for a in accs])
        self._sys_scaleup_lat = np.array([s.scaleup_latency_s for s in systems])
        n_sites = len(self.sites)
        self._site_nic_lat = np.array([s.fabric.nic_latency_s for s in self.sites])
        self._site_eff = np.array([s.fabric.efficiency for s in self.sites])
        self._dci_cap = np.full((n_sites, n_sites), np.inf)
        self._dci_lat = np.zeros((n_sites, n_sites))
        self._dci_eff = np.ones((n_sites, n_sites))
        for d in self.dci:
            for i, j in ((d.a, d.b), (d.b, d.a)):
                self._dci_cap[i, j] = d.capacity_Bps
                self._dci_lat[i, j] = d.latency_s
                self._dci_eff[i, j] = d.fabric.efficiency

    def __repr__(self) -> str:
        return (f"Topology(name={self.name!r}, builder={self.builder!r}, n_cards={self.n_cards}, "
                f"links={len(self.edges.u)}, sites={len(self.sites)})")

    # ---- cards ---------------------------------------------------------------------------
    @property
    def n_cards(self) -> int:
        """Number of accelerator cards."""
        return int(self.cards.system_idx.size)

    @property
    def system_idx(self) -> np.ndarray:
        """Per-card index into ``cards.system_names``."""
        return self.cards.system_idx

    def _check(self, card: int) -> int:
        c = int(card)
        if not 0 <= c < self.n_cards:
            raise TopologyError(f"topology {self.name!r}: no card {card} (cards are 0..{self.n_cards - 1})")
        return c

    def accelerator(self, card: int) -> AcceleratorSpec:
        """The accelerator spec of ``card``."""
        return self._accs[int(self.card_type_idx[self._check(card)])]

    def system(self, card: int) -> SystemSpec:
        """The system (server / supernode) spec ``card`` sits in."""
        return self._systems[int(self.cards.system_idx[self._check(card)])]

    def nic_Bps(self, card: int) -> float:
        """Scale-out NIC line rate of ``card``, bytes/s per direction."""
        return float(self.cards.nic_Bps[self._check(card)])

    def cards_by_type(self) -> dict[str, np.ndarray]:
        """Card ids (sorted int arrays) by accelerator name, in ``card_types`` order."""
        return {t: np.flatnonzero(self.card_type_idx == i) for i, t in enumerate(self.card_types)}

    def domains(self) -> dict[int, np.ndarray]:
        """Card ids of each scale-up domain, by domain id (cards of a domain are contiguous)."""
        dom = self.domain
        starts = np.flatnonzero(np.r_[True, dom[1:] != dom[:-1]])
        ends = np.r_[starts[1:], dom.size]
        return {int(dom[s]): np.arange(s, e) for s, e in zip(starts, ends, strict=True)}

    # ---- links ---------------------------------------------------------------------------
    @functools.cached_property
    def links(self) -> list[tuple[Node, Node]]:
        """Every link as ``(u, v)``, in link-id order (stable across runs)."""
        return list(zip(self.edges.u, self.edges.v, strict=True))

    @functools.cached_property
    def _link_ids(self) -> dict[tuple[Node, Node], int]:
        ids: dict[tuple[Node, Node], int] = {}
        for i, (u, v) in enumerate(self.links):
            ids[(u, v)] = i
            ids[(v, u)] = i
        return ids

    def link_index(self, u: Node, v: Node) -> int:
        """Integer id of the link between ``u`` and ``v`` (either orientation)."""
        try:
            return self._link_ids[(u, v)]
        except KeyError:
            raise TopologyError(f"topology {self.name!r}: no link between {u!r} and {v!r}") from None

    @property
    def link_capacity_Bps(self) -> np.ndarray:
        """Capacity of every link, bytes/s per direction, indexed by link id."""
        return self.edges.bandwidth_Bps

    # ---- graph ---------------------------------------------------------------------------
    @functools.cached_property
    def graph(self) -> nx.Graph:
        """The networkx graph (built on first use; cards are ints, switches strings)."""
        g: nx.Graph[Any] = nx.Graph(name=self.name)
        c = self.cards
        names = c.system_names
        sys_type = [s.accelerator for s in self._systems]
        cols = zip(c.system_idx.tolist(), c.dc.tolist(), c.pod.tolist(), c.leaf.tolist(),
                   c.node.tolist(), c.domain.tolist(), strict=True)
        g.add_nodes_from(
            (i, {"kind": "card", "card_type": sys_type[s], "system": names[s], "dc": d, "pod": p,
                 "leaf": lf, "node": n, "domain": dm})
            for i, (s, d, p, lf, n, dm) in enumerate(cols))
        g.add_nodes_from((sid, {"kind": "switch", **attrs}) for sid, attrs in self.switches)
        e = self.edges
        g.add_edges_from(
            (u, v, {"bandwidth_Bps": bw, "latency_s": lat, "tier": t, "level": lv, "efficiency": ef,
                    "link": i})
            for i, (u, v, bw, lat, t, lv, ef) in enumerate(zip(
                e.u, e.v, e.bandwidth_Bps.tolist(), e.latency_s.tolist(), e.tier, e.level,
                e.efficiency.tolist(), strict=True)))
        return g

    def route(self, a: int, b: int) -> list[tuple[Node, Node]]:
        """Links ``(u, v)`` on a deterministic shortest path from card ``a`` to card ``b``."""
        return paths.route(self, self._check(a), self._check(b))

    def path_latency_s(self, a: int, b: int) -> float:
        """One-way latency card ``a`` -> ``b``: hop latencies + NIC latency if it leaves the domain."""
        return paths.route_latency_s(self, self.route(a, b))

    def path_bandwidth_Bps(self, a: int, b: int) -> float:
        """Bottleneck line rate on the route ``a`` -> ``b``, bytes/s per direction."""
        return paths.route_bandwidth_Bps(self, self.route(a, b))

    def comm_levels(self, cards: Sequence[int] | np.ndarray) -> tuple[CommLevel, ...]:
        """The group ``cards`` as collective levels, innermost first (see ``levels.py``)."""
        return paths.comm_levels(self, cards)

    def validate(self) -> None:
        """Raise :class:`TopologyError` naming the first card cut off from the others.

        "The others" is the connected component holding the most cards (ties: the lowest
        card id), so a single isolated card is named, not its neighbours.
        """
        if self.n_cards == 0:
            raise TopologyError(f"topology {self.name!r}: has no cards")
        g = self.graph
        if nx.is_connected(g):
            return
        # cards are int nodes, switches str: the cards of each component, sorted
        groups = [sorted(n for n in c if not isinstance(n, str)) for c in nx.connected_components(g)]
        main = max((cs for cs in groups if cs), key=lambda cs: (len(cs), -cs[0]))
        reached = set(main)
        for card in range(self.n_cards):
            if card not in reached:
                raise TopologyError(
                    f"topology {self.name!r}: card {card} (node {int(self.node[card])}, domain "
                    f"{int(self.domain[card])}) is not connected to card {main[0]} and the "
                    f"{len(main) - 1} cards reachable from it")

    # ---- summary -------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Plain-data summary (JSON-ready).

        Keys: ``name``, ``builder``, ``params``, ``n_cards``, ``cards_by_type``,
        ``scaleup_domains`` (per system: count x size), ``switches`` (count per level),
        ``tiers`` (per link level: links, capacity per direction, oversubscription =
        capacity of the level below / this level), ``bisection_Bps``, ``sites``, ``dci``.
        """
        return _summarize(self)


LEVEL_ORDER = ("scaleup", "nic", "leaf-spine", "spine-core", "dci")
LEVEL_TIER = {"scaleup": "scaleup", "nic": "scaleout", "leaf-spine": "scaleout",
              "spine-core": "scaleout", "dci": "dci"}


def _summarize(t: Topology) -> dict[str, Any]:
    c = t.cards
    counts = np.bincount(t.card_type_idx, minlength=len(t.card_types))
    domains = []
    for si, sname in enumerate(c.system_names):
        mask = c.system_idx == si
        n = int(mask.sum())
        if not n:
            continue
        spec = t._systems[si]
        k = int(np.unique(c.domain[mask]).size)
        domains.append({"system": sname, "accelerator": spec.accelerator, "count": k, "size": n // k,
                        "fabric": spec.scaleup_fabric,
                        "scaleup_Bps_per_card": catalog.accelerator(spec.accelerator).scaleup_bytes_per_s_uni})
    e = t.edges
    levels = np.asarray(e.level)
    tiers: list[dict[str, Any]] = []
    below = 0.0
    for lv in LEVEL_ORDER:
        m = levels == lv
        if not m.any():
            continue
        cap = float(e.bandwidth_Bps[m].sum())
        entry: dict[str, Any] = {"level": lv, "tier": LEVEL_TIER[lv], "links": int(m.sum()),
                                 "capacity_Bps": cap}
        if lv in ("leaf-spine", "spine-core"):
            entry["oversubscription"] = round(below / cap, 6)
        if lv == "dci":
            entry["oversubscription"] = max(d.convergence_ratio for d in t.dci)
        if lv != "scaleup":
            below = cap
        tiers.append(entry)
    switch_levels: dict[str, int] = {}
    for _, attrs in t.switches:
        switch_levels[attrs["level"]] = switch_levels.get(attrs["level"], 0) + 1
    site_cards = np.bincount(c.dc, minlength=len(t.sites))
    return {
        "name": t.name,
        "builder": t.builder,
        "params": t.params,
        "n_cards": t.n_cards,
        "cards_by_type": {name: int(n) for name, n in zip(t.card_types, counts.tolist(), strict=True)},
        "scaleup_domains": domains,
        "switches": switch_levels,
        "tiers": tiers,
        "bisection_Bps": t.bisection_Bps,
        "sites": [{"dc": s.dc, "cards": int(site_cards[s.dc]), "fabric": s.fabric.name,
                   "top_switch": s.top_switch, "switch_levels": list(s.switch_levels),
                   "oversubscription": dict(s.oversubscription), "bisection_Bps": s.bisection_Bps}
                  for s in t.sites],
        "dci": [{"sites": [d.a, d.b], "distance_km": d.distance_m / 1e3, "capacity_Bps": d.capacity_Bps,
                 "latency_s": d.latency_s, "convergence_ratio": d.convergence_ratio,
                 "fabric": d.fabric.name} for d in t.dci],
    }
