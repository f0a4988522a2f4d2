"""Alpha-beta cost models of collectives: closed forms and their multi-level versions.

Notation (DOMAIN.md section 5): ``p`` ranks, ``S`` bytes (the full buffer each rank holds;
for all-to-all the bytes each rank sends), ``b`` bytes/s per rank per direction, ``alpha``
seconds per message. Every function returns a :class:`CollectiveCost` whose ``time_s`` is the
latency (alpha) part plus the transfer (bandwidth) part. Reduction arithmetic (gamma) is
ignored. A group of one rank costs nothing.

Primitive closed forms take ``(size_bytes, ranks, bandwidth_Bps, latency_s)``. Level-aware
versions take the group's :class:`~cluster_sim.topology.levels.CommLevel` tuple (innermost
first) and use ``level.effective_Bps`` as ``b`` and ``level.latency_s`` as ``alpha``; levels
with ``fanout == 1`` are not crossed and are ignored. ``docs/network.md`` states the models.

>>> c = ring_all_reduce(1 << 30, 8, 450e9 * 0.82, 2e-6)
>>> round(c.time_s * 1e3, 4), c.algorithm
(5.1203, 'ring')
>>> from cluster_sim.topology.levels import CommLevel
>>> lv = (CommLevel("scaleup", 8, 450e9, 2e-6), CommLevel("scaleout", 4, 50e9, 5e-6))
>>> all_reduce(1 << 30, lv).algorithm
'hierarchical'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cluster_sim.topology.levels import CommLevel

__all__ = [
    "ALGORITHMS",
    "KINDS",
    "CollectiveCost",
    "all_gather",
    "all_reduce",
    "all_to_all",
    "binomial_broadcast",
    "broadcast",
    "bus_bandwidth",
    "collective",
    "concurrent_all_to_all",
    "domain_dedup",
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

KINDS = ("all_reduce", "reduce_scatter", "all_gather", "all_to_all", "broadcast", "point_to_point")

#: Named algorithms each level-aware function accepts (besides ``"auto"``), in tie-break order.
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "all_reduce": ("ring", "tree", "hierarchical"),
    "reduce_scatter": ("ring", "hierarchical"),
    "all_gather": ("ring", "hierarchical"),
    "all_to_all": ("pairwise", "concurrent", "hierarchical"),
    "broadcast": ("ring", "tree"),
    "point_to_point": ("direct",),
}

# nccl-tests busbw factors f(n): busbw = algbw * f.
_BUS_FACTOR: dict[str, Callable[[int], float]] = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "reduce_scatter": lambda n: (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
    "broadcast": lambda n: 1.0,
    "point_to_point": lambda n: 1.0,
}


@dataclass(frozen=True)
class CollectiveCost:
    """Time of one collective, split into its latency and bandwidth parts.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    algorithm : str
        Algorithm costed (the one chosen when ``"auto"`` was asked); ``"none"`` for one rank.
    ranks : int
        Group size ``p``.
    size_bytes : float
        ``S`` as passed in (see the module notation).
    latency_s : float
        Alpha part, seconds.
    transfer_s : float
        Bandwidth part, seconds.
    bytes_per_rank : float
        Bytes the busiest rank sends over all levels.
    """

    kind: str
    algorithm: str
    ranks: int
    size_bytes: float
    latency_s: float
    transfer_s: float
    bytes_per_rank: float

    @property
    def time_s(self) -> float:
        """Total time, seconds: ``latency_s + transfer_s``."""
        return self.latency_s + self.transfer_s

    @property
    def busbw_Bps(self) -> float:
        """nccl-tests bus bandwidth of this collective, bytes/s (0 when it takes no time)."""
        t = self.time_s
        return bus_bandwidth(self.kind, self.size_bytes, self.ranks, t) if t > 0 else 0.0


# --------------------------------------------------------------------------- helpers


def _check(size_bytes: float, ranks: int, bandwidth_Bps: float, latency_s: float) -> None:
    if not size_bytes >= 0 or math.isinf(size_bytes):
        raise ValueError(f"size_bytes must be finite and >= 0, got {size_bytes!r}")
    if isinstance(ranks, bool) or int(ranks) != ranks or ranks < 1:
        raise ValueError(f"ranks must be an integer >= 1, got {ranks!r}")
    if not bandwidth_Bps > 0:
        raise ValueError(f"bandwidth_Bps must be > 0, got {bandwidth_Bps!r}")
    if not latency_s >= 0 or math.isinf(latency_s):
        raise ValueError(f"latency_s must be finite and >= 0, got {latency_s!r}")


def _ceil_log2(p: int) -> int:
    """Smallest ``k`` with ``2**k >= p`` (0 for one rank)."""
    return (int(p) - 1).bit_length()


def _cost(kind: str, algorithm: str, ranks: int, size_bytes: float, latency_s: float,
          transfer_s: float, bytes_per_rank: float) -> CollectiveCost:
    if ranks == 1:
        return CollectiveCost(kind, "none", 1, float(size_bytes), 0.0, 0.0, 0.0)
    return CollectiveCost(kind, algorithm, int(ranks), float(size_bytes), float(latency_s),
                          float(transfer_s), float(bytes_per_rank))


# --------------------------------------------------------------------------- closed forms


def ring_all_reduce(size_bytes: float, ranks: int, bandwidth_Bps: float,
                    latency_s: float) -> CollectiveCost:
    """Ring all-reduce: ``2(p-1)·alpha + 2(p-1)/p·S/b`` (bandwidth-optimal)."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    moved = 2.0 * (ranks - 1) / ranks * size_bytes
    return _cost("all_reduce", "ring", ranks, size_bytes, 2 * (ranks - 1) * latency_s,
                 moved / bandwidth_Bps, moved)


def ring_reduce_scatter(size_bytes: float, ranks: int, bandwidth_Bps: float,
                        latency_s: float) -> CollectiveCost:
    """Ring reduce-scatter of a full buffer ``S``: ``(p-1)·alpha + (p-1)/p·S/b``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    moved = (ranks - 1) / ranks * size_bytes
    return _cost("reduce_scatter", "ring", ranks, size_bytes, (ranks - 1) * latency_s,
                 moved / bandwidth_Bps, moved)


def ring_all_gather(size_bytes: float, ranks: int, bandwidth_Bps: float,
                    latency_s: float) -> CollectiveCost:
    """Ring all-gather to a full output ``S``: ``(p-1)·alpha + (p-1)/p·S/b``."""
    c = ring_reduce_scatter(size_bytes, ranks, bandwidth_Bps, latency_s)
    return CollectiveCost("all_gather", c.algorithm, c.ranks, c.size_bytes, c.latency_s,
                          c.transfer_s, c.bytes_per_rank)


def recursive_doubling_all_reduce(size_bytes: float, ranks: int, bandwidth_Bps: float,
                                  latency_s: float) -> CollectiveCost:
    """Recursive doubling: ``⌈log2 p⌉·(alpha + S/b)`` (equals ``log2 p`` for powers of two)."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    k = _ceil_log2(ranks)
    return _cost("all_reduce", "recursive_doubling", ranks, size_bytes, k * latency_s,
                 k * size_bytes / bandwidth_Bps, k * size_bytes)


def rabenseifner_all_reduce(size_bytes: float, ranks: int, bandwidth_Bps: float,
                            latency_s: float) -> CollectiveCost:
    """Rabenseifner (recursive-halving RS + doubling AG): ``2⌈log2 p⌉·alpha + 2(p-1)/p·S/b``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    moved = 2.0 * (ranks - 1) / ranks * size_bytes
    return _cost("all_reduce", "rabenseifner", ranks, size_bytes,
                 2 * _ceil_log2(ranks) * latency_s, moved / bandwidth_Bps, moved)


def tree_all_reduce(size_bytes: float, ranks: int, bandwidth_Bps: float, latency_s: float,
                    pipelined: bool = True) -> CollectiveCost:
    """Tree all-reduce (reduce then broadcast).

    Pipelined double binary tree (NCCL's tree, default): ``2⌈log2 p⌉·alpha + 2·S/b``;
    unpipelined binary tree: ``2⌈log2 p⌉·(alpha + S/b)``.
    """
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    depth = _ceil_log2(ranks)
    hops = 2 if pipelined else 2 * depth
    return _cost("all_reduce", "tree" if pipelined else "tree_unpipelined", ranks, size_bytes,
                 2 * depth * latency_s, hops * size_bytes / bandwidth_Bps, hops * size_bytes)


def pairwise_all_to_all(size_bytes: float, ranks: int, bandwidth_Bps: float,
                        latency_s: float) -> CollectiveCost:
    """Pairwise all-to-all, ``S`` = bytes each rank sends: ``(p-1)·alpha + (p-1)/p·S/b``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    moved = (ranks - 1) / ranks * size_bytes
    return _cost("all_to_all", "pairwise", ranks, size_bytes, (ranks - 1) * latency_s,
                 moved / bandwidth_Bps, moved)


def concurrent_all_to_all(size_bytes: float, ranks: int, bandwidth_Bps: float,
                          latency_s: float) -> CollectiveCost:
    """Concurrent all-to-all (every message in flight at once): ``⌈log2 p⌉·alpha + (p-1)/p·S/b``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    moved = (ranks - 1) / ranks * size_bytes
    return _cost("all_to_all", "concurrent", ranks, size_bytes, _ceil_log2(ranks) * latency_s,
                 moved / bandwidth_Bps, moved)


def ring_broadcast(size_bytes: float, ranks: int, bandwidth_Bps: float,
                   latency_s: float) -> CollectiveCost:
    """Pipelined chain (ring) broadcast, ideal pipelining: ``(p-1)·alpha + S/b``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    return _cost("broadcast", "ring", ranks, size_bytes, (ranks - 1) * latency_s,
                 size_bytes / bandwidth_Bps, size_bytes)


def binomial_broadcast(size_bytes: float, ranks: int, bandwidth_Bps: float,
                       latency_s: float) -> CollectiveCost:
    """Binomial-tree broadcast: ``⌈log2 p⌉·(alpha + S/b)``."""
    _check(size_bytes, ranks, bandwidth_Bps, latency_s)
    k = _ceil_log2(ranks)
    return _cost("broadcast", "tree", ranks, size_bytes, k * latency_s,
                 k * size_bytes / bandwidth_Bps, k * size_bytes)


def send_recv(size_bytes: float, bandwidth_Bps: float, latency_s: float) -> CollectiveCost:
    """Point-to-point message: ``alpha + S/b``."""
    _check(size_bytes, 2, bandwidth_Bps, latency_s)
    return _cost("point_to_point", "direct", 2, size_bytes, latency_s,
                 size_bytes / bandwidth_Bps, size_bytes)


# --------------------------------------------------------------------------- level-aware


def _crossed(levels: Sequence[CommLevel]) -> tuple[CommLevel, ...]:
    out = []
    for i, lv in enumerate(levels):
        if not isinstance(lv, CommLevel):
            raise ValueError(f"levels[{i}] must be a CommLevel, got {type(lv).__name__}")
        if lv.fanout > 1:
            out.append(lv)
    return tuple(out)


def _flat(levels: tuple[CommLevel, ...]) -> tuple[int, float, float]:
    """A flat schedule over several levels: (ranks, bottleneck Bps, worst latency)."""
    p = math.prod(lv.fanout for lv in levels)
    return p, min(lv.effective_Bps for lv in levels), max(lv.latency_s for lv in levels)


def _hier_rs(size_bytes: float, levels: tuple[CommLevel, ...]) -> tuple[float, float, float]:
    """Reduce-scatter inner level first, each level on the shard the previous one left.

    Returns (latency_s, transfer_s, bytes sent per rank). The all-gather that mirrors it
    (outer level first) costs the same.
    """
    lat = xfer = sent = 0.0
    shard = float(size_bytes)
    for lv in levels:
        f = lv.fanout
        moved = (f - 1) / f * shard
        lat += (f - 1) * lv.latency_s
        xfer += moved / lv.effective_Bps
        sent += moved
        shard /= f
    return lat, xfer, sent


def _choose(kind: str, size_bytes: float, levels: Sequence[CommLevel], algorithm: str,
            builders: dict[str, Callable[[tuple[CommLevel, ...]], CollectiveCost]]
            ) -> CollectiveCost:
    names = ALGORITHMS[kind]
    if algorithm != "auto" and algorithm not in names:
        raise ValueError(f"{kind}: unknown algorithm {algorithm!r}; known: auto, {', '.join(names)}")
    _check(size_bytes, 1, 1.0, 0.0)
    crossed = _crossed(levels)
    if not crossed:
        return _cost(kind, "none", 1, size_bytes, 0.0, 0.0, 0.0)
    if algorithm != "auto":
        return builders[algorithm](crossed)
    costs = [builders[name](crossed) for name in names]
    return min(costs, key=lambda c: c.time_s)  # first (in ALGORITHMS order) among equals


def all_reduce(size_bytes: float, levels: Sequence[CommLevel],
               algorithm: str = "auto") -> CollectiveCost:
    """All-reduce of ``S`` bytes over a group described by ``levels`` (innermost first).

    ``ring``: one flat ring, bottleneck bandwidth and worst latency of the levels crossed.
    ``tree``: pipelined double binary tree, ``2·Σ⌈log2 f_j⌉·alpha_j + 2·S/b_min``.
    ``hierarchical``: reduce-scatter inward-out, ring all-reduce at the outermost level on
    the remaining shard, all-gather back; for two levels this is DOMAIN.md's formula
    ``2(g-1)/g·S/b_in + 2(m-1)/m·(S/g)/b_out + 2(g-1)·alpha_in + 2(m-1)·alpha_out``.
    ``auto``: the cheapest of the three (ties: ring, tree, hierarchical).
    """

    def ring(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        p, b, a = _flat(lv)
        return ring_all_reduce(size_bytes, p, b, a)

    def tree(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        p, b, _ = _flat(lv)
        lat = 2 * sum(_ceil_log2(x.fanout) * x.latency_s for x in lv)
        return _cost("all_reduce", "tree", p, size_bytes, lat, 2 * size_bytes / b, 2 * size_bytes)

    def hierarchical(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        lat, xfer, sent = _hier_rs(size_bytes, lv)
        return _cost("all_reduce", "hierarchical", _flat(lv)[0], size_bytes, 2 * lat, 2 * xfer,
                     2 * sent)

    return _choose("all_reduce", size_bytes, levels, algorithm,
                   {"ring": ring, "tree": tree, "hierarchical": hierarchical})


def _rs_or_ag(kind: str, size_bytes: float, levels: Sequence[CommLevel],
              algorithm: str) -> CollectiveCost:
    def ring(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        p, b, a = _flat(lv)
        c = ring_reduce_scatter(size_bytes, p, b, a)
        return _cost(kind, "ring", p, size_bytes, c.latency_s, c.transfer_s, c.bytes_per_rank)

    def hierarchical(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        lat, xfer, sent = _hier_rs(size_bytes, lv)
        return _cost(kind, "hierarchical", _flat(lv)[0], size_bytes, lat, xfer, sent)

    return _choose(kind, size_bytes, levels, algorithm, {"ring": ring, "hierarchical": hierarchical})


def reduce_scatter(size_bytes: float, levels: Sequence[CommLevel],
                   algorithm: str = "auto") -> CollectiveCost:
    """Reduce-scatter of a full buffer ``S`` (each rank ends with ``S/p``).

    ``ring``: flat ring at the bottleneck. ``hierarchical``: innermost level first, each level
    on the shard left by the previous: ``Σ_j (f_j-1)·alpha_j + (f_j-1)/f_j·S/(P_{j-1}·b_j)``
    with ``P_{j-1}`` the ranks inside level ``j``. ``auto``: the cheaper.
    """
    return _rs_or_ag("reduce_scatter", size_bytes, levels, algorithm)


def all_gather(size_bytes: float, levels: Sequence[CommLevel],
               algorithm: str = "auto") -> CollectiveCost:
    """All-gather to a full output ``S``; the mirror of :func:`reduce_scatter`, same cost."""
    return _rs_or_ag("all_gather", size_bytes, levels, algorithm)


def _check_routing(copies: int, max_domains: int | None) -> None:
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be an integer >= 1, got {copies!r}")
    if max_domains is not None and (isinstance(max_domains, bool) or not isinstance(max_domains, int)
                                    or max_domains < 1):
        raise ValueError(f"max_domains must be None or an integer >= 1, got {max_domains!r}")


def domain_dedup(copies: int, domains: int, max_domains: int | None = None) -> float:
    """Share of an all-to-all's cross-domain bytes left when items go once per target domain.

    An item (a token) has ``copies`` destinations (its top-k experts) chosen uniformly among the
    ranks of ``c = min(max_domains, domains)`` candidate domains. Sent once per distinct target
    domain and copied to its ranks inside it (DeepEP-style dispatch; combine mirrors it with a
    reduction inside the domain), it crosses the network ``c·(1 - (1 - 1/c)^k)`` times instead of
    ``k``; the share is that over ``k`` (1 for ``k = 1``, ``1/k`` for ``c = 1``, never above 1).

    >>> round(domain_dedup(8, 16), 4), round(domain_dedup(8, 16, max_domains=4), 4)
    (0.8066, 0.4499)
    """
    _check_routing(copies, max_domains)
    if isinstance(domains, bool) or int(domains) != domains or domains < 1:
        raise ValueError(f"domains must be an integer >= 1, got {domains!r}")
    c = int(domains) if max_domains is None else min(int(domains), max_domains)
    return c * (1.0 - (1.0 - 1.0 / c) ** copies) / copies


def all_to_all(size_bytes: float, levels: Sequence[CommLevel], algorithm: str = "auto", *,
               copies: int = 1, max_domains: int | None = None) -> CollectiveCost:
    """All-to-all, ``S`` = bytes each rank sends (``S/p`` to every rank, itself included).

    ``pairwise``: ``p-1`` sequential rounds, ``Σ_j (P_j - P_{j-1})·alpha_j``, and the slowest
    level's share ``max_j (P_j - P_{j-1})/p·S/b_j`` (``P_j`` ranks inside level ``j``).
    ``concurrent``: all messages in flight at once, same transfer, ``⌈log2 p⌉·alpha_max``.
    ``hierarchical``: one exchange per level, innermost first, pipelined: latency
    ``Σ_j ⌈log2 f_j'⌉·alpha_j``, transfer ``max_j (f_j-1)/f_j·S_j/b_j`` with ``S_j = S`` inside
    the scale-up domain and ``S·domain_dedup(copies, domains, max_domains)`` beyond it (an item
    with ``copies`` destinations crosses once per target domain); ``max_domains`` ``M``
    (node-limited routing) caps ``f_j'`` beyond the domain at ``M + 1``. ``auto``: the cheapest
    (ties: pairwise, concurrent, hierarchical). One level: ``⌈log2 p⌉·alpha + (p-1)/p·S/b``.
    ``docs/network.md`` derives them.
    """
    _check_routing(copies, max_domains)

    def pairwise(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        p = _flat(lv)[0]
        lat = xfer = 0.0
        inside = 1
        for x in lv:
            peers = inside * x.fanout - inside
            lat += peers * x.latency_s
            xfer = max(xfer, peers / p * size_bytes / x.effective_Bps)
            inside *= x.fanout
        return _cost("all_to_all", "pairwise", p, size_bytes, lat, xfer,
                     (p - 1) / p * size_bytes)

    def concurrent(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        c = pairwise(lv)
        return _cost("all_to_all", "concurrent", c.ranks, size_bytes,
                     _ceil_log2(c.ranks) * _flat(lv)[2], c.transfer_s, c.bytes_per_rank)

    def hierarchical(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        domains = math.prod(x.fanout for x in lv if x.tier != "scaleup")
        outer = size_bytes * domain_dedup(copies, domains, max_domains)
        lat = xfer = sent = 0.0
        for x in lv:
            inside = x.tier == "scaleup"
            fan = x.fanout if inside or max_domains is None else min(x.fanout, max_domains + 1)
            moved = (x.fanout - 1) / x.fanout * (size_bytes if inside else outer)
            lat += _ceil_log2(fan) * x.latency_s
            xfer = max(xfer, moved / x.effective_Bps)
            sent += moved
        return _cost("all_to_all", "hierarchical", _flat(lv)[0], size_bytes, lat, xfer, sent)

    return _choose("all_to_all", size_bytes, levels, algorithm,
                   {"pairwise": pairwise, "concurrent": concurrent, "hierarchical": hierarchical})


def broadcast(size_bytes: float, levels: Sequence[CommLevel],
              algorithm: str = "auto") -> CollectiveCost:
    """Broadcast of ``S`` bytes from one root.

    ``ring``: pipelined chain, ``(p-1)·alpha_max + S/b_min``. ``tree``: binomial tree built
    level by level, ``Σ_j ⌈log2 f_j⌉·(alpha_j + S/b_j)``. ``auto``: the cheaper.
    """

    def ring(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        p, b, a = _flat(lv)
        return ring_broadcast(size_bytes, p, b, a)

    def tree(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        hops = [(_ceil_log2(x.fanout), x) for x in lv]
        lat = sum(k * x.latency_s for k, x in hops)
        xfer = sum(k * size_bytes / x.effective_Bps for k, x in hops)
        return _cost("broadcast", "tree", _flat(lv)[0], size_bytes, lat, xfer,
                     sum(k for k, _ in hops) * size_bytes)

    return _choose("broadcast", size_bytes, levels, algorithm, {"ring": ring, "tree": tree})


def point_to_point(size_bytes: float, levels: Sequence[CommLevel],
                   algorithm: str = "auto") -> CollectiveCost:
    """One message of ``S`` bytes across the outermost level crossed: ``alpha + S/b``.

    ``levels`` describe the pair (or the group whose neighbours exchange, e.g. pipeline
    stages); if no level has ``fanout > 1`` the ranks coincide and the cost is zero.
    """

    def direct(lv: tuple[CommLevel, ...]) -> CollectiveCost:
        outer = lv[-1]
        return send_recv(size_bytes, outer.effective_Bps, outer.latency_s)

    return _choose("point_to_point", size_bytes, levels, algorithm, {"direct": direct})


_BY_KIND: dict[str, Callable[[float, Sequence[CommLevel], str], CollectiveCost]] = {
    "all_reduce": all_reduce,
    "reduce_scatter": reduce_scatter,
    "all_gather": all_gather,
    "all_to_all": all_to_all,
    "broadcast": broadcast,
    "point_to_point": point_to_point,
}


def collective(kind: str, size_bytes: float, levels: Sequence[CommLevel],
               algorithm: str = "auto") -> CollectiveCost:
    """Dispatch to the level-aware function of ``kind`` (one of :data:`KINDS`)."""
    try:
        fn = _BY_KIND[kind]
    except KeyError:
        raise ValueError(f"unknown collective {kind!r}; known: {', '.join(KINDS)}") from None
    return fn(size_bytes, levels, algorithm)


def bus_bandwidth(kind: str, size_bytes: float, ranks: int, time_s: float) -> float:
    """nccl-tests bus bandwidth, bytes/s: ``algbw · f`` with ``algbw = S/t``.

    ``f = 2(n-1)/n`` for all-reduce; ``(n-1)/n`` for reduce-scatter, all-gather and
    all-to-all; ``1`` for broadcast and point-to-point. busbw is what compares with the
    bottleneck link's per-rank bandwidth (for a large ring all-reduce they are equal).
    """
    if kind not in _BUS_FACTOR:
        raise ValueError(f"unknown collective {kind!r}; known: {', '.join(KINDS)}")
    _check(size_bytes, ranks, 1.0, 0.0)
    if not time_s > 0 or math.isinf(time_s):
        raise ValueError(f"time_s must be finite and > 0, got {time_s!r}")
    return size_bytes / time_s * _BUS_FACTOR[kind](int(ranks))
