"""Prefix (KV-block) caches of a pool of replicas: one LRU of block ids per replica.

A prompt is a sequence of fixed-size blocks (Mooncake: 512 tokens) identified by hash ids;
equal ids mean equal token prefixes, so the KV of a cached leading run of blocks can be
reused and only the rest is prefilled. Each replica holds at most ``capacity_blocks`` block
ids, evicting the least recently used. A pool-wide index maps each block id to a bitmask of
the replicas holding it, so a router can get every replica's leading-hit count for a request
in ``O(blocks + replicas)``.

Simplifications (documented in ``docs/serving.md``): cached blocks live in a reserve of their
own (they do not take KV capacity from running requests); a request's blocks enter the cache
when it is admitted for prefill.

>>> c = PrefixCaches(replicas=2, capacity_blocks=3)
>>> c.insert(0, (10, 11, 12))
>>> c.leading_hits(0, (10, 11, 99)), c.leading_hits(1, (10, 11, 99))
(2, 0)
>>> c.all_leading_hits((10, 11, 99)).tolist()
[2, 0]
>>> c.insert(0, (13,)); c.leading_hits(0, (10, 11))   # 10 was least recently used
0
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

__all__ = ["PrefixCaches"]


class PrefixCaches:
    """LRU block caches for ``replicas`` replicas plus a block -> replicas bitmask index.

    Parameters
    ----------
    replicas : int
        Number of replicas (indices ``0 .. replicas - 1``).
    capacity_blocks : int or sequence of int
        Blocks each replica can hold (0 disables that replica's cache).
    """

    def __init__(self, replicas: int, capacity_blocks: int | Sequence[int]) -> None:
        caps = [int(capacity_blocks)] * replicas if isinstance(capacity_blocks, (int, np.integer)) \
            else [int(c) for c in capacity_blocks]
        if len(caps) != replicas or min(caps, default=0) < 0:
            raise ValueError("capacity_blocks: one value >= 0 per replica")
        self.capacity_blocks = caps
        self._lru: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(replicas)]
        self._where: dict[int, int] = {}
        self.lookups = 0
        self.hit_blocks = 0
        self.looked_up_blocks = 0

    def __len__(self) -> int:
        return len(self._lru)

    def __repr__(self) -> str:
        sizes = [len(x) for x in self._lru]
        return f"PrefixCaches(replicas={len(self._lru)}, blocks={sum(sizes)}, capacity={self.capacity_blocks[:4]}...)"

    def blocks(self, replica: int) -> int:
        """Blocks cached on ``replica``."""
        return len(self._lru[replica])

    def leading_hits(self, replica: int, hashes: Sequence[int]) -> int:
        """Length of the leading run of ``hashes`` cached on ``replica``."""
        lru = self._lru[replica]
        n = 0
        for h in hashes:
            if h not in lru:
                break
            n += 1
        return n

    def all_leading_hits(self, hashes: Sequence[int]) -> np.ndarray:
        """Leading-hit count of ``hashes`` on every replica (int64 array)."""
        n = len(self._lru)
        out = np.zeros(n, dtype=np.int64)
        alive = (1 << n) - 1
        where = self._where
        for i, h in enumerate(hashes):
            m = alive & where.get(h, 0)
            dropped = alive & ~m
            while dropped:
                low = dropped & -dropped
                out[low.bit_length() - 1] = i
                dropped ^= low
            alive = m
            if not alive:
                return out
        while alive:
            low = alive & -alive
            out[low.bit_length() - 1] = len(hashes)
            alive ^= low
        return out

    def use(self, replica: int, hashes: Sequence[int]) -> int:
        """Look up ``hashes`` on ``replica`` (counting hits), then cache them all; leading hits."""
        hits = self.leading_hits(replica, hashes)
        self.lookups += 1
        self.hit_blocks += hits
        self.looked_up_blocks += len(hashes)
        self.insert(replica, hashes)
        return hits

    def clear(self, replica: int) -> None:
        """Forget every block cached on ``replica`` (its KV state was lost)."""
        bit = 1 << replica
        where = self._where
        for h in self._lru[replica]:
            left = where[h] & ~bit
            if left:
                where[h] = left
            else:
                del where[h]
        self._lru[replica].clear()

    def insert(self, replica: int, hashes: Sequence[int]) -> None:
        """Mark ``hashes`` most recently used on ``replica``, evicting LRU blocks beyond capacity."""
        cap = self.capacity_blocks[replica]
        if cap <= 0:
            return
        lru = self._lru[replica]
        where = self._where
        bit = 1 << replica
        for h in hashes:
            if h in lru:
                lru.move_to_end(h)
            else:
                lru[h] = None
                where[h] = where.get(h, 0) | bit
        while len(lru) > cap:
            old, _ = lru.popitem(last=False)
            left = where[old] & ~bit
            if left:
                where[old] = left
            else:
                del where[old]
