"""Serving policy interfaces: read-only views in, frozen decisions out.

Two families, each one decision method on a small class:

* **routing** — ``route(view: RoutingView) -> RouteDecision``: which replica of a pool gets a
  request (called once per request per pool, so it must be cheap: numpy over the pool's
  replicas, no Python loop over requests).
* **autoscaling** — ``scale(view: AutoscalingView) -> ScaleDecision``: how many replicas of a
  pool should be active. Called at ``t = 0`` and then every ``interval_s`` seconds of simulated
  time (``interval_s = None``: only at ``t = 0``).

Views hold numpy arrays marked read-only (``writeable=False``); a policy that tries to write
into them gets a ``ValueError``. Arrays of a :class:`RoutingView` are aligned with its
``replicas`` (the routable, i.e. active, replicas of the pool, ascending ids). Load figures
(``running``, ``kv_used_tokens``) are as of each replica's last event: between events a decode
batch's membership does not change, only its contexts grow.

Policies derive from :class:`~cluster_sim.policies.base.Policy` (``name``, ``family``, declared
parameters, ``repr``) and never import the engine; the engine validates every decision (unknown
replica -> :class:`~cluster_sim.errors.PlacementError` naming the policy). ``readonly`` is the
one helper of :mod:`cluster_sim.policies.base`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..base import readonly

__all__ = [
    "AutoscalingPolicy",
    "AutoscalingView",
    "RouteDecision",
    "RoutingPolicy",
    "RoutingView",
    "ScaleDecision",
    "readonly",
]

POOLS = ("colocated", "prefill", "decode")


@dataclass(frozen=True, slots=True)
class RoutingView:
    """What a router sees for one request.

    Attributes
    ----------
    now_s : float
        Simulated time of the arrival (or of the hand-off to the decode pool), seconds.
    service : str
        Service name.
    pool : str
        ``colocated``, ``prefill`` or ``decode``.
    sequence : int
        How many requests this pool has routed before this one (0-based): round robin uses it,
        so the policy itself stays stateless.
    prompt_tokens, output_tokens : int
        The request's lengths (output length is known to the simulator; a realistic router
        should not use it).
    replicas : numpy.ndarray
        Ids (int64) of the pool's routable replicas, ascending; never empty.
    queue_len : numpy.ndarray
        Requests waiting at each replica (int64).
    running : numpy.ndarray
        Requests in each replica's batch (prefilling or decoding; int64).
    pending_prefill_tokens : numpy.ndarray
        Prompt tokens queued at each replica and not yet prefilled (int64).
    kv_used_tokens, kv_capacity_tokens : numpy.ndarray
        KV-cache tokens in use / available per replica (int64).
    cached_blocks : numpy.ndarray
        Leading prefix blocks of this request already in each replica's prefix cache (int64;
        zeros without block hashes or a cache).
    block_tokens : int
        Tokens per prefix block (Mooncake: 512).
    speed : numpy.ndarray or None
        Relative speed of each replica (float64, the fastest 1.0: its saturated request rate
        from its perf model) when the pool's replicas differ (several card types under one
        router); ``None`` when they are all alike. Load-aware policies divide load by it.
    """

    now_s: float
    service: str
    pool: str
    sequence: int
    prompt_tokens: int
    output_tokens: int
    replicas: np.ndarray
    queue_len: np.ndarray
    running: np.ndarray
    pending_prefill_tokens: np.ndarray
    kv_used_tokens: np.ndarray
    kv_capacity_tokens: np.ndarray
    cached_blocks: np.ndarray
    block_tokens: int = 512
    speed: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Send the request to replica ``replica`` (an id from ``view.replicas``)."""

    replica: int


@runtime_checkable
class RoutingPolicy(Protocol):
    """Chooses a replica for each request."""

    def route(self, view: RoutingView) -> RouteDecision:
        """The replica for the request described by ``view``."""
        ...


@dataclass(frozen=True, slots=True)
class AutoscalingView:
    """What an autoscaler sees for one pool.

    Attributes
    ----------
    now_s : float
        Simulated time, seconds.
    service, pool : str
        Service name and pool (``colocated``, ``prefill`` or ``decode``).
    max_replicas : int
        Replicas provisioned for the pool (the scaling ceiling).
    active : int
        Replicas serving now (routable).
    warming : int
        Replicas started and still warming up.
    queue_len : int
        Requests waiting at the pool's replicas.
    running : int
        Requests in the pool's batches.
    arrival_rate_per_s : float
        Arrivals to the pool over the last interval, per second (0 at ``t = 0``).
    ttft_p90_s, tpot_p90_s : float
        p90 TTFT and TPOT of the service's recently finished requests (NaN if none).
    slo_ttft_s, slo_tpot_s : float
        The service's SLOs (NaN when unset).
    kv_occupancy : float
        Mean KV occupancy (used / capacity) over the active replicas, in [0, 1].
    rate_history : tuple of (float, float)
        ``(tick time, arrival rate over the interval before it)`` of the pool's last ticks (up
        to 64, oldest first; the last is ``(now_s, arrival_rate_per_s)``), for policies that
        forecast the load; empty at ``t = 0``.
    """

    now_s: float
    service: str
    pool: str
    max_replicas: int
    active: int
    warming: int
    queue_len: int
    running: int
    arrival_rate_per_s: float
    ttft_p90_s: float
    tpot_p90_s: float
    slo_ttft_s: float
    slo_tpot_s: float
    kv_occupancy: float
    rate_history: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """Aim for ``target_replicas`` serving replicas; new ones serve after ``warmup_s``.

    The engine clamps the target to ``[1, max_replicas]``. Scaling down stops routing to the
    highest-numbered active replicas, which drain their batches; scaling up starts the
    lowest-numbered idle replicas.
    """

    target_replicas: int
    warmup_s: float = 0.0


@runtime_checkable
class AutoscalingPolicy(Protocol):
    """Decides the number of active replicas of a pool."""

    interval_s: float | None

    def scale(self, view: AutoscalingView) -> ScaleDecision:
        """The target replica count for the pool described by ``view``."""
        ...
