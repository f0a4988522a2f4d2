"""Placement policies: which cards a job gets.

All policies read a :class:`~cluster_sim.policies.base.ClusterView` and return a
:class:`~cluster_sim.policies.base.Placement` (or None to wait). Ties are broken by the lowest
node id, then the lowest card id, so decisions are deterministic.

* ``packed`` (best fit): the node whose free whole cards fit the job most tightly; a job larger
  than any node's free space takes the nodes with the most free cards first (fewest nodes).
  A fractional share goes to the card with the least free capacity that still fits.
* ``spread`` (worst fit, topology-blind load balancing): the node with the most free cards; a
  multi-node job takes free nodes round-robin over leaves.
* ``topology_aware``: a job that fits in one scale-up domain is never split across domains (it
  waits instead); a larger job goes to the single leaf that fits it most tightly, else to the
  fewest leaves, filling whole domains first.
* ``heterogeneity_aware`` (Gavel-like): tries the allowed card types in decreasing order of the
  job kind's throughput (``ClusterView.throughput``), packing within the first type that fits.
* ``fragmentation_aware`` (FGD, Weng et al. ATC'23): scores each candidate node by how much its
  expected fragmentation grows, where fragmentation of a node for a task class is the free GPU
  capacity that class cannot use, averaged over the distribution of recent request sizes.

Host resources (a layout with per-node CPU and memory, ``ClusterView.has_host``): as in
Kubernetes / FGD, a node is feasible for a job only if its free CPU and memory cover the job's
share (:meth:`ClusterView.host_cards`); every policy filters on it, and FGD's task classes carry
the request's CPU and memory, so a node too short of CPU/memory for a class counts all its free
GPU capacity as fragmented for that class.
"""

from __future__ import annotations

import numpy as np

from ..base import ClusterView, JobView, Placement, Policy

__all__ = [
    "FragmentationAware",
    "HeterogeneityAware",
    "Packed",
    "Spread",
    "TopologyAware",
    "node_fragmentation",
    "task_classes",
]

WHOLE = 1000


# ---- shared building blocks ------------------------------------------------------------------
def _whole_cards_on(view: ClusterView, nodes: np.ndarray, k: int,
                    limit: np.ndarray | None = None) -> np.ndarray:
    """The first ``k`` whole free cards over ``nodes`` (in the given node order, card id order),
    at most ``limit[i]`` from ``nodes[i]`` when given."""
    rows = view.node_cards[nodes]
    free = view.card_free_ext[rows] == WHOLE
    if limit is not None:
        free &= np.cumsum(free, axis=1) <= np.asarray(limit)[:, None]
    picked = rows[free]  # row-major: node order, then slot order
    return picked[:k]


def _host(view: ClusterView, job: JobView) -> bool:
    """True when host CPU/memory constrain ``job`` on this cluster."""
    return bool(view.has_host) and job.host


def _usable_whole(view: ClusterView, job: JobView, nodes: np.ndarray) -> np.ndarray:
    """Whole free cards of ``nodes`` the job can use there (host CPU/memory permitting)."""
    fw = view.node_free_whole[nodes]
    return np.minimum(fw, view.host_cards(nodes, job)) if _host(view, job) else fw


def _fractional(view: ClusterView, job: JobView, mask: int, best: bool) -> Placement | None:
    cards = view.cards_of(mask)
    free = view.card_free_ext[cards]
    ok = free >= job.card_milli
    if _host(view, job):
        ok &= view.host_cards(view.card_node[cards], job) >= 1
    if not ok.any():
        return None
    if best:
        i = int(np.argmin(np.where(ok, free, 1 << 30)))
    else:
        i = int(np.argmax(np.where(ok, free, -1)))
    return Placement(cards[i:i + 1])


def _single_node(view: ClusterView, job: JobView, mask: int, best: bool) -> Placement | None:
    k = job.num_cards
    node = view.node_with(mask, k, best)
    if node < 0:
        return None
    one = np.array([node])
    if _host(view, job) and view.host_cards(one, job)[0] < k:
        # the GPU-best node lacks CPU/memory: best (worst) fit among the host-feasible nodes
        nodes = view.nodes_of(mask)
        fw = view.node_free_whole[nodes]
        ok = (fw >= k) & (view.host_cards(nodes, job) >= k)
        if not ok.any():
            return None
        cand, fwc = nodes[ok], fw[ok]
        one = cand[np.lexsort((cand, fwc if best else -fwc))[:1]]
    return Placement(_whole_cards_on(view, one, k))


def _span_most_free(view: ClusterView, job: JobView, mask: int) -> Placement | None:
    """Fewest nodes: nodes with the most free whole cards first (ties: lowest node id)."""
    k = job.num_cards
    if view.free_whole_in(mask) < k:
        return None
    nodes = view.nodes_of(mask)
    fw = _usable_whole(view, job, nodes)
    has = fw > 0
    cand, fwc = nodes[has], fw[has]
    if int(fwc.sum()) < k:
        return None
    order = np.lexsort((cand, -fwc))
    m = int(np.searchsorted(np.cumsum(fwc[order]), k)) + 1
    return Placement(_whole_cards_on(view, cand[order[:m]], k, fwc[order[:m]]))


def _whole(view: ClusterView, job: JobView, mask: int, best: bool) -> Placement | None:
    p = _single_node(view, job, mask, best)
    if p is None and not job.single_node:
        p = _span_most_free(view, job, mask)
    return p


class Packed(Policy):
    """Best fit: consolidate jobs on the fullest nodes/cards that still fit them."""

    name = "packed"
    family = "placement"

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None:
        """Choose cards for ``job`` (None = cannot place now)."""
        if not job.whole:
            return _fractional(cluster, job, job.type_mask, best=True)
        return _whole(cluster, job, job.type_mask, best=True)


class Spread(Policy):
    """Worst fit and topology-blind: balance load over nodes and leaves."""

    name = "spread"
    family = "placement"

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None:
        """Choose cards for ``job`` (None = cannot place now)."""
        if not job.whole:
            return _fractional(cluster, job, job.type_mask, best=False)
        p = _single_node(cluster, job, job.type_mask, best=False)
        if p is not None or job.single_node:
            return p
        return self._round_robin_leaves(cluster, job)

    @staticmethod
    def _round_robin_leaves(view: ClusterView, job: JobView) -> Placement | None:
        k = job.num_cards
        if view.free_whole_in(job.type_mask) < k:
            return None
        nodes = view.nodes_of(job.type_mask)
        fw = _usable_whole(view, job, nodes)
        has = fw > 0
        cand, fwc = nodes[has], fw[has]
        if int(fwc.sum()) < k:
            return None
        leaf = view.node_leaf[cand]
        # rank of each node inside its leaf (most free first), then interleave leaves
        order = np.lexsort((cand, -fwc, leaf))
        leaf_sorted = leaf[order]
        starts = np.flatnonzero(np.r_[True, leaf_sorted[1:] != leaf_sorted[:-1]])
        rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
        rr = order[np.lexsort((leaf_sorted, rank))]
        m = int(np.searchsorted(np.cumsum(fwc[rr]), k)) + 1
        return Placement(_whole_cards_on(view, cand[rr[:m]], k, fwc[rr[:m]]))


class TopologyAware(Policy):
    """Keep domain-sized jobs inside one scale-up domain; larger jobs under the fewest leaves."""

    name = "topology_aware"
    family = "placement"

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None:
        """Choose cards for ``job`` (None = cannot place now without splitting a domain)."""
        view, k, mask = cluster, job.num_cards, job.type_mask
        if not job.whole:
            return _fractional(view, job, mask, best=True)
        if job.single_node:
            return _single_node(view, job, mask, best=True)
        if view.free_whole_in(mask) < k:
            return None
        nodes = view.nodes_of(mask)
        fw = _usable_whole(view, job, nodes)
        if int(fw.sum()) < k:
            return None
        dom_size = int(view.domain_size[view.node_domain[nodes]].max())
        if k <= dom_size:
            return self._in_domain(view, job, nodes, fw)
        return self._fewest_leaves(view, job, nodes, fw)

    @staticmethod
    def _fill(view: ClusterView, nodes: np.ndarray, fw: np.ndarray, k: int) -> np.ndarray:
        """Cards from ``nodes``: a single best-fit node if one fits, else most-free nodes first."""
        ok = fw >= k
        if ok.any():
            i = int(np.argmin(np.where(ok, fw, 1 << 30)))
            return _whole_cards_on(view, nodes[i:i + 1], k, fw[i:i + 1])
        order = np.lexsort((nodes, -fw))
        m = int(np.searchsorted(np.cumsum(fw[order]), k)) + 1
        return _whole_cards_on(view, nodes[order[:m]], k, fw[order[:m]])

    def _in_domain(self, view: ClusterView, job: JobView, nodes: np.ndarray,
                   fw: np.ndarray) -> Placement | None:
        k = job.num_cards
        if view.max_node_free(job.type_mask) >= k:  # one node fits: best-fit node (inside a domain)
            return _single_node(view, job, job.type_mask, best=True)
        dom = view.node_domain[nodes]
        per_dom = np.bincount(dom, weights=fw, minlength=view.domain_size.size)
        ok = per_dom >= k
        if not ok.any():
            return None
        d = int(np.argmin(np.where(ok, per_dom, np.inf)))
        sel = dom == d
        return Placement(self._fill(view, nodes[sel], fw[sel], k))

    def _fewest_leaves(self, view: ClusterView, job: JobView, nodes: np.ndarray,
                       fw: np.ndarray) -> Placement | None:
        k = job.num_cards
        leaf = view.node_leaf[nodes]
        per_leaf = np.bincount(leaf, weights=fw, minlength=view.leaf_size.size)
        ok = per_leaf >= k
        if ok.any():
            leaves = np.array([int(np.argmin(np.where(ok, per_leaf, np.inf)))])
        else:
            order = np.lexsort((np.arange(per_leaf.size), -per_leaf))
            m = int(np.searchsorted(np.cumsum(per_leaf[order]), k)) + 1
            leaves = order[:m]
        picked: list[np.ndarray] = []
        need = k
        for leaf_id in leaves:
            sel = (leaf == leaf_id) & (fw > 0)
            ln, lf = nodes[sel], fw[sel]
            # whole domains first: domains with the most free cards, then nodes by free cards
            dom = view.node_domain[ln]
            dom_free = np.bincount(dom, weights=lf, minlength=view.domain_size.size)[dom]
            order = np.lexsort((ln, -lf, dom, -dom_free))
            got = _whole_cards_on(view, ln[order], need, lf[order])
            picked.append(got)
            need -= got.size
            if need <= 0:
                break
        return Placement(np.concatenate(picked)[:k])


class HeterogeneityAware(Policy):
    """Gavel-like: the allowed card type with the best throughput for the job's kind first."""

    name = "heterogeneity_aware"
    family = "placement"

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None:
        """Choose cards for ``job`` (None = cannot place now)."""
        view = cluster
        types = view.types_of(job.type_mask)
        kind = min(job.kind, view.throughput.shape[0] - 1)
        tput = view.throughput[kind, types]
        for t in types[np.lexsort((types, -tput))]:
            bit = 1 << int(t)
            if not job.whole:
                p = _fractional(view, job, bit, best=True)
            elif view.type_free_whole[t] < job.num_cards:
                continue
            else:
                p = _whole(view, job, bit, best=True)
            if p is not None:
                return p
        if job.whole and not job.single_node and len(types) > 1:  # mixed types as a last resort
            return _span_most_free(view, job, job.type_mask)
        return None


# ---- fragmentation gradient descent -------------------------------------------------------------
def task_classes(view: ClusterView, job: JobView, max_classes: int) -> tuple[np.ndarray, ...]:
    """Popular request classes ``(num_cards, milli, type_mask, probability, cpu_milli, memory_mib)``
    from the recent window.

    The current job is counted too, so the set is never empty. At most ``max_classes`` most
    frequent classes are kept (ties by class value) and their probabilities renormalised. The
    host CPU (thousandths of a core) and memory (MiB) requests are part of a class only on a
    cluster that models them (``view.has_host``); else they are 0.
    """
    n = int(view.recent_len[0])
    num = np.append(view.recent_num_cards[:n], job.num_cards).astype(np.int64)
    milli = np.append(view.recent_milli[:n], job.card_milli).astype(np.int64)
    mask = np.append(view.recent_mask[:n], np.uint64(job.type_mask)).astype(np.uint64)
    cols = [num, milli, mask.view(np.int64)]
    if view.has_host:
        cols += [np.append(view.recent_cpu_milli[:n], job.cpu_milli).astype(np.int64),
                 np.append(view.recent_memory_mib[:n], job.memory_mib).astype(np.int64)]
    uniq, counts = np.unique(np.stack(cols, axis=1), axis=0, return_counts=True)
    order = np.lexsort((np.arange(counts.size), -counts))[:max_classes]
    uniq, counts = uniq[order], counts[order]
    p = counts / counts.sum()
    zero = np.zeros(uniq.shape[0], np.int64)
    cpu, mem = (uniq[:, 3], uniq[:, 4]) if view.has_host else (zero, zero)
    return uniq[:, 0], uniq[:, 1], uniq[:, 2].view(np.uint64), p, cpu, mem


def node_fragmentation(free: np.ndarray, node_type: np.ndarray, classes: tuple[np.ndarray, ...],
                       cpu_free: np.ndarray | None = None, mem_free: np.ndarray | None = None) -> np.ndarray:
    """Expected fragmentation (milli-cards) of nodes with per-card ``free`` milli (``(n, slots)``).

    For a task class needing ``k`` cards of ``r`` milli on allowed types: if the node cannot host
    it, all its free capacity is fragmented for that class; else the free capacity of cards
    holding less than ``r`` is (FGD, Weng et al. 2023, section 4). Averaged over class
    probabilities. ``classes`` is :func:`task_classes`' tuple (the host columns are optional);
    with ``cpu_free`` / ``mem_free`` (per node, thousandths of a core / MiB) a class whose CPU or
    memory request exceeds the node's free amount cannot be hosted either (all its free GPU
    capacity is fragmented for it, as in FGD).
    """
    num, milli, mask, prob = classes[:4]
    host = len(classes) >= 6 and (cpu_free is not None or mem_free is not None)
    cpus, mems = (classes[4].tolist(), classes[5].tolist()) if host else ([0] * len(prob), [0] * len(prob))
    total = free.sum(axis=1).astype(np.float64)
    out = np.zeros(free.shape[0])
    tbits = np.left_shift(np.uint64(1), node_type.astype(np.uint64))
    whole_cnt = (free >= WHOLE).sum(axis=1)
    for k, r, m, p, c, g in zip(num.tolist(), milli.tolist(), mask.tolist(), prob.tolist(), cpus, mems,
                                strict=True):
        allowed = (np.uint64(m) & tbits) != 0
        if c > 0 and cpu_free is not None:
            allowed = allowed & (cpu_free >= c)
        if g > 0 and mem_free is not None:
            allowed = allowed & (mem_free >= g)
        usable = free >= r
        fits = (whole_cnt >= k) if r >= WHOLE else usable.any(axis=1)
        small = np.where(usable, 0, free).sum(axis=1)
        out += p * np.where(allowed & fits, small, total)
    return out


class FragmentationAware(Policy):
    """FGD: place on the node (and card) whose expected fragmentation grows least.

    Ties (equal growth) go to the fullest node, then the lowest node id.

    Parameters
    ----------
    max_classes : int
        Most frequent recent request classes used as the target workload distribution.
    """

    name = "fragmentation_aware"
    family = "placement"

    def __init__(self, *, max_classes: int = 64) -> None:
        self.max_classes = max_classes

    def place(self, job: JobView, cluster: ClusterView) -> Placement | None:
        """Choose cards for ``job`` (None = cannot place now)."""
        view, k, r = cluster, job.num_cards, job.card_milli
        nodes = view.nodes_of(job.type_mask)
        host = _host(view, job)
        if job.whole:
            if view.max_node_free(job.type_mask) < k:
                return None if job.single_node else _span_most_free(view, job, job.type_mask)
            cand = nodes[view.node_free_whole[nodes] >= k]
        else:
            cand = nodes[view.node_free_milli[nodes] >= r]
        if host and cand.size:
            cand = cand[view.host_cards(cand, job) >= k]
        if cand.size == 0:
            return None if job.single_node or not job.whole else _span_most_free(view, job, job.type_mask)
        free = view.card_free_ext[view.node_cards[cand]].astype(np.int64)
        if not job.whole:
            feasible = (free >= r).any(axis=1)
            cand, free = cand[feasible], free[feasible]
            if cand.size == 0:
                return None
        classes = task_classes(view, job, self.max_classes)
        # nodes in identical states score identically: score each distinct state once. Host free
        # amounts are clipped at the largest request that can matter (keeps comparisons exact).
        srt = np.sort(free, axis=1)
        ntype = view.node_type[cand].astype(np.int64)
        cols = [ntype[:, None]]
        if view.has_host:
            cap_c = int(classes[4].max()) + job.cpu_milli
            cap_m = int(classes[5].max()) + job.memory_mib
            cols += [np.minimum(view.node_cpu_free[cand], cap_c)[:, None],
                     np.minimum(view.node_mem_free[cand], cap_m)[:, None]]
        h = len(cols)
        states, inv = np.unique(np.hstack([*cols, srt]), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        st_type, st_free = states[:, 0], states[:, h:]
        st_cpu, st_mem = (states[:, 1], states[:, 2]) if h == 3 else (None, None)
        before = node_fragmentation(st_free, st_type, classes, st_cpu, st_mem)
        slots = st_free.shape[1]
        # host left after placing the job on the node (single node: it takes its whole request)
        a_cpu = None if st_cpu is None else st_cpu - job.cpu_milli
        a_mem = None if st_mem is None else st_mem - job.memory_mib
        if job.whole:
            after_free = st_free.copy()
            after_free[:, slots - k:] = 0  # sorted ascending: the last k slots are whole free cards
            delta = node_fragmentation(after_free, st_type, classes, a_cpu, a_mem) - before
            value = np.full(states.shape[0], WHOLE)
        else:
            variants = np.repeat(st_free[:, None, :], slots, axis=1)  # (U, choice, slots)
            idx = np.arange(slots)
            variants[:, idx, idx] -= r
            ok = st_free >= r
            rep_host = [None if a is None else np.repeat(a, slots) for a in (a_cpu, a_mem)]
            after = node_fragmentation(variants.reshape(-1, slots), np.repeat(st_type, slots),
                                       classes, *rep_host).reshape(-1, slots)
            d = np.where(ok, after - before[:, None], np.inf)
            # among equal deltas prefer the tightest card (smallest free value)
            choice = np.lexsort((np.where(ok, st_free, 1 << 30), d), axis=1)[:, 0]
            delta = d[np.arange(states.shape[0]), choice]
            value = st_free[np.arange(states.shape[0]), choice]
        node_delta = delta[inv]
        # least fragmentation growth; ties: the fullest node (best fit), then the lowest id
        i = int(np.lexsort((cand, free.sum(axis=1), node_delta))[0])
        node = int(cand[i])
        if job.whole:
            return Placement(_whole_cards_on(view, np.array([node]), k))
        row = view.node_cards[node]
        fr = view.card_free_ext[row]
        j = int(np.flatnonzero(fr == value[inv[i]])[0])
        return Placement(row[j:j + 1])
