"""Building a serving engine's run (a mixin of
:class:`~cluster_sim.engine.serving.engine.ServingEngine`): the merged request arrays and the
rejections decided before the run, the pools, the timeline bin width, and the replicas placed
on cards (one placement entry per replica group; sliced pools share cards; placement-specific
perf models; prefix caches; the KV network). Everything here runs once, before the first event.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ...perf.inference import ReplicaPerf
from ...perf.prefix_cache import PrefixCaches
from .admission import (
    card_power_note,
    card_price,
    mark_rejections,
    nic_bandwidth,
    placed_levels,
    service_where,
    truncate_overlong,
)
from .pd import KVNetwork, nic_links, place_pools, share_cards, topology_links
from .pools import ServingPool
from .replica import COLOCATED, DECODE, PREFILL, Replica, RequestState

__all__ = ["EngineSetup"]

_ROLE = {"colocated": COLOCATED, "prefill": PREFILL, "decode": DECODE}


class EngineSetup:
    """The build steps of :class:`~cluster_sim.engine.serving.engine.ServingEngine` (which sets
    the attributes used here in its constructor)."""

    services: list[Any]
    options: Any
    topology: Any
    allowed_cards: Any
    broker: Any
    horizon: float
    bin_width: float
    block_tokens: int
    routing: Any
    autoscaling: Any

    # ---- build ----------------------------------------------------------------------------
    def _build_requests(self) -> None:
        tables = [s.requests for s in self.services]
        self.offsets = np.cumsum([0] + [len(t) for t in tables])
        n = int(self.offsets[-1])
        self.arrival = np.concatenate([t.arrival_s for t in tables]) if n else np.zeros(0)
        prompt = np.concatenate([t.prompt_tokens for t in tables]).astype(np.int64) if n else np.zeros(0, np.int64)
        output = np.concatenate([t.output_tokens for t in tables]).astype(np.int64) if n else np.zeros(0, np.int64)
        self.svc_of = np.repeat(np.arange(len(tables)), [len(t) for t in tables]).astype(np.int64)
        self.truncated = np.zeros(n, dtype=np.int64)   # prompt tokens cut (overlong: truncate)
        for k, s in enumerate(self.services):
            if s.overlong == "truncate":
                lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
                self.truncated[lo:hi] = truncate_overlong(prompt[lo:hi], output[lo:hi], s.max_context)
        prompt = prompt - self.truncated
        blocks: list[Any] | None = None
        if any(t.block_hashes is not None for t in tables):
            blocks = [None] * n
            for k, t in enumerate(tables):
                if t.block_hashes is None:
                    continue
                self.block_tokens = int(t.block_tokens)
                assert t.block_offsets is not None  # RequestTable sets both or neither
                h, off = t.block_hashes.tolist(), t.block_offsets.tolist()
                base = int(self.offsets[k])
                cut = self.truncated[base:base + len(t)].tolist()
                for i in range(len(t)):  # a truncated prompt no longer starts with its hashed prefix
                    blocks[base + i] = None if cut[i] else tuple(h[off[i]:off[i + 1]])
        self.rs = RequestState(prompt.tolist(), output.tolist(), blocks)
        self.prompt_np, self.output_np = prompt, output
        self.reason = np.zeros(n, dtype=np.int8)
        self.notes: list[str] = []   # warnings for the run's notes (rejections, missing prices, ...)

    def _build_pools(self) -> None:
        self.pools: list[ServingPool] = []
        self.entry: list[ServingPool] = []
        self.decode_pool: list[ServingPool | None] = []
        gid = 0
        for k, s in enumerate(self.services):
            made = []
            for spec in s.pools:
                p = ServingPool(k, s.name, spec, gid)
                gid += spec.replicas
                p.scaler = self.autoscaling
                made.append(p)
            self.pools += made
            self.entry.append(made[0])
            self.decode_pool.append(made[1] if len(made) == 2 else None)
        self.n_replicas = gid
        for p in self.pools:
            where = f"{service_where(self.services[p.service])} {p.kind} pool"
            prices = []
            for g in p.spec.layout():
                at = where if not p.spec.groups else f"{where} {g.card_type} group"
                price, note = card_price(g.card_type, at)
                prices += [price] * g.replicas
                for n in (note, card_power_note(g.card_type, at)):
                    if n:
                        self.notes.append(n)
            p.price = prices[0]
            p.prices = prices

    def _bin_width(self) -> float:
        if self.options.timeline_interval_s:
            self._bins_grow = False
            return float(self.options.timeline_interval_s)
        self._bins_grow = not math.isfinite(self.horizon)
        span = self.horizon if math.isfinite(self.horizon) else float(self.arrival.max(initial=0.0))
        return max(span, 1e-3) / 200.0

    def bin_width_at(self, start: float) -> float:
        """Width of the timeline bin starting at ``start``.

        Fixed (``timeline_interval_s``, or horizon / 200) when the end is known; when the run
        drains, widths double every 200 bins so a long tail stays a few hundred rows.
        """
        w = self.bin_width
        if not self._bins_grow:
            return w
        epoch = int(math.log2(start / (200.0 * w) + 1.0) + 1e-9)
        return w * (1 << epoch)

    def _build_replicas(self) -> None:
        opt, rs = self.options, self.rs
        # one placement entry per replica group (a single-type pool is one group), regrouped per
        # pool below: each group's replicas on its own type's cards; a sliced pool (one group):
        # one entry per card, shared by its slices below
        labels = [(f"service {p.service_name!r} {p.kind} pool" + (f" {g.card_type} group" if p.spec.groups else ""),
                   g.card_type, g.replicas // p.spec.slices, g.cards_per_replica)
                  for p in self.pools for g in p.spec.layout()]
        owner = [j for j, p in enumerate(self.pools) for _ in p.spec.layout()]
        if self.broker is not None and getattr(self.broker.policy, "share_slots", False):
            # every service's slots over the same cards (one slot holds a card at a time), service
            # k's starting at scale-up domain k * D / S so the services spread over the pool
            dom = np.asarray(self.topology.domain)
            usable = self.allowed_cards if self.allowed_cards is not None else np.arange(dom.size)
            doms = np.unique(dom[usable]).tolist()
            placed: list[list[np.ndarray]] = []
            n = len(self.services)
            for k in range(n):
                idx = [i for i, j in enumerate(owner) if self.pools[j].service == k]
                start = doms[k * len(doms) // n] if doms else 0
                placed += place_pools(self.topology, [labels[i] for i in idx], self.allowed_cards, start)
        else:
            placed = place_pools(self.topology, labels, self.allowed_cards)
        if len(placed) != len(self.pools):   # multi-type pools: join their groups' cards
            placed = [[c for j, cs in zip(owner, placed, strict=True) if j == i for c in cs]
                      for i in range(len(self.pools))]
        placed = share_cards(placed, [p.spec.slices for p in self.pools])
        self.replicas: list[Replica] = []
        for p, cards in zip(self.pools, placed, strict=True):
            role = _ROLE[p.kind]
            perfs = [self._placed_perf(p, i, cards[i]) for i in range(p.spec.replicas)]
            if opt.prefix_cache and rs.blocks is not None and role != DECODE:
                per = opt.prefix_cache_blocks
                caps = [per if per is not None else int(x.kv_capacity_tokens) // self.block_tokens for x in perfs]
                p.cache = PrefixCaches(p.spec.replicas, caps)
            for i in range(p.spec.replicas):
                rep = Replica(self, len(self.replicas), p, i, role, perfs[i], rs,
                              max_batch_tokens=opt.max_batch_tokens, max_batch_seqs=opt.max_batch_seqs,
                              chunked=opt.chunked_prefill, chunk_tokens=opt.chunk_tokens,
                              upfront=opt.upfront, watermark=opt.kv_watermark, cache=p.cache)
                rep.cards = cards[i]
                p.replicas.append(rep)
                p.kvcap[i] = rep.cap
                self.replicas.append(rep)
            p.refresh()
            if len(p.spec.groups) > 1:
                self._set_speed(p, perfs)
        self.net: KVNetwork | None = None
        if any(s.disaggregated for s in self.services):
            if self.topology is not None:
                cap, route = topology_links(self.topology)
            else:
                nic = np.zeros(max((int(c.max()) + 1 for cs in placed for c in cs if c.size), default=0))
                for p, cs in zip(self.pools, placed, strict=True):
                    if not self.services[p.service].disaggregated:
                        continue
                    bw = nic_bandwidth(p.spec.card_type, f"{service_where(self.services[p.service])} {p.kind} pool")
                    for c in cs:
                        nic[c] = bw
                cap, route = nic_links(nic, opt.kv_latency_s)
            self.net = KVNetwork(cap, route)
        self._reject()

    def _set_speed(self, pool: ServingPool, perfs: list[Any]) -> None:
        k = pool.service
        lo, hi = int(self.offsets[k]), int(self.offsets[k + 1])
        pool.weigh(perfs, self.prompt_np[lo:hi], self.output_np[lo:hi], self.options.max_batch_seqs,
                   f"{service_where(self.services[k])} {pool.kind} pool")

    def _placed_perf(self, pool: ServingPool, i: int, cards: np.ndarray) -> Any:
        spec = pool.spec
        perf = spec.perf_of(i)
        if self.topology is None or spec.replica_perfs is not None or not isinstance(perf, ReplicaPerf):
            return perf
        where = f"{service_where(self.services[pool.service])} {pool.kind} pool replica {i}"
        tp_levels, ep_levels = placed_levels(self.topology, perf.tp, perf.ep, cards, where, self.notes)
        if tp_levels is None and ep_levels is None:
            return perf
        return dataclasses.replace(perf, comm_levels=tp_levels or perf.comm_levels,
                                   ep_comm_levels=ep_levels or perf.ep_comm_levels)

    def _reject(self) -> None:
        """Mark requests no replica can ever serve, with a reason code; note them."""
        caps = [[min(int(r.cap) for r in self.pools[i].replicas) for i in self._pool_ids(k)]
                for k in range(len(self.services))]
        self.reason[:] = mark_rejections(self.services, self.offsets, self.prompt_np, self.output_np,
                                         self.truncated, caps, self.options, self.notes)
        st = self.rs.status
        for i in np.flatnonzero(self.reason).tolist():
            st[i] = 2

    def _pool_ids(self, k: int) -> list[int]:
        return [i for i, p in enumerate(self.pools) if p.service == k]
