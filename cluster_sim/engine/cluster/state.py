"""The live allocation state of the cluster: :class:`ClusterState`.

The static :class:`~cluster_sim.engine.cluster.layout.ClusterLayout` it runs on (cards, nodes,
domains, leaves, types; built from a topology or a node inventory) lives in
``cluster_layout.py`` and is re-exported here.

The state keeps free milli-capacity per card (1000 = a whole free card; fractional shares add up
to at most 1000) and incremental free-capacity indices per node, domain, leaf and card type, so a
placement never rescans the whole cluster. A layout built from a node inventory with host
resources (``(type, cards, nodes, cpu_milli, memory_mib)`` groups) also gives every node a CPU
(thousandths of a core) and memory (MiB) capacity; the state tracks their free amounts
(:data:`UNLIMITED` when not modelled, as for topology layouts) and a job's host request is split
over its nodes in proportion to its cards (:func:`host_share`). :meth:`ClusterState.allocate` validates every decision
and raises :class:`~cluster_sim.errors.PlacementError` naming the policy.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from ...errors import PlacementError
from ...policies.base import ClusterView, readonly
from ..pool.ledger import DOWN, IDLE, TRAINING, CardLedger
from .layout import (
    ASSUMED_TYPES,
    UNLIMITED,
    ClusterLayout,
    layout_from_node_groups,
    layout_from_topology,
    type_specs,
)

__all__ = ["ASSUMED_TYPES", "UNLIMITED", "ClusterLayout", "ClusterState", "host_share",
           "layout_from_node_groups", "layout_from_topology", "type_specs"]

WHOLE = 1000  # milli-capacity of a whole free card


def host_share(total: int, cards_here: int, cards: int) -> int:
    """The part of a job's host request ``total`` charged to a node holding ``cards_here`` of its
    ``cards`` cards: ``ceil(total * cards_here / cards)`` (the whole request on a single node)."""
    return -(-total * cards_here // cards)

class ClusterState:
    """Live allocation state of a :class:`ClusterLayout`.

    Parameters
    ----------
    layout : ClusterLayout
    throughput : numpy.ndarray, optional
        ``(kinds, types)`` relative throughput matrix exposed to placement policies.
    recent_window : int
        Size of the ring buffer of recent request sizes (for fragmentation-aware placement).
    ledger : CardLedger, optional
        The simulation's card ledger: every allocation takes its cards there as ``training``
        (a fractional one as a share), every release gives them back, a failure marks a card
        ``down``; a card the ledger has given to another holder is refused.
    """

    def __init__(self, layout: ClusterLayout, throughput: np.ndarray | None = None,
                 recent_window: int = 1000, ledger: CardLedger | None = None) -> None:
        self.layout = lo = layout
        n, T = lo.n_cards, len(lo.card_types)
        self.n_cards = n
        n_nodes = int(lo.card_node.max()) + 1
        node_type = np.zeros(n_nodes, np.int32)
        node_type[lo.card_node] = lo.card_type
        node_size = np.bincount(lo.card_node, minlength=n_nodes).astype(np.int32)
        G = int(node_size.max())
        grid = np.full((n_nodes, G), n, dtype=np.int64)
        order = np.lexsort((np.arange(n), lo.card_node))
        slot = np.arange(n) - np.repeat(np.cumsum(node_size) - node_size, node_size)
        grid[lo.card_node[order], slot] = order
        node_domain = np.zeros(n_nodes, np.int32)
        node_domain[lo.card_node] = lo.card_domain
        node_leaf = np.zeros(n_nodes, np.int32)
        node_leaf[lo.card_node] = lo.card_leaf
        n_domains, n_leaves = int(lo.card_domain.max()) + 1, int(lo.card_leaf.max()) + 1
        self.node_type, self.node_size = node_type, node_size
        self._free = np.full(n + 1, WHOLE, dtype=np.int32)
        self._free[n] = 0
        self.free = self._free[:n]
        self.down = np.zeros(n, dtype=bool)
        self.reserved = np.zeros(n, dtype=bool)  # cards another holder owns (a pool partition)
        self.ledger = ledger
        self.node_free_whole = node_size.copy()
        self.node_free_milli = node_size.astype(np.int64) * WHOLE
        self.domain_size = np.bincount(lo.card_domain, minlength=n_domains).astype(np.int32)
        self.domain_free_whole = self.domain_size.copy()
        self.leaf_size = np.bincount(lo.card_leaf, minlength=n_leaves).astype(np.int32)
        self.leaf_free_whole = self.leaf_size.copy()
        self.type_capacity = np.bincount(lo.card_type, minlength=T).astype(np.int64)
        self.type_free_whole = self.type_capacity.copy()
        self.type_free_milli = self.type_capacity * WHOLE
        self.type_down = np.zeros(T, np.int64)
        self.type_held = np.zeros(T, np.int64)   # cards another engine holds for now (:meth:`hold`)
        self.level_count = np.zeros((T, G + 1), dtype=np.int64)
        np.add.at(self.level_count, (node_type, node_size), 1)
        type_nodes = tuple(np.flatnonzero(node_type == t) for t in range(T))
        # free-capacity index: per (type, whole free cards) a heap of node ids (lazy deletion)
        self._buckets: list[list[list[int]]] = [[[] for _ in range(G + 1)] for _ in range(T)]
        for t in range(T):
            for f in range(G + 1):
                self._buckets[t][f] = type_nodes[t][node_size[type_nodes[t]] == f].tolist()
        self.type_max_free = np.array([node_size[x].max() if x.size else 0 for x in type_nodes], np.int64)
        self._node_type_py = node_type.tolist()
        self._node_domain_py = node_domain.tolist()
        self._node_leaf_py = node_leaf.tolist()
        self._card_node_py = lo.card_node.tolist()
        type_cards = tuple(np.flatnonzero(lo.card_type == t) for t in range(T))
        type_node_size = np.array([node_size[x].max() if x.size else 0 for x in type_nodes])
        self.recent_num_cards = np.zeros(recent_window, np.int32)
        self.recent_milli = np.zeros(recent_window, np.int32)
        self.recent_mask = np.zeros(recent_window, np.uint64)
        self.recent_len = np.zeros(1, np.int64)
        self._recent_pos = 0
        self.recent_cpu_milli = np.zeros(recent_window, np.int64)
        self.recent_memory_mib = np.zeros(recent_window, np.int64)
        self.has_host = lo.node_cpu_milli is not None or lo.node_memory_mib is not None
        self.node_cpu_free = self._host_capacity(lo.node_cpu_milli, n_nodes)
        self.node_mem_free = self._host_capacity(lo.node_memory_mib, n_nodes)
        self.node_cpu_capacity = self.node_cpu_free.copy()
        self.node_mem_capacity = self.node_mem_free.copy()
        self.host_alloc: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.owner = np.full(n, -1, dtype=np.int64)  # whole-card owner; -2 = shared
        self.shared: dict[int, dict[int, int]] = {}
        self.alloc: dict[int, tuple[np.ndarray, int]] = {}
        tp = np.ones((1, T)) if throughput is None else np.asarray(throughput, dtype=np.float64)
        self.view = ClusterView(
            card_types=lo.card_types, n_cards=n, n_nodes=n_nodes,
            card_type=lo.card_type, card_node=lo.card_node, card_domain=lo.card_domain,
            card_leaf=lo.card_leaf, card_dc=lo.card_dc, card_free_milli=self.free,
            card_free_ext=self._free, card_down=self.down, node_type=node_type, node_size=node_size,
            node_domain=node_domain, node_leaf=node_leaf, node_cards=grid,
            node_free_whole=self.node_free_whole, node_free_milli=self.node_free_milli,
            domain_size=self.domain_size, domain_free_whole=self.domain_free_whole,
            leaf_size=self.leaf_size, leaf_free_whole=self.leaf_free_whole,
            type_capacity=self.type_capacity, type_free_whole=self.type_free_whole,
            type_free_milli=self.type_free_milli, type_nodes=tuple(readonly(x) for x in type_nodes),
            type_cards=tuple(readonly(x) for x in type_cards), type_node_size=type_node_size,
            level_count=self.level_count, type_max_free=self.type_max_free, throughput=tp,
            recent_num_cards=self.recent_num_cards, recent_milli=self.recent_milli,
            recent_mask=self.recent_mask, recent_len=self.recent_len, first_node=self.first_node,
            has_host=self.has_host, node_cpu_free=self.node_cpu_free, node_mem_free=self.node_mem_free,
            recent_cpu_milli=self.recent_cpu_milli, recent_memory_mib=self.recent_memory_mib)

    @staticmethod
    def _host_capacity(cap: np.ndarray | None, n_nodes: int) -> np.ndarray:
        if cap is None:
            return np.full(n_nodes, UNLIMITED, np.int64)
        return np.where(cap < 0, UNLIMITED, cap).astype(np.int64)

    # ---- bookkeeping -------------------------------------------------------------------------
    def first_node(self, t: int, f: int) -> int:
        """Lowest id of a node of type ``t`` with exactly ``f`` whole free cards (-1 if none)."""
        if self.level_count[t, f] == 0:
            return -1
        h = self._buckets[t][f]
        nfw = self.node_free_whole
        while nfw[h[0]] != f:
            heapq.heappop(h)
        return h[0]

    def _node_delta(self, u: int, x: int) -> None:
        """Node ``u`` gains ``x`` (may be negative) whole free cards: move it between buckets."""
        t = self._node_type_py[u]
        w = int(self.node_free_whole[u])
        nw = w + x
        lc = self.level_count
        lc[t, w] -= 1
        lc[t, nw] += 1
        self.node_free_whole[u] = nw
        h = self._buckets[t][nw]
        heapq.heappush(h, u)
        if len(h) > 4 * int(lc[t, nw]) + 64:  # compact stale entries
            nodes = self.view.type_nodes[t]
            self._buckets[t][nw] = h = nodes[self.node_free_whole[nodes] == nw].tolist()
        m = int(self.type_max_free[t])
        if nw > m:
            self.type_max_free[t] = nw
        elif w == m and lc[t, w] == 0:
            row = np.flatnonzero(lc[t])
            self.type_max_free[t] = int(row[-1]) if row.size else 0

    def _apply(self, cards: np.ndarray, delta_milli: int) -> None:
        """Add ``delta_milli`` to each card's free capacity and update every index."""
        free = self._free
        old = free[cards]
        new = old + delta_milli
        free[cards] = new
        k = cards.size
        u = self._card_node_py[cards[0]]
        if k == 1 or all(self._card_node_py[c] == u for c in cards.tolist()):
            t = self._node_type_py[u]
            self.node_free_milli[u] += delta_milli * k
            self.type_free_milli[t] += delta_milli * k
            ol = old.tolist()
            x = sum(1 for v in ol if v + delta_milli == WHOLE) - sum(1 for v in ol if v == WHOLE)
            if x:
                self._node_delta(u, x)
                self.type_free_whole[t] += x
                self.domain_free_whole[self._node_domain_py[u]] += x
                self.leaf_free_whole[self._node_leaf_py[u]] += x
            return
        lo = self.layout
        d = (new == WHOLE).astype(np.int64) - (old == WHOLE)
        nodes = lo.card_node[cards]
        np.add.at(self.node_free_milli, nodes, delta_milli)
        np.add.at(self.type_free_milli, lo.card_type[cards], delta_milli)
        ch = np.flatnonzero(d)
        if ch.size:
            cc, dd = cards[ch], d[ch]
            un, inv = np.unique(nodes[ch], return_inverse=True)
            nd = np.bincount(inv.reshape(-1), weights=dd).astype(np.int64)
            for uu, xx in zip(un.tolist(), nd.tolist(), strict=True):
                if xx:
                    self._node_delta(uu, xx)
            np.add.at(self.type_free_whole, lo.card_type[cc], dd)
            np.add.at(self.domain_free_whole, lo.card_domain[cc], dd)
            np.add.at(self.leaf_free_whole, lo.card_leaf[cc], dd)

    def allocate(self, job: int, cards: Any, milli: int, policy: str = "?", mask: int | None = None,
                 cpu_milli: int = 0, memory_mib: int = 0) -> np.ndarray:
        """Give ``cards`` (each at ``milli`` thousandths) to engine row ``job``, with ``cpu_milli``
        host CPU (thousandths of a core) and ``memory_mib`` host memory (MiB) in total, split over
        the nodes by :func:`host_share`.

        Raises
        ------
        PlacementError
            Naming ``policy``: unknown or repeated cards, failed cards, not enough free capacity
            (GPU, CPU or memory), a type the job may not use, or a job that already holds cards.
        """
        cards = np.asarray(cards, dtype=np.int64).reshape(-1)
        where = f"placement policy {policy!r}, job row {job}"
        if job in self.alloc:
            raise PlacementError(f"{where}: the job already holds cards")
        k = cards.size
        if k == 0:
            raise PlacementError(f"{where}: empty placement")
        cl: Any = cards
        if k <= 32:
            cl = cards.tolist()
            lo_c, hi_c, dup = min(cl), max(cl), len(set(cl)) != k
        else:
            lo_c, hi_c = int(cards.min()), int(cards.max())
            dup = np.unique(cards).size != k
        if lo_c < 0 or hi_c >= self.n_cards:
            raise PlacementError(f"{where}: card id out of range [0, {self.n_cards})")
        if dup:
            raise PlacementError(f"{where}: a card appears twice in one placement")
        if self.down[cards].any():
            raise PlacementError(f"{where}: card {int(cards[self.down[cards]][0])} has failed")
        f = self._free[cards]
        if (f < milli).any():
            c = int(cards[f < milli][0])
            raise PlacementError(f"{where}: over-allocation: card {c} has {int(self._free[c])} milli free, "
                                 f"needs {milli}")
        if mask is not None:
            bad = ((mask >> self.layout.card_type[cards].astype(np.int64)) & 1) == 0
            if bad.any():
                c = int(cards[bad][0])
                raise PlacementError(f"{where}: card {c} is of type "
                                     f"{self.layout.card_types[self.layout.card_type[c]]!r}, not allowed")
        if self.ledger is not None:
            self.ledger.take(cl, TRAINING, shared=milli < WHOLE)
        if cpu_milli or memory_mib:
            self._take_host(job, cards, cpu_milli, memory_mib, where)
        self._apply(cards, -milli)
        if milli >= WHOLE:
            self.owner[cards] = job
        else:
            for c in cards.tolist():
                self.owner[c] = -2
                self.shared.setdefault(c, {})[job] = milli
        self.alloc[job] = (cards, milli)
        return cards

    def release(self, job: int) -> tuple[np.ndarray, int]:
        """Free the cards of engine row ``job``; returns ``(cards, milli)``.

        Raises
        ------
        PlacementError
            If the job holds no cards.
        """
        try:
            cards, milli = self.alloc.pop(job)
        except KeyError:
            raise PlacementError(f"release: job row {job} holds no cards") from None
        if self.ledger is not None:
            self.ledger.give(cards, TRAINING, shared=milli < WHOLE)
        host = self.host_alloc.pop(job, None)
        if host is not None:
            self.node_cpu_free[host[0]] += host[1]
            self.node_mem_free[host[0]] += host[2]
        self._apply(cards, milli)
        if milli >= WHOLE:
            self.owner[cards] = -1
        else:
            for c in cards.tolist():
                s = self.shared[c]
                del s[job]
                if not s:
                    del self.shared[c]
                    self.owner[c] = -1
        return cards, milli

    def _take_host(self, job: int, cards: np.ndarray, cpu_milli: int, memory_mib: int, where: str) -> None:
        """Charge the host request to the nodes of ``cards`` (all-or-nothing)."""
        nodes, per = np.unique(self.layout.card_node[cards], return_counts=True)
        k = cards.size
        cpu = np.array([host_share(int(cpu_milli), c, k) for c in per.tolist()], np.int64)
        mem = np.array([host_share(int(memory_mib), c, k) for c in per.tolist()], np.int64)
        for what, free, need, unit in (("CPU", self.node_cpu_free, cpu, "milli-cores"),
                                       ("memory", self.node_mem_free, mem, "MiB")):
            short = free[nodes] < need
            if short.any():
                i = int(np.flatnonzero(short)[0])
                raise PlacementError(f"{where}: over-allocation: node {int(nodes[i])} has "
                                     f"{int(free[nodes[i]])} {unit} of {what} free, needs {int(need[i])}")
        self.node_cpu_free[nodes] -= cpu
        self.node_mem_free[nodes] -= mem
        self.host_alloc[job] = (nodes, cpu, mem)

    def jobs_on(self, card: int) -> list[int]:
        """Engine rows of the jobs holding ``card`` (ascending)."""
        o = int(self.owner[card])
        if o >= 0:
            return [o]
        if o == -2:
            return sorted(self.shared[card])
        return []

    def set_down(self, card: int) -> None:
        """Take a free card out of service (a failure). The card must hold no job."""
        if self.owner[card] != -1 or self.down[card] or self.reserved[card]:
            raise PlacementError(f"set_down: card {card} is in use, reserved or already down")
        if self.ledger is not None:
            self.ledger.set(np.array([card]), IDLE, DOWN)
        self._apply(np.array([card]), -WHOLE)
        self.down[card] = True
        self.type_down[self.layout.card_type[card]] += 1

    def set_up(self, card: int) -> None:
        """Return a failed card to service."""
        if not self.down[card]:
            raise PlacementError(f"set_up: card {card} is not down")
        if self.ledger is not None:
            self.ledger.set(np.array([card]), DOWN, IDLE)
        self.down[card] = False
        self._apply(np.array([card]), WHOLE)
        self.type_down[self.layout.card_type[card]] -= 1

    def reserve(self, cards: Any, holder: str = "another holder") -> None:
        """Take free, working ``cards`` out of this state for good (before the run starts): a
        pool partition another engine holds. They count as neither capacity nor free, so no
        placement sees them and utilization is over the cards left.

        Raises
        ------
        PlacementError
            A card out of range, repeated, failed, already reserved or holding a job.
        """
        cards = np.unique(np.asarray(cards, dtype=np.int64).reshape(-1))
        if cards.size == 0:
            return
        if int(cards[0]) < 0 or int(cards[-1]) >= self.n_cards:
            raise PlacementError(f"reserve ({holder}): card id out of range [0, {self.n_cards})")
        busy = (self._free[cards] != WHOLE) | self.down[cards] | self.reserved[cards]
        if busy.any():
            raise PlacementError(f"reserve ({holder}): card {int(cards[busy][0])} is not free")
        self._apply(cards, -WHOLE)
        self.reserved[cards] = True
        k = np.bincount(self.layout.card_type[cards], minlength=self.type_capacity.size)
        self.type_capacity -= k  # _apply took them from the free counts: allocated stays 0

    def hold(self, cards: Any, holder: str = "another holder") -> None:
        """Let another engine hold free, working ``cards`` for now (a serving replica slot under a
        sharing pool policy): no placement sees them until :meth:`unhold`. Unlike :meth:`reserve`
        they stay in the capacity; the training engine counts them as unavailable to it
        (:attr:`type_held`). The card ledger's state of them is the holder's to set.

        Raises
        ------
        PlacementError
            A card that is not free (a job's, failed, reserved or held).
        """
        cards = np.asarray(cards, dtype=np.int64).reshape(-1)
        busy = (self._free[cards] != WHOLE) | self.down[cards] | self.reserved[cards]
        if busy.any():
            raise PlacementError(f"hold ({holder}): card {int(cards[busy][0])} is not free")
        self._apply(cards, -WHOLE)
        self.reserved[cards] = True
        self.type_held += np.bincount(self.layout.card_type[cards], minlength=self.type_held.size)

    def unhold(self, cards: Any) -> None:
        """Give back cards taken with :meth:`hold`."""
        cards = np.asarray(cards, dtype=np.int64).reshape(-1)
        if not self.reserved[cards].all():
            raise PlacementError(f"unhold: card {int(cards[~self.reserved[cards]][0])} is not held")
        self.reserved[cards] = False
        self._apply(cards, WHOLE)
        self.type_held -= np.bincount(self.layout.card_type[cards], minlength=self.type_held.size)

    def push_request(self, num_cards: int, milli: int, mask: int, cpu_milli: int = 0,
                     memory_mib: int = 0) -> None:
        """Record a request size (cards, milli per card, type mask, host CPU and memory) in the
        recent-request ring buffer."""
        i = self._recent_pos
        self.recent_cpu_milli[i] = cpu_milli
        self.recent_memory_mib[i] = memory_mib
        self.recent_num_cards[i] = num_cards
        self.recent_milli[i] = milli
        self.recent_mask[i] = mask
        self._recent_pos = (i + 1) % self.recent_num_cards.size
        if self.recent_len[0] < self.recent_num_cards.size:
            self.recent_len[0] += 1

    # ---- queries -----------------------------------------------------------------------------
    def allocated_milli_by_type(self) -> np.ndarray:
        """Allocated milli-capacity per type (excludes failed cards)."""
        return (self.type_capacity - self.type_down) * WHOLE - self.type_free_milli

    def check(self) -> None:
        """Recompute every index from scratch and compare (tests; O(cards))."""
        lo = self.layout
        used = np.zeros(self.n_cards + 1, np.int64)
        for cards, milli in self.alloc.values():
            np.add.at(used, cards, milli)
        used[:-1][self.down | self.reserved] += WHOLE
        assert (used[:-1] <= WHOLE).all(), "a card is over-allocated"
        assert (self._free[:-1] == WHOLE - used[:-1]).all(), "free capacity out of sync"
        whole = (self.free == WHOLE).astype(np.int64)
        assert (np.bincount(lo.card_node, whole, self.node_free_whole.size) == self.node_free_whole).all()
        assert (np.bincount(lo.card_domain, whole, self.domain_free_whole.size) == self.domain_free_whole).all()
        assert (np.bincount(lo.card_leaf, whole, self.leaf_free_whole.size) == self.leaf_free_whole).all()
        assert (np.bincount(lo.card_type, whole, self.type_free_whole.size) == self.type_free_whole).all()
        assert (np.bincount(lo.card_node, self.free, self.node_free_milli.size) == self.node_free_milli).all()
        cpu, mem = self.node_cpu_capacity.copy(), self.node_mem_capacity.copy()
        for nodes, c, m in self.host_alloc.values():
            cpu[nodes] -= c
            mem[nodes] -= m
        assert (cpu == self.node_cpu_free).all() and (mem == self.node_mem_free).all(), "host free out of sync"
        assert (self.node_cpu_free >= 0).all() and (self.node_mem_free >= 0).all(), "host over-allocated"
        lc = np.zeros_like(self.level_count)
        np.add.at(lc, (self.node_type, self.node_free_whole), 1)
        assert (lc == self.level_count).all(), "level counts out of sync"
        for t in range(lc.shape[0]):
            nz = np.flatnonzero(lc[t])
            assert self.type_max_free[t] == (nz[-1] if nz.size else 0), "type_max_free out of sync"
            for f in nz.tolist():
                nodes = self.view.type_nodes[t]
                assert self.first_node(t, f) == int(nodes[self.node_free_whole[nodes] == f].min())
