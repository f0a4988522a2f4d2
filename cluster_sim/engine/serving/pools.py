"""One pool of one service inside the serving engine: its replicas and the load arrays routers read."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from ...perf.prefix_cache import PrefixCaches
from ...policies.serving.base import readonly
from .replica import Replica
from .specs import PoolSpec

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

    def refresh(self) -> None:
        """Recompute the routable set after (de)activations."""
        loc = np.array([i for i, r in enumerate(self.replicas) if r.active], dtype=np.int64)
        self.local = loc
        self.all_active = len(loc) == len(self.replicas)
        self.ids_ro = readonly(self.gids[loc])
        self.zeros = readonly(np.zeros(len(loc), dtype=np.int64))
