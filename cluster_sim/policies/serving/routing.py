"""Request routing: which replica of a pool serves a request.

* ``round_robin`` — replicas in turn (by the pool's request sequence number; stateless).
* ``random`` — a seeded, stateless hash of the sequence number (Mooncake's "random" baseline).
* ``least_loaded`` — fewest outstanding requests (``metric="requests"``), fewest queued prompt
  tokens (``"tokens"``) or lowest KV occupancy (``"kv"``); ties go to the lowest id.
* ``prefix_aware`` — Mooncake's KV-cache-centric choice: estimated prefill work in front of the
  request (queued prompt tokens x ``load_weight``) plus the request's own *uncached* tokens
  (prompt minus the prefix blocks already cached on that replica). ``load_weight = 0`` is
  cache-aware-only routing (most cached blocks wins).

Unequal replicas (several card types under one router, ``view.speed`` set: each replica's
saturated request rate from its perf model, the fastest 1.0): ``least_loaded`` and
``prefix_aware`` divide their load by the speed (``least_loaded(requests)`` counting the new
request itself: the replica that would be done soonest, the shortest expected delay), so a
replica twice as fast gets about twice the requests. ``random`` picks a replica with probability proportional to its
speed. ``round_robin`` stays load-blind: equal turns, so the slow type gets as many requests as
the fast one (a baseline). With equal replicas (``view.speed is None``) every policy is
exactly what it was.

Every policy is O(replicas) numpy per request and never writes into its view.
"""

from __future__ import annotations

import numpy as np

from ..base import Policy
from .base import RouteDecision, RoutingView

__all__ = ["LeastLoaded", "PrefixAware", "RandomRouting", "RoundRobin"]

_MASK64 = (1 << 64) - 1


class RoundRobin(Policy):
    """Replicas in turn: the ``sequence``-th request goes to ``replicas[sequence % n]``."""

    name = "round_robin"
    family = "routing"

    def route(self, view: RoutingView) -> RouteDecision:
        """The next replica in turn."""
        reps = view.replicas
        return RouteDecision(int(reps[view.sequence % len(reps)]))


class RandomRouting(Policy):
    """Uniformly random replica, from a stateless hash (splitmix64) of ``(seed, sequence)``.

    Parameters
    ----------
    seed : int
        Changes the sequence of choices; the same seed gives the same choices.
    """

    name = "random"
    family = "routing"

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = seed

    def route(self, view: RoutingView) -> RouteDecision:
        """A pseudo-random replica."""
        z = (view.sequence * 0x9E3779B97F4A7C15 + (self.seed + 1) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
        reps = view.replicas
        if view.speed is not None:   # unequal replicas: probability proportional to speed
            cum = np.cumsum(view.speed)
            u = (z >> 11) * (1.0 / (1 << 53)) * float(cum[-1])
            return RouteDecision(int(reps[min(int(np.searchsorted(cum, u, side="right")), len(reps) - 1)]))
        return RouteDecision(int(reps[z % len(reps)]))


class LeastLoaded(Policy):
    """The least loaded replica; ties go to the lowest replica id.

    With unequal replicas (``view.speed``), the load is divided by the replica's speed: for
    ``requests`` counting the new request too, ``(queued + running + 1) / speed`` (the shortest
    expected delay); for ``tokens`` and ``kv`` the loads above over ``speed`` (their fractional
    parts would be swamped by a whole extra unit). With equal speeds these give the same choice
    as the plain loads.

    Parameters
    ----------
    metric : str
        ``requests`` (queued + running requests), ``tokens`` (queued prompt tokens, then
        running requests) or ``kv`` (KV occupancy used/capacity, then queued requests).
    """

    name = "least_loaded"
    family = "routing"

    METRICS = ("requests", "tokens", "kv")

    def __init__(self, *, metric: str = "requests") -> None:
        self.metric = metric

    def route(self, view: RoutingView) -> RouteDecision:
        """The replica with the smallest load."""
        if view.speed is not None:
            return self._weighted(view, view.speed)
        if self.metric == "requests":
            load = view.queue_len + view.running
        elif self.metric == "tokens":
            # queued prompt tokens first; running requests break ties (scaled below one token)
            load = view.pending_prefill_tokens + view.running / (view.running.max() + 1.0)
        elif self.metric == "kv":
            load = view.kv_used_tokens / view.kv_capacity_tokens + view.queue_len
        else:
            raise ValueError(f"LeastLoaded.metric: unknown {self.metric!r}; known: {', '.join(self.METRICS)}")
        return RouteDecision(int(view.replicas[int(np.argmin(load))]))

    def _weighted(self, view: RoutingView, speed: np.ndarray) -> RouteDecision:
        """Unequal replicas: the smallest expected delay (load with this request / speed)."""
        if self.metric == "requests":
            load = (view.queue_len + view.running + 1) / speed
        elif self.metric == "tokens":
            load = (view.pending_prefill_tokens + view.running / (view.running.max() + 1.0)) / speed
        elif self.metric == "kv":
            load = (view.kv_used_tokens / view.kv_capacity_tokens + view.queue_len) / speed
        else:
            raise ValueError(f"LeastLoaded.metric: unknown {self.metric!r}; known: {', '.join(self.METRICS)}")
        return RouteDecision(int(view.replicas[int(np.argmin(load))]))


class PrefixAware(Policy):
    """Mooncake-like KV-centric routing: prefix-cache overlap plus load.

    Score per replica = ``load_weight * queued prompt tokens + uncached tokens of this
    request``, where uncached = ``max(prompt - cached_blocks * block_tokens, 1)``; the lowest
    score wins, ties to the lowest id. Both terms are prefill work (tokens), so the score is a
    TTFT estimate in units of prefill tokens, as in Mooncake's conductor. With unequal replicas
    (``view.speed``) the score is divided by the replica's speed (work over rate: a time).

    Parameters
    ----------
    load_weight : float
        Weight of the queued work; 0 gives cache-aware-only routing.
    running_weight : float
        Tokens charged per request already in the batch (decode interference), default 0.
    """

    name = "prefix_aware"
    family = "routing"

    def __init__(self, *, load_weight: float = 1.0, running_weight: float = 0.0) -> None:
        self.load_weight = load_weight
        self.running_weight = running_weight

    def route(self, view: RoutingView) -> RouteDecision:
        """The replica with the least estimated prefill work for this request."""
        uncached = np.maximum(view.prompt_tokens - view.cached_blocks * view.block_tokens, 1)
        score = uncached + self.load_weight * view.pending_prefill_tokens
        if self.running_weight:
            score = score + self.running_weight * view.running
        if view.speed is not None:
            score = score / view.speed
        return RouteDecision(int(view.replicas[int(np.argmin(score))]))
