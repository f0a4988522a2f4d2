"""One pool of one service inside the serving engine: its replicas and the load arrays routers read."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from ...errors import PlacementError
from ...perf.prefix_cache import PrefixCaches
from ...policies.serving.base import readonly
from .replica import Replica
from .specs import PoolSpec, saturated_rate

__all__ = ["ServingPool"]


class ServingPool:
    """Replicas of one pool of one service, with the load arrays routers read."""

    def __init__(self, service: int, name: str, spec: PoolSpec, first_id: int) -> None:
        n = spec.replicas
        self.service = service
        self.service_name = name
        self.kind = spec.kind
        self.spec = spec
        self.replicas: list[Replica] = []
        self.q = np.zeros(n, dtype=np.int64)
        self.run = np.zeros(n, dtype=np.int64)
        self.kvu = np.zeros(n, dtype=np.int64)
        self.pend = np.zeros(n, dtype=np.int64)
        self.kvcap = np.zeros(n, dtype=np.int64)
        self.gids = np.arange(first_id, first_id + n, dtype=np.int64)
        self.price = math.nan   # catalog USD per card-hour (NaN: none; the engine notes it)
        self.prices: list[float] = [math.nan] * n   # the same per replica (a multi-type pool's differ)
        self.ro = tuple(readonly(a) for a in (self.q, self.run, self.pend, self.kvu, self.kvcap))
        self.zeros = readonly(np.zeros(n, dtype=np.int64))
        self.local = np.zeros(0, dtype=np.int64)
        self.local_ro = self.ro
        self.ids_ro = readonly(self.gids)
        self.all_active = True
        self.seq = 0
        self.cache: PrefixCaches | None = None
        self.scaler: Any = None
        self.arrivals = 0
        self.arrivals_at_tick = 0
        self.rate_hist: deque[tuple[float, float]] = deque(maxlen=64)   # (tick, arrival rate) per tick
        self.parked: list[int] = []   # requests that found no replica on (scaled to zero), in order
        # relative speed of each replica (fastest 1.0) when they differ (several card types under
        # one router: set by the engine from each replica's perf model), else None; the routers
        # divide load by it (policies/serving/routing.py)
        self.speed: np.ndarray | None = None
        self.speed_ro: np.ndarray | None = None
        self.speed_local: np.ndarray | None = None

    def weigh(self, perfs: list[Any], prompt: np.ndarray, output: np.ndarray, max_batch_seqs: int,
              where: str) -> None:
        """Give unequal replicas (a multi-type pool) their relative speeds for the routers: each
        replica's saturated request rate at its service's mean prompt and output lengths
        (:func:`~.specs.saturated_rate`, ``prompt``/``output``: the service's requests), over the
        fastest's."""
        mp = float(prompt.mean()) if len(prompt) else 1.0
        mo = float(output.mean()) if len(output) else 1.0
        rate = np.array([saturated_rate(x, mp, mo, max_batch_seqs) for x in perfs])
        if not (np.isfinite(rate).all() and (rate > 0).all()):
            raise PlacementError(f"{where}: a replica's perf model gives no finite, positive request rate "
                                 f"({rate.tolist()}), so the routers cannot weigh unequal replicas")
        self.speed = rate / rate.max()
        self.speed_ro = readonly(self.speed)
        self.refresh()

    def refresh(self) -> None:
        """Recompute the routable set after (de)activations."""
        loc = np.array([i for i, r in enumerate(self.replicas) if r.active], dtype=np.int64)
        self.local = loc
        self.all_active = len(loc) == len(self.replicas)
        self.ids_ro = readonly(self.gids[loc])
        self.zeros = readonly(np.zeros(len(loc), dtype=np.int64))
        if self.speed is not None:
            self.speed_local = self.speed_ro if self.all_active else readonly(self.speed[loc])
