"""Pool policies that move cards between serving and training during the run: ``shared_pool``
(池化) and ``peak_shaving`` (训推一体, 削峰填谷).

Both keep one simulation on one card ledger in which no card is set aside: an inference
service's replica slots are placed on cards of its type (:meth:`partition` says which cards
slots may use), a slot holds its cards only while its replica serves, warms or drains, and a
slot that is off gives its cards to training. The card broker
(:mod:`cluster_sim.engine.pool.broker`) carries the decisions out; a policy makes two:

* :meth:`start_order` (scale-up): which off slots to start, in order, from a
  :class:`SlotView` of each candidate: cards already free, training jobs on its cards and
  whether they may be preempted. ``shared_pool`` starts only slots whose cards are free (a
  replica waits for training to finish; first come, first served); ``peak_shaving`` also
  reclaims cards from preemptible training jobs, cheapest first (fewest cards evicted, then
  least work at risk), never from a job that is not preemptible.
* :meth:`lend` (scale-down): which drained off slots give their cards back to training now:
  every one that has been off for ``lend_after_s``, except the ``headroom`` slots kept warm
  (held, not lent) so a small rise in load is served at once.

Reclaim costs (``peak_shaving``): a preempted job is told ``notice_s`` ahead. If its checkpoint
(``checkpoint_bytes`` over the storage bandwidth of its nodes) can be written within the
notice, it checkpoints at once and loses no work; otherwise it is killed when the notice
ends and loses the work since its last periodic checkpoint (at most ``checkpoint_interval_s``
of it). It resumes later from that checkpoint, reading it back at the same bandwidth. A slot
starts serving after its cards are free and its model's weights are loaded
(weights over the same storage bandwidth, or the autoscaler's warm-up if longer).

>>> p = PeakShaving(headroom=1)
>>> [s.slot for s in p.start_order([SlotView(0, 8, 0, 0, True, 0.0), SlotView(1, 0, 8, 1, True, 50.0),
...                                 SlotView(2, 0, 8, 1, False, 1.0)])]
[0, 1]
>>> [s.slot for s in SharedPool().start_order([SlotView(0, 0, 8, 1, True, 9.0), SlotView(1, 8, 0, 0, True, 0.0)])]
[1]
>>> p.lend([OffSlot(3, 600.0), OffSlot(4, 10.0), OffSlot(5, 900.0)], now_s=1000.0)  # 5 is headroom
[3, 4]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..base import Policy, readonly
from .partition import PoolPlan, PoolView, _check_tenant_cards

__all__ = ["OffSlot", "PeakShaving", "SharedPool", "SlotView"]

GB = 1e9


@dataclass(frozen=True)
class SlotView:
    """One off replica slot a scale-up may start.

    Attributes
    ----------
    slot : int
        The replica's id.
    free_cards : int
        Its cards that hold nothing now.
    training_cards : int
        Its cards held by training jobs.
    victims : int
        Training jobs holding its cards.
    preemptible : bool
        Every one of those jobs may be preempted.
    work_at_risk_s : float
        Card-seconds of training those jobs would lose or have to re-read (checkpoint and restore
        time x their cards, plus work since their last checkpoint when the notice is too short).
    """

    slot: int
    free_cards: int
    training_cards: int
    victims: int
    preemptible: bool
    work_at_risk_s: float


@dataclass(frozen=True)
class OffSlot:
    """A drained, off slot that still holds its cards, and when it went off."""

    slot: int
    off_since_s: float


def _number(v: Any, what: str, *, lo: float = 0.0, integer: bool = False, allow_none: bool = False) -> None:
    if v is None and allow_none:
        return
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and v >= lo
    if integer:
        ok = ok and isinstance(v, int)
    if not ok:
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{what}: must be {kind} >= {lo:g}, got {v!r:.40}")


class _Dynamic(Policy):
    """What both sharing policies have: slots anywhere, headroom, lending, load costs."""

    dynamic: ClassVar[bool] = True
    reclaims: ClassVar[bool] = False

    def __init__(self, *, min_replicas: int = 1, headroom: int = 0, lend_after_s: float = 300.0,
                 storage_gbyte_per_s_per_node: float = 50.0, storage_gbyte_per_s: float | None = None,
                 notice_s: float = 120.0, checkpoint_interval_s: float = 1800.0,
                 checkpoint_gbyte_per_card: float = 14.0, share_slots: bool = False,
                 tenant_cards: Any = None) -> None:
        # accepted (validated) so a compare can switch ``policy.pool.name`` from a static_partition
        # with tenant silos; one pool silos no tenant: the run's notes say the sizes are unused
        self.tenant_cards = _check_tenant_cards(tenant_cards)
        _number(min_replicas, "min_replicas", lo=0, integer=True)
        if not isinstance(share_slots, bool):
            raise ValueError(f"share_slots: must be true or false, got {share_slots!r:.40}")
        self.share_slots = share_slots
        _number(headroom, "headroom", integer=True)
        _number(lend_after_s, "lend_after_s")
        _number(storage_gbyte_per_s_per_node, "storage_gbyte_per_s_per_node", lo=1e-9)
        _number(storage_gbyte_per_s, "storage_gbyte_per_s", lo=1e-9, allow_none=True)
        _number(notice_s, "notice_s")
        _number(checkpoint_interval_s, "checkpoint_interval_s", lo=1e-9)
        _number(checkpoint_gbyte_per_card, "checkpoint_gbyte_per_card")
        self.min_replicas = min_replicas
        self.headroom = headroom
        self.lend_after_s = lend_after_s
        self.storage_gbyte_per_s_per_node = storage_gbyte_per_s_per_node
        self.storage_gbyte_per_s = storage_gbyte_per_s
        self.notice_s = notice_s
        self.checkpoint_interval_s = checkpoint_interval_s
        self.checkpoint_gbyte_per_card = checkpoint_gbyte_per_card

    def partition(self, view: PoolView) -> PoolPlan:
        """Slots may use every card of the types the deployments need; nothing is set aside."""
        types = [t for t, n in view.demand_by_type.items() if n > 0]
        ks = [view.card_types.index(t) for t in types if t in view.card_types]
        cards = np.flatnonzero(np.isin(view.card_type, ks)).astype(np.int64)
        return PoolPlan(True, readonly(cards), {}, dynamic=True)

    def transfer_s(self, nbytes: float, n_nodes: int) -> float:
        """Seconds to move ``nbytes`` to or from storage, spread over ``n_nodes`` nodes."""
        bw = self.storage_gbyte_per_s_per_node * GB * max(int(n_nodes), 1)
        if self.storage_gbyte_per_s is not None:
            bw = min(bw, self.storage_gbyte_per_s * GB)
        return float(nbytes) / bw

    def start_order(self, candidates: Sequence[SlotView]) -> list[SlotView]:
        """The candidates to start, in order (see the module docstring)."""
        ok = [c for c in candidates if c.victims == 0 or (self.reclaims and c.preemptible)]
        return sorted(ok, key=lambda c: (c.training_cards, c.work_at_risk_s, c.slot))

    def lend(self, off: Sequence[OffSlot], now_s: float) -> list[int]:
        """Slots to give back to training: off for ``lend_after_s``, beyond the ``headroom``
        most recently switched off (kept held)."""
        ready = sorted(off, key=lambda s: (-s.off_since_s, s.slot))[self.headroom:]
        return sorted(s.slot for s in ready if now_s - s.off_since_s >= self.lend_after_s)


class SharedPool(_Dynamic):
    """池化: one pool; a replica starts only on cards no one holds (training is never preempted).

    Parameters
    ----------
    min_replicas : int
        Replicas every pool keeps serving (claimed at the start, before any training job). 0 lets
        a colocated service scale to zero: a request that finds no replica waits (is parked) until
        the autoscaler starts one and its model is loaded (a cold start); prefill and decode pools
        keep at least one.
    share_slots : bool
        Place every service's replica slots over the same cards, the slots of service ``k`` (of
        ``S``) from scale-up domain ``k x D / S`` on (wrapping round), so services spread over the
        pool and overlap: one slot holds a card at a time, and a card that changes model pays the
        new model's load. Default: each service's slots on cards of their own.
    headroom : int
        Off slots per pool kept holding their cards (not lent) for a quick scale-up.
    lend_after_s : float
        How long a drained slot stays off before its cards go to training.
    storage_gbyte_per_s_per_node : float
        Storage read/write bandwidth of one node (default 50 GB/s: two 200 Gb/s storage NICs
        of a DGX A100, DOMAIN.md 3).
    storage_gbyte_per_s : float, optional
        Cap on the storage system's total bandwidth for one transfer.
    notice_s, checkpoint_interval_s, checkpoint_gbyte_per_card : float
        Used by ``peak_shaving`` (accepted here so the two compare with the same parameters).
    """

    name, family = "shared_pool", "pool"


class PeakShaving(_Dynamic):
    """训推一体 / 削峰填谷: inference reclaims cards from preemptible training at peaks and lends
    them back in valleys.

    Parameters
    ----------
    notice_s : float
        Preemption notice a reclaimed training job gets (default 120 s, the notice of common
        spot/preemptible cloud instances).
    checkpoint_interval_s : float
        Period of a job's own checkpoints; bounds the work lost when the notice is too short.
    checkpoint_gbyte_per_card : float
        Checkpoint size per card of a job without a model (an explicit model job's checkpoint is
        its weights, master weights and Adam moments: 14 bytes per parameter). Default 14 GB
        per card, i.e. one billion parameters per card.
    min_replicas, headroom, lend_after_s, storage_gbyte_per_s_per_node, storage_gbyte_per_s
        As for ``shared_pool``.
    """

    name, family = "peak_shaving", "pool"
    reclaims = True
