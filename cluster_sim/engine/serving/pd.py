"""PD separation plumbing: replica placement on cards and KV-cache transfers as network flows.

**Placement** (:func:`place_pools`): each pool's replicas get ``tp * ep`` cards of the pool's
card type, first-fit by scale-up domain in ascending (domain, card) order, so a replica stays
inside one domain when one has room and pools fill domains in configuration order. Without
a topology, replicas get consecutive *virtual* cards.

**KV transfers** (:class:`KVNetwork`): when a prompt's prefill ends, its KV moves from the
prefill replica to the decode replica as ``k = min(cards_p, cards_d)`` parallel flows, card
``i`` of one to card ``i`` of the other, each carrying ``1/k`` of the bytes over the
topology route between them (scale-up links inside a domain, NICs and switches across).
Concurrent flows share links max-min fairly (:func:`~cluster_sim.network.contention.max_min_fair`,
on the component of flows sharing links with the ones that changed); rates are recomputed
only when a flow starts or ends, and every flow's remaining bytes are advanced at the old
rates first. A transfer is delivered ``latency_s`` (route latency) after
its last byte. Without a topology, each virtual card has one egress and one ingress link at
its NIC line rate (a non-blocking fabric), latency ``default_latency_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...errors import PlacementError
from ...network.contention import max_min_fair, small_max_min_fair

__all__ = ["KVNetwork", "nic_links", "place_pools", "share_cards", "topology_links"]

Route = tuple[tuple[int, ...], float]
SMALL_COMPONENT = 24  # flows; below this pure-Python filling beats the vectorised solver's overhead



def place_pools(topology: Any, pools: Sequence[tuple[str, str, int, int]],
                allowed: np.ndarray | None = None, start_domain: int = 0) -> list[list[np.ndarray]]:
    """Cards of every replica of every pool.

    Parameters
    ----------
    topology : Topology or None
        With ``cards_by_type()`` and a per-card ``domain`` array; ``None`` gives virtual cards
        numbered consecutively.
    pools : sequence of (label, card_type, replicas, cards_per_replica)
        In placement order; ``label`` names the pool in errors.
    allowed : numpy.ndarray, optional
        The only cards replicas may use (a pool policy's inference partition); default: all.
    start_domain : int
        Scale-up domains are filled in id order starting at the first domain >= this one, then
        wrapping round (default 0: in id order).

    Returns
    -------
    list of list of numpy.ndarray
        ``out[p][i]`` = card ids (int64, ascending) of replica ``i`` of pool ``p``.
    """
    out: list[list[np.ndarray]] = []
    if topology is None:
        nxt = 0
        for _, _, reps, per in pools:
            out.append([np.arange(nxt + i * per, nxt + (i + 1) * per, dtype=np.int64) for i in range(reps)])
            nxt += reps * per
        return out
    by_type = topology.cards_by_type()
    domain = np.asarray(topology.domain)
    free: dict[str, dict[int, list[int]]] = {}
    for label, card_type, reps, per in pools:
        if card_type not in free:
            cards = np.sort(np.asarray(by_type.get(card_type, np.zeros(0, dtype=np.int64)), dtype=np.int64))
            if allowed is not None:
                cards = cards[np.isin(cards, allowed)]
            doms: dict[int, list[int]] = {}
            for c in cards.tolist():
                doms.setdefault(int(domain[c]), []).append(c)
            free[card_type] = doms
        doms = free[card_type]
        have = sum(len(v) for v in doms.values())
        if have < reps * per:
            known = ", ".join(f"{k} ({len(v)})" for k, v in sorted(by_type.items()))
            raise PlacementError(
                f"{label}: needs {reps} replicas x {per} {card_type} cards = {reps * per}, the "
                f"{'topology' if allowed is None else 'inference partition'} has {have} free; "
                f"card types: {known}")
        placed = []
        for _ in range(reps):
            ids = sorted(doms)
            ids = [d for d in ids if d >= start_domain] + [d for d in ids if d < start_domain]
            fit = next((d for d in ids if len(doms[d]) >= per), None)
            if fit is not None:
                take = doms[fit][:per]
                doms[fit] = doms[fit][per:]
            else:  # span domains, fullest first in id order
                take = []
                for d in ids:
                    need = per - len(take)
                    take += doms[d][:need]
                    doms[d] = doms[d][need:]
                    if len(take) == per:
                        break
            for d in [d for d in doms if not doms[d]]:
                del doms[d]
            placed.append(np.array(sorted(take), dtype=np.int64))
        out.append(placed)
    return out


def share_cards(placed: list[list[np.ndarray]], slices: Sequence[int]) -> list[list[np.ndarray]]:
    """Placements of sliced pools: ``placed[p]`` has one entry per *card group* of pool ``p``
    (``replicas / slices`` of them); each is repeated ``slices[p]`` times, one per replica, so
    replica ``i`` is on card group ``i // slices``."""
    return [cs if s == 1 else [c for c in cs for _ in range(s)] for cs, s in zip(placed, slices, strict=True)]


def topology_links(topology: Any) -> tuple[np.ndarray, Callable[[int, int], Route]]:
    """Link capacities and a ``(src card, dst card) -> (link ids, latency_s)`` function."""
    cap = np.asarray(topology.link_capacity_Bps, dtype=np.float64)

    def route(a: int, b: int) -> Route:
        edges = topology.route(a, b)
        ids = tuple(sorted({int(topology.link_index(u, v)) for u, v in edges}))
        return ids, float(topology.path_latency_s(a, b))

    return cap, route


def nic_links(card_nic_Bps: Sequence[float] | np.ndarray, latency_s: float) -> tuple[np.ndarray, Callable[[int, int], Route]]:
    """Virtual-card fabric: link ``2c`` = egress of card ``c``, ``2c + 1`` = its ingress."""
    cap = np.repeat(np.asarray(card_nic_Bps, dtype=np.float64), 2)

    def route(a: int, b: int) -> Route:
        return (2 * a, 2 * b + 1), latency_s

    return cap, route


class KVNetwork:
    """KV-cache transfers in flight, sharing links max-min fairly.

    Rates are the max-min fair allocation (:func:`~cluster_sim.network.contention.max_min_fair`)
    re-solved only when the flow set changes, and only for the connected component of flows
    that share links (transitively) with the flows that started or ended: the allocation
    decomposes exactly over such components, so the others keep their rates. The engine calls
    :meth:`start` and, at :attr:`next_t`, :meth:`complete`; :attr:`version` tells it when a
    scheduled completion is stale.

    Parameters
    ----------
    capacity_Bps : numpy.ndarray
        Link capacities, bytes/s.
    route : callable
        ``(src_card, dst_card) -> (link ids, latency_s)``.
    """

    def __init__(self, capacity_Bps: np.ndarray, route: Callable[[int, int], Route]) -> None:
        self.capacity_Bps = np.asarray(capacity_Bps, dtype=np.float64)
        self._cap = self.capacity_Bps.tolist()
        self._route = route
        self._routes: dict[tuple[int, int], Route] = {}
        self._flows: dict[int, list[Any]] = {}   # fid -> [remaining_bytes, rate, xfer, links]
        self._on_link: dict[int, set[int]] = {}  # link -> flows crossing it
        self._xfers: dict[int, list[Any]] = {}   # xid -> [open flows, latency_s, payload]
        self._fid = 0
        self._xid = 0
        self._t = 0.0
        self.next_t = math.inf
        self.version = 0
        self.bytes_moved = 0.0
        self.transfers = 0
        self.peak_flows = 0
        self.solves = 0

    def __len__(self) -> int:
        return len(self._xfers)

    def rates(self) -> dict[int, float]:
        """Current rate of every flow, bytes/s, by flow id."""
        return {fid: f[1] for fid, f in sorted(self._flows.items())}

    def route(self, a: int, b: int) -> Route:
        """Cached route between two cards."""
        key = (a, b)
        r = self._routes.get(key)
        if r is None:
            r = self._routes[key] = self._route(a, b)
        return r

    def _advance(self, t: float) -> None:
        dt = t - self._t
        if dt > 0.0:
            for f in self._flows.values():
                f[0] -= f[1] * dt
        self._t = t

    def _solve(self, seed_links: set[int]) -> None:
        """Re-solve the component of flows reachable from ``seed_links``."""
        on_link = self._on_link
        flows = self._flows
        todo = sorted(seed_links)
        seen_links = set(todo)
        comp: set[int] = set()
        while todo:
            link = todo.pop()
            for fid in on_link.get(link, ()):
                if fid not in comp:
                    comp.add(fid)
                    for ln in flows[fid][3]:
                        if ln not in seen_links:
                            seen_links.add(ln)
                            todo.append(ln)
        if not comp:
            return
        self.solves += 1
        ids = sorted(comp)
        if len(ids) == 1:
            f = flows[ids[0]]
            f[1] = min((self._cap[ln] for ln in f[3]), default=math.inf)
            return
        paths = [flows[i][3] for i in ids]
        rates = (small_max_min_fair(paths, self._cap) if len(ids) <= SMALL_COMPONENT
                 else max_min_fair(paths, self.capacity_Bps).tolist())
        for i, rate in zip(ids, rates, strict=True):
            flows[i][1] = rate

    def _next(self) -> None:
        nxt = math.inf
        t = self._t
        for f in self._flows.values():
            rate = f[1]
            end = t + (f[0] / rate if rate > 0.0 else math.inf)
            if end < nxt:
                nxt = end
        self.next_t = nxt
        self.version += 1

    def start(self, t: float, src_cards: np.ndarray, dst_cards: np.ndarray, nbytes: float, payload: Any) -> None:
        """Start moving ``nbytes`` from ``src_cards`` to ``dst_cards`` at ``t``."""
        self._advance(t)
        k = min(len(src_cards), len(dst_cards))
        per = nbytes / k
        self._xid += 1
        latency = 0.0
        seeds: set[int] = set()
        for i in range(k):
            links, lat = self.route(int(src_cards[i]), int(dst_cards[i]))
            latency = max(latency, lat)
            self._fid += 1
            self._flows[self._fid] = [per, math.inf, self._xid, links]
            for ln in links:
                self._on_link.setdefault(ln, set()).add(self._fid)
            seeds.update(links)
            if not links:
                self._flows[self._fid][1] = math.inf
        self._xfers[self._xid] = [k, latency, payload]
        self.bytes_moved += nbytes
        self.transfers += 1
        self.peak_flows = max(self.peak_flows, len(self._flows))
        self._solve(seeds)
        self._next()

    def cancel(self, t: float, which: Callable[[Any], bool]) -> list[Any]:
        """Stop the transfers whose payload satisfies ``which`` at ``t`` (a replica failed);
        their payloads. The other flows' rates are re-solved over the links these crossed."""
        self._advance(t)
        gone = [x for x, v in self._xfers.items() if which(v[2])]
        if not gone:
            return []
        out = []
        seeds: set[int] = set()
        drop = set(gone)
        for fid in [f for f, v in self._flows.items() if v[2] in drop]:
            seeds.update(self._unlink(fid, self._flows.pop(fid)))
        for x in sorted(gone):
            out.append(self._xfers.pop(x)[2])
        self._solve(seeds)
        self._next()
        return out

    def _unlink(self, fid: int, f: Any) -> Any:
        """Take flow ``fid`` (already out of ``_flows``) off its links; returns the links."""
        for ln in f[3]:
            on = self._on_link[ln]
            on.discard(fid)
            if not on:
                del self._on_link[ln]
        return f[3]

    def complete(self, t: float) -> list[tuple[float, Any]]:
        """Finish the flows done by ``t``; returns ``(delivery time, payload)`` of whole transfers."""
        self._advance(t)
        done: list[tuple[float, Any]] = []
        tol = 1e-9 * t + 1e-12
        seeds: set[int] = set()
        for fid in sorted(self._flows):
            f = self._flows[fid]
            if f[0] <= f[1] * tol or f[0] <= 1e-6:
                del self._flows[fid]
                seeds.update(self._unlink(fid, f))
                x = self._xfers[f[2]]
                x[0] -= 1
                if x[0] == 0:
                    del self._xfers[f[2]]
                    done.append((t + x[1], x[2]))
        self._solve(seeds)
        self._next()
        return done
