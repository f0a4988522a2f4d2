"""How fast a training job progresses on its allocation (work-seconds per wall second).

``speed = type_ratio / ((1 - c) + c_in * r_in + c_x * r_x)`` (docs/engine.md):

* ``type_ratio``: throughput of the job on the *slowest* allocated card type relative to its
  reference type (the type its ``duration_s`` is quoted for): the ratio of the perf model's step
  times of the job's size class on the two types (:mod:`.terms`, :mod:`cluster_sim.perf.size_classes`).
* ``c``: the exposed-communication share of a step at the reference placement, from the same
  estimate's breakdown; ``c_x`` is its scale-out part (the step's growth when the NIC bandwidth
  halves; 0 for a job inside one scale-up domain) and ``c_in = c - c_x`` stays inside domains.
  Explicit model jobs have their own speed hook (``job_speed``); where the size classes cannot
  run (no topology, an uncatalogued type) the :mod:`.terms` ``ASSUMED_*`` fallback is used, noted.
* ``r_in``: 1 when the job uses the fewest domains it could. Otherwise the in-domain traffic runs
  as a hierarchical (NCCL-class) all-reduce over the actual placement and only its cross-piece
  part pays NIC speed: :func:`split_ratio` (below, and docs/engine.md).
* ``r_x = 1 / share``: ``share`` in (0, 1] is the worst ratio, over the leaves the job spans, of
  the max-min fair rate its flow gets on that leaf's uplink to the demand (its cards there times
  the NIC line rate). Jobs under one leaf, or under non-blocking leaves, have ``share = 1``.

Split placement (``r_in``). The in-domain collective runs in groups of ``g = min(n, D)`` cards
(``D`` the largest scale-up domain of the job), ranks numbered domain by domain, largest piece
first (ties: domain id), so full domains hold whole groups. A group whose ``g`` cards lie in
pieces of ``m_1..m_d`` cards over ``d > 1`` domains runs, per piece ``i``
(``network/collectives.py``'s ``all_reduce(algorithm="hierarchical")`` over two levels, bandwidth
terms): a reduce-scatter inside the piece, ``(m_i-1)/m_i · S/B_up``, an all-reduce of the
``S/m_i`` shard across the ``d`` pieces over the NICs, ``2(d-1)/d · (S/m_i)/(B_nic · share)``,
and an all-gather inside the piece, ``(m_i-1)/m_i · S/B_up``. Unsplit it is one ring in a domain,
``2(g-1)/g · S/B_up``. With ``rho = B_up / (B_nic · share)`` (``nic_ratio / share``: on a
topology, line rate x library efficiency of its ``scaleup`` over its ``scaleout`` level,
:meth:`.terms.TermsTable.nic_ratio`; on a node inventory the layout's raw ratio) and the
slowest piece of the slowest group setting the pace::

    r_in = min(rho, g/(g-1) · max over groups, pieces (1 + ((d-1)/d · rho - 1) / m_i))

(the ``min``: a flat ring over the split placement runs at NIC speed, ratio ``rho``, and the
library takes the cheaper schedule, as ``all_reduce(algorithm="auto")`` does; it matters only for
``rho`` near 1). The bracket is monotone in ``m_i``, so only each group's smallest and largest piece are kept
(:attr:`PlacementInfo.cross`, computed once per placement, O(domains of the job)). One piece
gives 1; ``g`` pieces of one card give ``rho`` (a flat ring at NIC speed, the old penalty); two
pieces of ``g/2`` give ``(g - 2 + rho) / (g - 1)``. Latency (alpha) terms are ignored, as the
fraction ``c`` is a bandwidth share.

Busy (docs/engine.md, "Busy cards"): a running job's cards count as busy in the share
:func:`busy_fraction` ``= rate / isolated_speed`` (clipped to [0, 1]), where the isolated speed is
``type_ratio``, its speed at the reference placement (fewest domains, no link sharing, no
checkpoint stalls) on the same card type. A job slowed by a split placement, by its share of an
oversubscribed uplink or by checkpoint stalls holds all its cards but keeps only that share busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...network.contention import water_fill
from .layout import ClusterLayout
from .terms import ASSUMED_SCALEOUT_SHARE, SpeedTerms, TermsTable, assumed_throughput

__all__ = ["LeafContention", "PlacementInfo", "SpeedModel", "busy_fraction", "split_ratio", "straddling_groups"]

def straddling_groups(pieces: Sequence[int], group: int) -> tuple[tuple[float, int, int], ...]:
    """Groups of ``group`` consecutive ranks that span several domains, as ``((d-1)/d, m_min, m_max)``.

    ``pieces`` are the job's cards per domain; ranks are numbered domain by domain, largest piece
    first (the order a topology-aware launcher would pick: full domains hold whole groups), and
    cut into groups of ``group`` ranks (the last one may be smaller). Of each group spanning
    ``d > 1`` domains, its smallest and largest piece are kept (:func:`split_ratio`); equal
    entries once. O(len(pieces)) after the sort.
    """
    if group < 1:
        raise ValueError(f"straddling_groups: group must be >= 1, got {group!r}")
    out = []
    left = group          # ranks still to place in the current group
    cur: list[int] = []   # the current group's pieces
    for m in sorted(pieces, reverse=True):
        while m > 0:
            take = min(m, left)
            cur.append(take)
            m -= take
            left -= take
            if left == 0:
                if len(cur) > 1:
                    d = len(cur)
                    out.append(((d - 1) / d, min(cur), max(cur)))
                cur, left = [], group
    if len(cur) > 1:
        d = len(cur)
        out.append(((d - 1) / d, min(cur), max(cur)))
    return tuple(sorted(set(out)))


def split_ratio(group: int, cross: Sequence[tuple[float, int, int]], rho: float) -> float:
    """In-domain collective time of a split placement over the unsplit one (module docstring).

    ``r = min(rho, g/(g-1) · max over groups and their pieces m of (1 + ((d-1)/d · rho - 1) / m))``:
    a hierarchical all-reduce (reduce-scatter in the piece at scale-up speed, all-reduce of the
    ``S/m`` shard across the ``d`` pieces at ``1/rho`` of it, all-gather in the piece), or a flat
    ring at NIC speed (``rho``) if cheaper, against one ring of ``g`` cards inside a domain;
    ``1 <= r <= rho`` for ``rho >= 1``. ``cross`` is :func:`straddling_groups`' output (the
    bracket is monotone in ``m``, so a group's smallest and largest piece bound it); 1 if empty.
    """
    if not cross or group < 2:
        return 1.0
    worst = 0.0
    for c, lo, hi in cross:
        k = c * rho - 1.0
        v = 1.0 + k / (lo if k > 0.0 else hi)
        if v > worst:
            worst = v
    return min(worst * group / (group - 1), rho)


@dataclass(frozen=True, slots=True)
class PlacementInfo:
    """What the speed model needs to know about one allocation.

    ``group`` is the size of the job's in-domain collective group (``min(cards, domain size)``)
    and ``cross`` the groups a split placement spreads over several domains
    (:func:`straddling_groups`; empty unless :attr:`split`).
    """

    slowest_type: int
    n_nodes: int
    n_domains: int
    need_domains: int
    leaves: tuple[int, ...]
    leaf_cards: tuple[int, ...]
    group: int = 1
    cross: tuple[tuple[float, int, int], ...] = ()

    @property
    def split(self) -> bool:
        """True when the job uses more scale-up domains than it needs."""
        return self.n_domains > self.need_domains


class SpeedModel:
    """Speed of jobs on allocations of one layout.

    A job is keyed ``(kind, num_cards, reference type)``; its :class:`SpeedTerms` on each card
    type come from the perf model's size class of the kind (:mod:`cluster_sim.perf.size_classes`)
    on the layout's topology, computed once per distinct key and type (:meth:`terms`), or from
    the ``ASSUMED_*`` fallback, with a note, where the size class cannot run: a layout without a
    topology (a node inventory), a card type the catalog lacks, or a kind without a size class.

    Parameters
    ----------
    layout : ClusterLayout
    throughput : numpy.ndarray, optional
        ``(kinds, types)`` matrix that replaces the type ratios (the communication terms still
        come from the size classes). Default: the size classes' ratios; the matrix placement
        policies see (:attr:`throughput`) starts as :func:`assumed_throughput` and gets the size
        classes' rows of the kinds a training engine brings (:meth:`fill_throughput`).
    reference_type : str, optional
        Reference type of jobs that allow several types; default: the most numerous type.
    """

    def __init__(self, layout: ClusterLayout, throughput: np.ndarray | None = None,
                 reference_type: str | None = None) -> None:
        self.layout = layout
        self.explicit = throughput is not None
        self.throughput = assumed_throughput(layout) if throughput is None else np.array(throughput, float)
        T = len(layout.card_types)
        if self.throughput.shape[1] != T:
            raise ValueError(f"throughput matrix needs {T} columns (card types), got {self.throughput.shape}")
        counts = np.bincount(layout.card_type, minlength=T)
        if reference_type is None:
            self.reference = int(np.lexsort((np.arange(T), -counts))[0])
        else:
            self.reference = layout.card_types.index(reference_type)
        self._counts = counts
        self._ref_cache: dict[int, int] = {}
        self.table = TermsTable(layout, throughput)
        self.terms = self.table.terms
        self.notes = self.table.notes
        raw = (np.asarray(layout.type_scaleup_Bps) / np.asarray(layout.type_nic_Bps)).clip(1.0).tolist()
        eff = [self.table.nic_ratio(t) for t in range(T)]
        self.nic_ratio = [r if e is None else e for r, e in zip(raw, eff, strict=True)]
        self.nic_Bps = np.asarray(layout.type_nic_Bps).tolist()
        dom_size = np.bincount(layout.card_domain)
        self._dom_size = dom_size
        self._card_node = layout.card_node
        self._card_domain = layout.card_domain
        self._card_leaf = layout.card_leaf
        self._card_type = layout.card_type
        self._node_py = layout.card_node.tolist()
        self._type_py = layout.card_type.tolist()
        self._leaf_py = layout.card_leaf.tolist()

    def reference_for(self, mask: int) -> int:
        """Reference card type of jobs allowed ``mask`` (cluster type bits)."""
        r = self._ref_cache.get(mask)
        if r is None:
            allowed = [t for t in range(len(self.layout.card_types)) if mask >> t & 1]
            if self.reference in allowed or not allowed:
                r = self.reference
            else:
                r = min(allowed, key=lambda t: (-int(self._counts[t]), t))
            self._ref_cache[mask] = r
        return r

    def fill_throughput(self, kind: int, n: int) -> None:
        """Set row ``kind`` of the placement policies' matrix to the size class's type ratios on
        ``n`` cards (relative to the cluster's reference type); a no-op for an explicit matrix."""
        if self.explicit or kind >= self.throughput.shape[0]:
            return
        row = [self.terms(kind, n, self.reference, t).ratio for t in range(len(self.layout.card_types))]
        self.throughput[kind, :] = row

    # ---- placements and speeds ---------------------------------------------------------------------
    def isolated_speed(self, key: tuple[int, int, int], info: PlacementInfo) -> float:
        """Speed of the job (``key = (kind, cards, reference type)``) at its reference placement
        on ``info``'s slowest card type: the contention-free speed :func:`busy_fraction` divides by."""
        return self.terms(*key, info.slowest_type).ratio

    def info(self, key: tuple[int, int, int], cards: np.ndarray) -> PlacementInfo:
        """Placement facts of ``cards`` for a job keyed ``(kind, cards, reference type)``."""
        c0 = int(cards[0])
        k = cards.size
        if k <= 16:
            cn = self._node_py
            u = cn[c0]
            single = all(cn[c] == u for c in cards.tolist())
        else:
            single = bool((self._card_node[cards] == self._card_node[c0]).all())
        if single:
            return PlacementInfo(self._type_py[c0], 1, 1, 1, (self._leaf_py[c0],), (k,), k)
        nodes = self._card_node[cards]
        types = np.unique(self._card_type[cards]).tolist()
        slowest = types[0] if len(types) == 1 else int(min(types, key=lambda t: (self.terms(*key, t).ratio, t)))
        cd = self._card_domain[cards]
        doms = np.unique(cd)
        dsize = int(self._dom_size[doms].max())
        need = -(-k // dsize)
        group = min(k, dsize)
        cross = straddling_groups(np.unique(cd, return_counts=True)[1].tolist(), group) if doms.size > need else ()
        leaves, counts = np.unique(self._card_leaf[cards], return_counts=True)
        return PlacementInfo(slowest, int(np.unique(nodes).size), int(doms.size), need,
                             tuple(leaves.tolist()), tuple(counts.tolist()), group, cross)

    def speed(self, terms: SpeedTerms, info: PlacementInfo, share: float = 1.0) -> float:
        """Work-seconds per second of a job with ``terms`` (on ``info.slowest_type``) on ``info``."""
        tr, comm = terms.ratio, terms.comm
        if comm <= 0.0 or (info.n_domains == 1 and len(info.leaves) == 1):
            return tr
        share = min(max(share, 1e-9), 1.0)
        if terms.assumed:
            c_x = comm * ASSUMED_SCALEOUT_SHARE if info.need_domains > 1 else 0.0
        else:
            c_x = terms.scaleout
        c_in = comm - c_x
        r_in = split_ratio(info.group, info.cross, self.nic_ratio[info.slowest_type] / share) if info.split else 1.0
        return tr / ((1.0 - comm) + c_in * r_in + c_x / share)


def busy_fraction(rate: float, isolated: float) -> float:
    """Share of a running job's held cards that is busy: ``rate / isolated`` clipped to [0, 1].

    ``rate`` is the job's progress (work-seconds per second, 0 in a restart stall) and
    ``isolated`` its speed at the reference placement on the same card type
    (:meth:`SpeedModel.isolated_speed`).
    """
    if not isolated > 0.0:
        raise ValueError(f"busy_fraction: isolated speed must be > 0, got {isolated!r}")
    return min(max(rate / isolated, 0.0), 1.0)



class LeafContention:
    """Max-min fair shares of leaf uplinks among jobs that span leaves.

    One flow per (job, leaf) on that leaf's uplink, demanding the job's cards there times the
    NIC line rate. Every flow crosses exactly one link, so the max-min fair allocation decomposes
    per link: a change on one leaf re-solves that leaf only (identical to the global progressive
    filling of ``cluster_sim.network.contention.max_min_fair``; tested). Leaves whose uplink can
    carry all their cards' NIC bandwidth (or is infinite) carry no flow.
    """

    def __init__(self, layout: ClusterLayout, speed: SpeedModel) -> None:
        cap = np.asarray(layout.leaf_uplink_Bps, dtype=np.float64)
        self.capacity = cap.tolist()
        self.finite = np.isfinite(cap).tolist()
        self.active = any(self.finite)
        self.on_leaf: dict[int, dict[int, float]] = {}
        self.rate: dict[tuple[int, int], float] = {}
        self.flows: dict[int, list[tuple[int, float]]] = {}
        self._nic = speed.nic_Bps
        self._dirty: set[int] = set()
        self._share: dict[int, float] = {}

    def track_all_leaves(self) -> None:
        """Register flows on every leaf, non-blocking ones too (their uplink capacity can drop
        during the run: a link failure, :meth:`set_capacity`). Call before any job starts."""
        self.finite = [True] * len(self.finite)
        self.active = True

    def set_capacity(self, leaf: int, capacity: float) -> None:
        """Change a leaf's uplink capacity (bytes/s; inf = non-blocking); its flows are re-solved
        at the next :meth:`changed_shares`."""
        self.capacity[leaf] = float(capacity)
        self._dirty.add(leaf)

    def add(self, job: int, info: PlacementInfo) -> bool:
        """Register a job's flows; True if it has any (shares must be re-solved)."""
        if not self.active or len(info.leaves) < 2:
            return False
        nic = self._nic[info.slowest_type]
        flows = []
        for leaf, n in zip(info.leaves, info.leaf_cards, strict=True):
            if self.finite[leaf]:
                demand = n * nic
                self.on_leaf.setdefault(leaf, {})[job] = demand
                self._dirty.add(leaf)
                flows.append((leaf, demand))
        if flows:
            self.flows[job] = flows
        return bool(flows)

    def remove(self, job: int) -> bool:
        """Drop a job's flows; True if it had any."""
        flows = self.flows.pop(job, None)
        if not flows:
            return False
        for leaf, _ in flows:
            del self.on_leaf[leaf][job]
            self.rate.pop((leaf, job), None)
            self._dirty.add(leaf)
        self._share.pop(job, None)
        return True

    def changed_shares(self) -> dict[int, float]:
        """Re-solve the leaves that changed; ``{job: share}`` of every job whose rate on one of them
        moved (share = worst rate / demand over its flows, in (0, 1])."""
        touched: set[int] = set()
        rate = self.rate
        for leaf in sorted(self._dirty):
            jobs = self.on_leaf.get(leaf, {})
            ids = sorted(jobs)
            rates = water_fill([jobs[j] for j in ids], self.capacity[leaf])
            for j, r in zip(ids, rates, strict=True):
                key = (leaf, j)
                if rate.get(key) != r:
                    rate[key] = r
                    touched.add(j)
        self._dirty.clear()
        out = {}
        for j in sorted(touched):
            share = min(1.0, min(rate[(leaf, j)] / d for leaf, d in self.flows[j]))
            if self._share.get(j) != share:
                self._share[j] = share
                out[j] = share
        return out

    def share(self, job: int) -> float:
        """Current share of one job (1 without flows or before :meth:`changed_shares` saw it)."""
        return self._share.get(job, 1.0)
