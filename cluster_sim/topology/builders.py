"""Deterministic topology builders: scale-up domains, fat-trees, rails, supernodes, tori, multi-DC.

Switches are aggregated where that keeps 100,000-card clusters fast without changing any
capacity: all spine switches above a group of leaves are one node (``spine:0`` in a 2-tier
tree, ``spine:<pod>`` per pod in a 3-tier tree, ``core:0`` above them), and each leaf has
one uplink edge carrying its aggregate uplink capacity (ECMP over all spines). Capacities
are per direction. A leaf switch of ``leaf_radix`` ports with oversubscription ``o`` serves
``floor(radix * o / (1 + o))`` card ports (32 of 64 non-blocking; 51 at 4:1) and whole
servers only; a rail group (scalable unit) has that many servers, one rail leaf per NIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import catalog
from ..catalog import FabricSpec, SystemSpec
from ..errors import CatalogError, TopologyError
from ..units import FIBRE_S_PER_KM
from .graph import CardTable, DciLink, EdgeTable, SiteInfo, Topology

__all__ = ["fat_tree", "heterogeneous", "multi_dc", "rail_optimized", "scaleup_domain",
           "supernode_cluster"]

DEFAULT_LEAF_RADIX = 64  # 25.6 Tb/s switch ASIC: 64 x 400G ports (DOMAIN.md 3.3)


@dataclass(frozen=True)
class _Part:
    system: SystemSpec
    nodes: int
    nic_Bps: float


def _system(name: str | SystemSpec) -> SystemSpec:
    if isinstance(name, SystemSpec):
        return name
    try:
        return catalog.system(name)
    except CatalogError as exc:
        raise TopologyError(str(exc)) from None


def _fabric(name: str | FabricSpec) -> FabricSpec:
    if isinstance(name, FabricSpec):
        return name
    try:
        return catalog.fabric(name)
    except CatalogError as exc:
        raise TopologyError(str(exc)) from None


def _part(system: str | SystemSpec, nodes: int, nic_gbps: float | None = None) -> _Part:
    s = _system(system)
    if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 1:
        raise TopologyError(f"nodes must be a positive integer, got {nodes!r}")
    if nodes % s.nodes_per_domain:
        raise TopologyError(f"{s.name}: nodes ({nodes}) must be a multiple of {s.nodes_per_domain} "
                            f"(nodes per scale-up domain of {s.domain_cards} cards)")
    nic = s.nic_bytes_per_s_per_card if nic_gbps is None else float(nic_gbps) * 1e9 / 8
    if nic <= 0:
        raise TopologyError(f"{s.name}: NIC bandwidth must be > 0")
    return _Part(s, int(nodes), nic)


def _oversub(value: float | Sequence[float]) -> tuple[float, float]:
    vals = [value] if isinstance(value, (int, float)) else list(value)
    if not 1 <= len(vals) <= 2 or any(isinstance(v, bool) or not v >= 1 for v in vals):
        raise TopologyError(f"oversubscription must be a number >= 1 or [leaf, spine], got {value!r}")
    return float(vals[0]), float(vals[1]) if len(vals) > 1 else 1.0


class _Edges:
    """Accumulates links as parallel lists (the row number becomes the link id)."""

    def __init__(self) -> None:
        self.u: list[Any] = []
        self.v: list[Any] = []
        self.cols: dict[str, list[np.ndarray]] = {"bw": [], "lat": [], "eff": []}
        self.tier: list[str] = []
        self.level: list[str] = []

    def add(self, u: list[Any], v: list[Any], bw: Any, lat: float, eff: float, tier: str, level: str) -> None:
        n = len(u)
        self.u.extend(u)
        self.v.extend(v)
        for key, val in (("bw", bw), ("lat", lat), ("eff", eff)):
            self.cols[key].append(np.broadcast_to(np.asarray(val, dtype=float), (n,)))
        self.tier.extend([tier] * n)
        self.level.extend([level] * n)

    def extend(self, te: EdgeTable, u: list[Any], v: list[Any]) -> None:
        """Append the rows of ``te`` with renamed endpoints."""
        self.u.extend(u)
        self.v.extend(v)
        for key, col in (("bw", te.bandwidth_Bps), ("lat", te.latency_s), ("eff", te.efficiency)):
            self.cols[key].append(col)
        self.tier.extend(te.tier)
        self.level.extend(te.level)

    def table(self) -> EdgeTable:
        def cat(key: str) -> np.ndarray:
            return np.concatenate(self.cols[key]) if self.cols[key] else np.zeros(0)

        return EdgeTable(tuple(self.u), tuple(self.v), cat("bw"), cat("lat"), cat("eff"),
                         tuple(self.tier), tuple(self.level))


def _greedy_half(n_i: np.ndarray, c_i: np.ndarray) -> float:
    """Cheapest cut putting half the cards on one side: whole subtrees by ascending uplink
    capacity per card (``c_i / n_i``), the last one fractionally. For a uniform tree this is
    half the aggregate uplink capacity of the level; it is a lower bound of the min cut when
    the cards cannot be halved along whole subtrees (docs/topology.md)."""
    n_i, c_i = np.asarray(n_i, dtype=float), np.asarray(c_i, dtype=float)
    order = np.argsort(c_i / n_i, kind="stable")
    n_s, c_s = n_i[order], c_i[order]
    target = n_i.sum() / 2
    cum = np.cumsum(n_s)
    k = int(np.searchsorted(cum, target - 1e-9))
    before = cum[k - 1] if k else 0.0
    return float(c_s[:k].sum() + c_s[k] * (target - before) / n_s[k])


def _scaleup_bisection(system: SystemSpec, n: int) -> float:
    uni = catalog.accelerator(system.accelerator).scaleup_bytes_per_s_uni
    if system.scaleup_fabric == "torus":  # cut across the longest ring: 2 links per ring (1 if k = 2)
        k = max(system.torus_dims)
        return 0.0 if k < 2 else n / k * 2 * uni / (2 * len(system.torus_dims))
    if system.scaleup_fabric == "mesh" and n > 1:
        return (n // 2) * (n - n // 2) * uni / (n - 1)
    return n / 2 * uni


def _build_site(parts: list[_Part], *, fabric: str | FabricSpec, attach: str, leaf_radix: int,
                oversubscription: float | Sequence[float], tiers: int | None, pod_leaves: int | None,
                name: str, builder: str, params: dict[str, Any]) -> Topology:
    """One data centre: ``attach`` is ``fat_tree``, ``rail``, ``flat`` (one switch) or ``none``."""
    fab = _fabric(fabric)
    if fab.tier != "scaleout":
        raise TopologyError(f"fabric {fab.name!r} is a {fab.tier} fabric, not a scale-out fabric")
    o_leaf, o_spine = _oversub(oversubscription)
    if isinstance(leaf_radix, bool) or not isinstance(leaf_radix, int) or leaf_radix < 2:
        raise TopologyError(f"leaf_radix must be an integer >= 2, got {leaf_radix!r}")
    hosts_per_leaf = max(1, int(leaf_radix * o_leaf / (1 + o_leaf) + 1e-9))
    hop = fab.latency_s
    # leaves per part first, to decide 2 vs 3 tiers
    per_leaf_nodes = [max(1, hosts_per_leaf // p.system.cards_per_node) for p in parts]
    n_leaves_total = sum(-(-p.nodes // k) for p, k in zip(parts, per_leaf_nodes, strict=True))
    if tiers is None:
        tiers = 2 if attach != "fat_tree" or n_leaves_total <= leaf_radix else 3
    if tiers not in (2, 3) or (tiers == 3 and attach != "fat_tree"):
        raise TopologyError(f"tiers must be 2 or 3 (3 only for fat trees), got {tiers!r}")
    pod_leaves = pod_leaves or max(1, leaf_radix // 2)
    three = tiers == 3

    sys_names = tuple(sorted({p.system.name for p in parts}))
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("sys", "pod", "leaf", "node", "domain", "nic")}
    leaf_pod: list[np.ndarray] = []
    edges = _Edges()
    switches: list[tuple[str, dict[str, Any]]] = []
    card0 = node0 = dom0 = leaf0 = pod0 = 0
    for pi, part in enumerate(parts):
        s, cpn, npd = part.system, part.system.cards_per_node, part.system.nodes_per_domain
        n = part.nodes * cpn
        node_local = np.repeat(np.arange(part.nodes), cpn)
        local = np.tile(np.arange(cpn), part.nodes)
        dom_local = node_local // npd
        if attach == "fat_tree":
            leaf_local = node_local // per_leaf_nodes[pi]
            n_leaf = int(leaf_local[-1]) + 1
            if three:  # pods of pod_leaves leaves, numbered across parts
                lp = pod0 + np.arange(n_leaf) // pod_leaves
                pod = lp[leaf_local]
                pod0 = int(lp[-1]) + 1
            else:  # 2 tiers: the pod is a label, the part index
                lp = np.full(n_leaf, pi)
                pod = np.full(n, pi)
            leaf_pod.append(lp)
        elif attach == "rail":
            su = node_local // hosts_per_leaf
            rails = s.nics_per_node
            leaf_local = su * rails + local * rails // cpn
            n_leaf = (int(su[-1]) + 1) * rails
            pod = pod0 + su
            leaf_pod.append(pod0 + np.arange(n_leaf) // rails)
            pod0 += int(su[-1]) + 1
        else:
            leaf_local = np.zeros(n, dtype=np.int64)  # "none" is reset to -1 below
            n_leaf = 1 if attach == "flat" else 0
            pod = np.zeros(n, dtype=np.int64)
            leaf_pod.append(np.zeros(n_leaf, dtype=np.int64))
        cols["sys"].append(np.full(n, sys_names.index(s.name)))
        cols["pod"].append(np.broadcast_to(pod, (n,)))
        cols["leaf"].append(leaf0 + leaf_local)
        cols["node"].append(node0 + node_local)
        cols["domain"].append(dom0 + dom_local)
        cols["nic"].append(np.full(n, part.nic_Bps))
        _scaleup_edges(edges, switches, s, card0, dom0, part.nodes // npd)
        card0, node0, dom0, leaf0 = card0 + n, node0 + part.nodes, dom0 + part.nodes // npd, leaf0 + n_leaf

    arr = {k: np.concatenate(v).astype(np.float64 if k == "nic" else np.int64) for k, v in cols.items()}
    n_cards = card0
    lp_all = np.concatenate(leaf_pod).astype(np.int64) if leaf_pod else np.zeros(0, dtype=np.int64)
    zeros = np.zeros(n_cards, dtype=np.int64)
    top: str | None
    block_caps: list[np.ndarray] = []
    if attach in ("fat_tree", "rail"):
        cards = list(range(n_cards))
        leaf_ids = [f"leaf:{i}" for i in range(leaf0)]
        leaf_name = np.asarray(leaf_ids, dtype=object)
        edges.add(cards, leaf_name[arr["leaf"]].tolist(), arr["nic"], hop, fab.efficiency, "scaleout", "nic")
        up = np.bincount(arr["leaf"], weights=arr["nic"], minlength=leaf0) / o_leaf
        parent = [f"spine:{p}" for p in lp_all.tolist()] if three else ["spine:0"] * leaf0
        switches += [(lid, {"level": "leaf", "dc": 0, "pod": int(p)}) for lid, p in zip(leaf_ids, lp_all.tolist(), strict=True)]
        edges.add(leaf_ids, parent, up, hop, fab.efficiency, "scaleout", "leaf-spine")
        if three:
            n_pod = int(lp_all.max()) + 1
            pod_up = np.bincount(lp_all, weights=up, minlength=n_pod) / o_spine
            spines = [f"spine:{p}" for p in range(n_pod)]
            switches += [(sid, {"level": "spine", "dc": 0, "pod": p}) for p, sid in enumerate(spines)]
            edges.add(spines, ["core:0"] * n_pod, pod_up, hop, fab.efficiency, "scaleout", "spine-core")
            switches.append(("core:0", {"level": "core", "dc": 0}))
            top = "core:0"
            chain = np.stack([arr["leaf"], arr["pod"], zeros])
            osub = [1.0, o_leaf, o_leaf * o_spine]
            block_caps = [up, pod_up]
        else:
            switches.append(("spine:0", {"level": "spine", "dc": 0}))
            top = "spine:0"
            if attach == "rail":
                chain = np.stack([arr["pod"], zeros])
                block_caps = [np.bincount(lp_all, weights=up)]
            else:
                chain = np.stack([arr["leaf"], zeros])
                block_caps = [up]
            osub = [1.0, o_leaf]
        levels = ("leaf", "spine", "core")[:tiers]
        site_osub = {"leaf": o_leaf, "spine": o_spine} if three else {"leaf": o_leaf}
    elif attach == "flat":
        edges.add(list(range(n_cards)), ["leaf:0"] * n_cards, arr["nic"], hop, fab.efficiency, "scaleout", "nic")
        switches.append(("leaf:0", {"level": "leaf", "dc": 0, "pod": 0}))
        top, chain, osub, levels, site_osub = "leaf:0", zeros[None, :], [1.0], ("leaf",), {"leaf": 1.0}
    else:
        arr["leaf"] = np.full(n_cards, -1, dtype=np.int64)
        top, chain, osub, levels, site_osub = None, zeros[None, :], [1.0], (), {}
    n_rows = chain.shape[0]
    hop_rows = hop if attach != "none" else 0.0
    card_table = CardTable(
        system_names=sys_names, system_idx=arr["sys"].astype(np.int32), dc=zeros.copy(),
        pod=arr["pod"], leaf=arr["leaf"], node=arr["node"], domain=arr["domain"], nic_Bps=arr["nic"],
        chain=chain.astype(np.int64),
        osub=np.repeat(np.asarray(osub)[:, None], n_cards, axis=1),
        up_latency_s=np.repeat((np.arange(1, n_rows + 1) * hop_rows)[:, None], n_cards, axis=1))
    bisection = _site_bisection(parts, arr, chain, block_caps, dom0)
    site = SiteInfo(0, fab, top, levels, site_osub, bisection)
    return Topology(name=name, cards=card_table, edges=edges.table(), switches=switches, sites=[site],
                    bisection_Bps=bisection, builder=builder, params=params)


def _scaleup_edges(edges: _Edges, switches: list[tuple[str, dict[str, Any]]], s: SystemSpec,
                   card0: int, dom0: int, n_dom: int) -> None:
    size = s.domain_cards
    if size < 2:
        return
    acc = catalog.accelerator(s.accelerator)
    uni = acc.scaleup_bytes_per_s_uni
    bases = card0 + np.arange(n_dom) * size
    if s.scaleup_fabric == "torus":  # neighbours in every dimension, wrap-around included
        link = uni / (2 * len(s.torus_dims))  # a chip's ICI bandwidth over its 2 links per dimension
        coords = np.indices(s.torus_dims).reshape(len(s.torus_dims), -1)
        for d, k in enumerate(s.torus_dims):
            if k < 2:
                continue
            nxt = coords.copy()
            nxt[d] = (nxt[d] + 1) % k
            iu = np.arange(size)
            ju = np.ravel_multi_index(tuple(nxt), s.torus_dims)
            keep = iu < ju if k == 2 else np.ones(size, dtype=bool)  # k = 2: both links to one neighbour
            edges.add((bases[:, None] + iu[keep]).ravel().tolist(), (bases[:, None] + ju[keep]).ravel().tolist(),
                      link * (2 if k == 2 else 1), s.scaleup_latency_s, acc.scaleup_efficiency, "scaleup",
                      "scaleup")
        return
    if s.scaleup_fabric == "mesh":
        iu, ju = np.triu_indices(size, 1)
        u = (bases[:, None] + iu).ravel().tolist()
        v = (bases[:, None] + ju).ravel().tolist()
        edges.add(u, v, uni / (size - 1), s.scaleup_latency_s, acc.scaleup_efficiency, "scaleup", "scaleup")
        return
    ids = [f"sw:dom{d}" for d in range(dom0, dom0 + n_dom)]
    switches += [(sid, {"level": "scaleup", "dc": 0, "domain": dom0 + i, "system": s.name})
                 for i, sid in enumerate(ids)]
    edges.add(list(range(card0, card0 + n_dom * size)), np.repeat(np.asarray(ids, dtype=object), size).tolist(),
              uni, s.scaleup_latency_s / 2, acc.scaleup_efficiency, "scaleup", "scaleup")


def _site_bisection(parts: list[_Part], arr: dict[str, np.ndarray], chain: np.ndarray,
                    block_caps: list[np.ndarray], n_domains: int) -> float:
    """Closed-form bisection of one site: at the highest switching level with >= 2 subtrees,
    :func:`_greedy_half` over them; one domain: its scale-up fabric."""
    if n_domains == 1:
        return _scaleup_bisection(parts[0].system, arr["nic"].size)
    nic = arr["nic"]
    for r in range(len(block_caps) - 1, -1, -1):
        size = block_caps[r].size
        n_i = np.bincount(chain[r], minlength=size)
        used = n_i > 0
        if used.sum() < 2:
            continue
        return _greedy_half(n_i[used], block_caps[r][used])
    return _greedy_half(np.ones(nic.size), nic)


def _default_name(kind: str, parts: list[_Part]) -> str:
    return f"{kind}-" + "+".join(f"{p.nodes}x{p.system.name}" for p in parts)


# ---- public builders ----------------------------------------------------------------------
def scaleup_domain(system: str, count: int = 1, *, fabric: str = "roce", nic_gbps: float | None = None,
                   name: str | None = None) -> Topology:
    """``count`` scale-up domains of ``system`` (one 8-GPU server, one NVL72, one supernode).

    With ``count > 1`` the domains' NICs share one non-blocking switch (``leaf:0``) of ``fabric``.
    """
    s = _system(system)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise TopologyError(f"count must be a positive integer, got {count!r}")
    parts = [_part(s, count * s.nodes_per_domain, nic_gbps)]
    return _build_site(parts, fabric=fabric, attach="flat" if count > 1 else "none",
                       leaf_radix=DEFAULT_LEAF_RADIX, oversubscription=1.0, tiers=None, pod_leaves=None,
                       name=name or f"{s.name}-x{count}", builder="scaleup_domain",
                       params={"system": s.name, "count": count, "fabric": fabric})


def fat_tree(system: str, nodes: int, *, fabric: str = "ib_ndr",
             oversubscription: float | Sequence[float] = 1.0, leaf_radix: int = DEFAULT_LEAF_RADIX,
             tiers: int | None = None, pod_leaves: int | None = None, nic_gbps: float | None = None,
             name: str | None = None) -> Topology:
    """A fat-tree (folded Clos) of ``nodes`` servers of ``system``: all NICs of a server on
    one leaf; 2 tiers, or 3 (pods of ``pod_leaves`` leaves) when there are more leaves than
    ``leaf_radix`` (or ``tiers=3``). ``oversubscription`` = leaf down:up (or ``[leaf, spine]``)."""
    parts = [_part(system, nodes, nic_gbps)]
    return _build_site(parts, fabric=fabric, attach="fat_tree", leaf_radix=leaf_radix,
                       oversubscription=oversubscription, tiers=tiers, pod_leaves=pod_leaves,
                       name=name or _default_name("fat_tree", parts), builder="fat_tree",
                       params={"system": parts[0].system.name, "nodes": nodes, "fabric": fabric,
                               "oversubscription": oversubscription, "leaf_radix": leaf_radix,
                               "tiers": tiers})


def rail_optimized(system: str, nodes: int, *, fabric: str = "ib_ndr",
                   oversubscription: float = 1.0, leaf_radix: int = DEFAULT_LEAF_RADIX,
                   nic_gbps: float | None = None, name: str | None = None) -> Topology:
    """Rail-optimized fabric (DOMAIN.md 3.3): servers in scalable units (SUs) of
    ``floor(radix*o/(1+o))``; NIC ``i`` of every server of an SU on rail leaf ``i``; rail
    leaves under one spine layer. ``pod`` = SU."""
    parts = [_part(system, nodes, nic_gbps)]
    return _build_site(parts, fabric=fabric, attach="rail", leaf_radix=leaf_radix,
                       oversubscription=oversubscription, tiers=2, pod_leaves=None,
                       name=name or _default_name("rail", parts), builder="rail",
                       params={"system": parts[0].system.name, "nodes": nodes, "fabric": fabric,
                               "oversubscription": oversubscription, "leaf_radix": leaf_radix})


def supernode_cluster(system: str = "cloudmatrix384", supernodes: int = 1, *, fabric: str = "roce",
                      oversubscription: float = 1.0, leaf_radix: int = DEFAULT_LEAF_RADIX,
                      nic_gbps: float | None = None, name: str | None = None) -> Topology:
    """``supernodes`` supernodes of ``system`` (scale-up domain = whole supernode), joined by
    a scale-out fat-tree of ``fabric`` (RoCE for CloudMatrix384)."""
    s = _system(system)
    if isinstance(supernodes, bool) or not isinstance(supernodes, int) or supernodes < 1:
        raise TopologyError(f"supernodes must be a positive integer, got {supernodes!r}")
    parts = [_part(s, supernodes * s.nodes_per_domain, nic_gbps)]
    return _build_site(parts, fabric=fabric, attach="fat_tree", leaf_radix=leaf_radix,
                       oversubscription=oversubscription, tiers=None, pod_leaves=None,
                       name=name or f"{s.name}-x{supernodes}", builder="supernode",
                       params={"system": s.name, "supernodes": supernodes, "fabric": fabric,
                               "oversubscription": oversubscription})


def heterogeneous(parts: Sequence[Any], *, fabric: str = "roce",
                  oversubscription: float | Sequence[float] = 1.0, leaf_radix: int = DEFAULT_LEAF_RADIX,
                  tiers: int | None = None, pod_leaves: int | None = None,
                  name: str | None = None) -> Topology:
    """Pods of different systems under one spine layer. ``parts`` items are
    ``(system, nodes)``, ``(system, nodes, nic_gbps)`` or dicts with those keys. Leaves (and
    3-tier pods) never mix systems; ``pod`` = part index in a 2-tier tree."""
    if not parts:
        raise TopologyError("heterogeneous needs at least one part")
    ps = [_part(**p) if isinstance(p, dict) else _part(*p) for p in parts]
    return _build_site(ps, fabric=fabric, attach="fat_tree", leaf_radix=leaf_radix,
                       oversubscription=oversubscription, tiers=tiers, pod_leaves=pod_leaves,
                       name=name or _default_name("heterogeneous", ps), builder="heterogeneous",
                       params={"parts": [[p.system.name, p.nodes] for p in ps], "fabric": fabric,
                               "oversubscription": oversubscription, "tiers": tiers})


def multi_dc(sites: Sequence[Any], distance_km: float | Sequence[Sequence[float]], *,
             convergence_ratio: float = 16.0, dci_gbps: float | None = None, dci_fabric: str = "dci",
             name: str | None = None) -> Topology:
    """Sites joined pairwise by DCI links (DOMAIN.md 1 scenario 9, 2 "跨域带宽收敛比").

    Each site is a single-site :class:`Topology`, a topology file path or an inline spec dict.
    DCI capacity per pair (per direction) = ``dci_gbps`` if given, else the smaller site's total
    NIC bandwidth / ``convergence_ratio``; latency = distance x 5 us/km + the DCI fabric's
    equipment latency. ``distance_km`` is one number (all pairs) or a symmetric matrix.
    """
    topos = [_as_topology(s) for s in sites]
    fab = _fabric(dci_fabric)
    if fab.tier != "dci":
        raise TopologyError(f"dci_fabric {fab.name!r} is a {fab.tier} fabric, not a DCI fabric")
    k = len(topos)
    if k < 2:
        raise TopologyError(f"multi_dc needs at least 2 sites, got {k}")
    for i, t in enumerate(topos):
        if len(t.sites) != 1 or t.sites[0].top_switch is None:
            raise TopologyError(f"sites[{i}] ({t.name!r}) must be a single site with a scale-out network")
    dist = np.asarray(distance_km, dtype=float)
    dist = np.full((k, k), float(dist)) if dist.ndim == 0 else dist
    if dist.shape != (k, k) or not np.allclose(dist, dist.T) or (dist < 0).any():
        raise TopologyError(f"distance_km must be one number or a symmetric {k}x{k} matrix of km >= 0")
    if dci_gbps is None and not convergence_ratio >= 1:
        raise TopologyError(f"convergence_ratio must be >= 1, got {convergence_ratio!r}")
    if dci_gbps is not None and not dci_gbps > 0:
        raise TopologyError(f"dci_gbps must be > 0, got {dci_gbps!r}")
    merged = _merge(topos)
    nic = [float(t.cards.nic_Bps.sum()) for t in topos]
    tops = [f"dc{i}/{t.sites[0].top_switch}" for i, t in enumerate(topos)]
    links: list[DciLink] = []
    for a in range(k):
        for b in range(a + 1, k):
            cap = dci_gbps * 1e9 / 8 if dci_gbps is not None else min(nic[a], nic[b]) / convergence_ratio
            lat = dist[a, b] * FIBRE_S_PER_KM + fab.latency_s
            links.append(DciLink(a, b, dist[a, b] * 1e3, cap, lat, min(nic[a], nic[b]) / cap, fab))
    e = merged["edges"]
    e.add([tops[d.a] for d in links], [tops[d.b] for d in links], [d.capacity_Bps for d in links],
          np.array([d.latency_s for d in links]), fab.efficiency, "dci", "dci")
    site_n = np.array([t.n_cards for t in topos], dtype=float)
    best = sum(t.bisection_Bps for t in topos)  # every site cut in half
    if k <= 16:  # or whole sites on each side (balanced only)
        for mask in range(1, 2 ** (k - 1)):
            side = np.array([(mask >> i) & 1 for i in range(k)], dtype=bool)
            if abs(site_n[side].sum() - site_n.sum() / 2) < 0.5:
                best = min(best, sum(d.capacity_Bps for d in links if side[d.a] != side[d.b]))
    return Topology(name=name or "multi_dc-" + "+".join(t.name for t in topos), cards=merged["cards"],
                    edges=e.table(), switches=merged["switches"], sites=merged["sites"], dci=links,
                    bisection_Bps=best, builder="multi_dc",
                    params={"sites": [t.name for t in topos], "distance_km": dist.tolist(),
                            "convergence_ratio": convergence_ratio, "dci_gbps": dci_gbps,
                            "dci_fabric": fab.name})


def _merge(topos: list[Topology]) -> dict[str, Any]:
    """Concatenate single-site topologies: cards renumbered in site order, location ids
    offset, switch ids prefixed ``dc<i>/``, hierarchy rows padded with the site's top row."""
    sys_names = tuple(sorted({n for t in topos for n in t.cards.system_names}))
    rows = max(t.cards.chain.shape[0] for t in topos)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("sys", "dc", "pod", "leaf", "node", "domain", "nic",
                                                           "chain", "osub", "uplat")}
    edges = _Edges()
    switches: list[tuple[str, dict[str, Any]]] = []
    sites: list[SiteInfo] = []
    off = dict.fromkeys(("card", "pod", "leaf", "node", "domain", "block"), 0)
    for i, t in enumerate(topos):
        c = t.cards
        remap = np.array([sys_names.index(n) for n in c.system_names])
        cols["sys"].append(remap[c.system_idx])
        cols["dc"].append(np.full(t.n_cards, i))
        for key in ("pod", "node", "domain"):
            cols[key].append(getattr(c, key) + off[key])
        cols["leaf"].append(np.where(c.leaf >= 0, c.leaf + off["leaf"], -1))
        cols["nic"].append(c.nic_Bps)
        pad = rows - c.chain.shape[0]
        for key, src in (("chain", c.chain + off["block"]), ("osub", c.osub), ("uplat", c.up_latency_s)):
            cols[key].append(np.concatenate([src, np.repeat(src[-1:], pad, axis=0)]) if pad else src)

        def rename(x: Any, i: int = i) -> Any:
            return x + off["card"] if isinstance(x, int) else f"dc{i}/{x}"

        te = t.edges
        edges.extend(te, [rename(u) for u in te.u], [rename(v) for v in te.v])
        switches += [(rename(sid), {**attrs, "dc": i}) for sid, attrs in t.switches]
        s0 = t.sites[0]
        sites.append(SiteInfo(i, s0.fabric, rename(s0.top_switch), s0.switch_levels, s0.oversubscription,
                              s0.bisection_Bps))
        for key in ("pod", "leaf", "node", "domain"):
            off[key] += int(getattr(c, key).max()) + 1
        off["card"] += t.n_cards
        off["block"] += int(c.chain.max()) + 1
    cat = {k: np.concatenate(v, axis=1 if k in ("chain", "osub", "uplat") else 0) for k, v in cols.items()}
    cards = CardTable(sys_names, cat["sys"].astype(np.int32), cat["dc"].astype(np.int64), cat["pod"],
                      cat["leaf"], cat["node"], cat["domain"], cat["nic"], cat["chain"], cat["osub"],
                      cat["uplat"])
    return {"cards": cards, "edges": edges, "switches": switches, "sites": sites}


def _as_topology(site: Any) -> Topology:
    if isinstance(site, Topology):
        return site
    if isinstance(site, (str, Path, dict)):
        from .files import load_topology

        return load_topology(site)
    raise TopologyError(f"a site must be a Topology, a file path or a spec dict, got {type(site).__name__}")
