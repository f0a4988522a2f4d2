"""The card broker: moves cards between serving replica slots and training jobs during one run.

Under a dynamic pool policy (``shared_pool``, ``peak_shaving``: ``cluster_sim.policies.pool.sharing``)
every replica slot of the serving engine is placed on cards at build time, but holds them only
while its replica is on. The serving engine asks the broker at each scale-up (:meth:`claim`)
and at each autoscaling tick (:meth:`tick`); the policy decides which slots start and which
lend their cards; the broker carries it out on the one :class:`~.ledger.CardLedger`, the
cluster state and the training engine:

* **claim** a slot: its free cards are held at once (``ClusterState.hold``); cards of training
  jobs are reclaimed (``peak_shaving`` only, preemptible jobs only): each such job is evicted
  (:meth:`~cluster_sim.engine.cluster.training.TrainingEngine.evict`). It checkpoints within its
  notice when it can (``checkpoint_bytes / storage bandwidth``; no work lost) or else is killed
  at the end of the notice, losing the work since its last periodic checkpoint. While it
  writes, ALL its cards are ``moving``; those outside the slot go back to training when it is
  done. The slot's cards are ``moving`` until its model's weights are loaded (weights over the
  storage bandwidth of its nodes, or the autoscaler's warm-up if longer), then ``serving``.
* **lend** (at ticks): a slot that is off, drained (no request queued, running or holding KV)
  and chosen by the policy's ``lend`` gives its cards back: ledger ``serving -> idle``,
  ``ClusterState.unhold``, and the training engine is poked for a scheduling cycle.

Events exist only where cards move: a claim, the end of a checkpoint write, an activation, a
lend. Counters: :attr:`counts` (claims, reclaimed slots, evicted jobs, model loads, lends);
:attr:`events`: ``(t, kind, cards)`` for every reclaim (cards taken from training), model load
and lend (cards given back to training).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import PlacementError
from ...policies.pool.sharing import OffSlot, SlotView
from .ledger import IDLE, MOVING, SERVING
from .sliced import SlicedCards

__all__ = ["CardBroker"]

FREE, LOADING, HELD = 0, 1, 2
"""Slot states: cards not held / held and loading the model / held (serving, draining or kept warm)."""


class CardBroker(SlicedCards):
    """Subsystem of a :class:`~cluster_sim.engine.simulation.Simulation` that lends slot cards.

    Parameters
    ----------
    policy : pool policy
        A dynamic pool policy (``start_order``, ``lend``, ``transfer_s``, ``notice_s``,
        ``checkpoint_interval_s``, ``min_replicas``).
    checkpoint_bytes : callable, optional
        ``f(job_row) -> bytes`` of a training job's checkpoint (default: the policy's
        ``checkpoint_gbyte_per_card`` x the job's cards).
    """

    def __init__(self, policy: Any, checkpoint_bytes: Callable[[int], float] | None = None) -> None:
        self.policy = policy
        self.checkpoint_bytes = checkpoint_bytes
        self.min_replicas = int(getattr(policy, "min_replicas", 1))
        self.counts = {"claims": 0, "reclaimed_slots": 0, "evictions": 0, "model_loads": 0, "lends": 0,
                       "refused_scale_ups": 0}
        self.checkpoint_card_s = 0.0   # card-seconds of training cards spent writing checkpoints
        self.lost_work_card_s = 0.0
        self.events: list[tuple[float, str, int]] = []   # (t, reclaim | load | lend, cards)
        self.slot: dict[int, int] = {}
        self.off_since: dict[int, float] = {}
        self.writing: dict[int, float] = {}   # card -> end of the checkpoint write holding it
        self._ready = 0.0   # the last claim's wait for checkpoint writes (.sliced reads it)
        self.sim: Any = None

    # ---- subsystem protocol -------------------------------------------------------------------
    def connect(self, sim: Any) -> None:
        self.sim = sim
        self.ledger = sim.ledger
        self.state = sim.state
        self.node_of = sim.layout.card_node

    @property
    def training(self) -> Any:
        return self.sim.training

    def bind(self, replicas: list[Any]) -> None:
        """The serving engine's replicas (every slot starts FREE: its cards hold nothing)."""
        self.slot = {r.rid: FREE for r in replicas}
        self.bind_slices(replicas)
        if self.training is not None:
            self.training.held_levels = True

    def finalize(self, t: float) -> None:
        pass

    # ---- helpers ------------------------------------------------------------------------------
    def _nodes(self, cards: np.ndarray) -> int:
        return int(np.unique(self.node_of[cards]).size)

    def _ckpt_bytes(self, i: int) -> float:
        if self.checkpoint_bytes is not None:
            return float(self.checkpoint_bytes(i))
        eng = self.training
        return float(self.policy.checkpoint_gbyte_per_card) * 1e9 * eng.num[i] * eng.milli[i] / 1000.0

    def _victims(self, cards: np.ndarray) -> list[int]:
        st = self.state
        out: set[int] = set()
        for c in cards.tolist():
            out.update(st.jobs_on(c))
        return sorted(out)

    def _eviction(self, i: int, t: float) -> tuple[float, float, float]:
        """(cards busy writing, work lost, restore stall) seconds of evicting job ``i`` at ``t``."""
        eng, pol = self.training, self.policy
        cards = self.state.alloc[i][0]
        save = pol.transfer_s(self._ckpt_bytes(i), self._nodes(cards))
        if save <= pol.notice_s:
            return save, 0.0, save
        lost = eng.progressed_s(i, t) % pol.checkpoint_interval_s
        return pol.notice_s, lost, save

    def _unavailable(self, cards: np.ndarray) -> list[int] | None:
        """None when a slot's ``cards`` cannot be had now (one failed, or another slot holds it);
        else those of them held by checkpoint writes (taken over by a claim)."""
        st = self.state
        if st.down[cards].any():
            return None
        held = cards[st.reserved[cards]].tolist()
        return None if any(c not in self.writing for c in held) else held

    def candidate(self, rep: Any, t: float) -> Any:
        """The policy's view of an off slot (see ``SlotView``)."""
        cards = rep.cards
        if self.slot.get(rep.rid) != FREE:
            return SlotView(rep.rid, len(cards), 0, 0, True, 0.0)
        st = self.state
        held = self._unavailable(cards)
        if held is None:
            return None
        victims = self._victims(cards)
        eng = self.training
        pre = all(eng.preemptible[i] for i in victims) if victims else True
        risk = 0.0
        for i in victims:
            hold, lost, restore = self._eviction(i, t)
            risk += (hold + lost + restore) * eng.num[i]
        on_jobs = int((st.owner[cards] != -1).sum()) + len(held)   # a write's cards count as training's
        return SlotView(rep.rid, len(cards) - on_jobs, on_jobs, len(victims), pre, risk)

    # ---- the serving engine's calls -----------------------------------------------------------
    def order(self, reps: list[Any], t: float) -> list[Any]:
        """The off replicas to try starting, in the policy's order."""
        if reps and self.sliced(reps[0]):   # a sliced pool: claims are per card (.sliced)
            return self.order_slices(reps, t)
        by_id = {r.rid: r for r in reps}
        views = [v for v in (self.candidate(r, t) for r in reps) if v is not None]
        return [by_id[v.slot] for v in self.policy.start_order(views)]

    def claim(self, rep: Any, t: float, warmup_s: float) -> float | None:
        """Take ``rep``'s cards for it at ``t``; returns the delay until it serves, or None when
        its cards cannot be had now (one failed, or another slot holds it). Cards still held by
        an evicted job's checkpoint write are taken over: the slot waits for the write to end.
        A slice of a partitioned card claims the card only if it holds nothing (.sliced)."""
        if self.sliced(rep):
            return self.claim_slice(rep, t, warmup_s)
        return self._claim_slot(rep, t, warmup_s)

    def _claim_slot(self, rep: Any, t: float, warmup_s: float) -> float | None:
        cards = rep.cards
        sim = self.sim
        if self.slot[rep.rid] != FREE:   # still holding its cards (kept warm or draining)
            self.counts["claims"] += 1
            self.off_since.pop(rep.rid, None)
            return 0.0 if self.slot[rep.rid] == HELD else max(warmup_s, 0.0)
        if self._unavailable(cards) is None:   # (the policy's view, with its eviction costs, is not needed)
            return None
        self.counts["claims"] += 1
        sim.levels.advance(t)
        taken = [c for c in cards.tolist() if c in self.writing]   # already held (moving) for a write
        ready = max((self.writing.pop(c) - t for c in taken), default=0.0)
        victims = self._victims(cards)
        if victims:
            self.counts["reclaimed_slots"] += 1
            self.events.append((t, "reclaim", int((self.state.owner[cards] != -1).sum())))
        for i in victims:
            hold, lost, restore = self._eviction(i, t)
            n = self.training.num[i] * self.training.milli[i] / 1000.0
            freed = self.training.evict(i, t, requeue_s=hold, lost_s=lost, restore_s=restore)
            self.counts["evictions"] += 1
            self.checkpoint_card_s += hold * n
            self.lost_work_card_s += lost * n
            rest = np.setdiff1d(freed, cards)
            ready = max(ready, hold)
            if rest.size and hold > 0:
                self.state.hold(rest, "checkpoint write")
                self.ledger.set(rest, IDLE, MOVING, t=t)
                for c in rest.tolist():
                    self.writing[c] = t + hold
                sim.env.timeout(hold).callbacks.append(lambda _e, c=rest: self._checkpointed(c))
        own = np.setdiff1d(cards, np.array(taken, dtype=np.int64)) if taken else cards
        if own.size:
            self.state.hold(own, "serving replica")
        self._ready = ready
        if t <= 0.0 and ready == 0.0:
            self.ledger.set(cards, IDLE, SERVING, t=t)
            self.slot[rep.rid] = HELD
            return 0.0
        load = self.policy.transfer_s(float(getattr(rep.perf, "weight_bytes_per_card", 0.0)) * len(cards),
                                      self._nodes(cards))
        self.counts["model_loads"] += 1
        self.events.append((t, "load", len(cards)))
        if own.size:
            self.ledger.set(own, IDLE, MOVING, t=t)
        self.slot[rep.rid] = LOADING
        return ready + max(load, warmup_s)

    def _checkpointed(self, cards: np.ndarray) -> None:
        t = float(self.sim.env.now)
        cards = np.array([c for c in cards.tolist() if self.writing.pop(c, None) is not None], dtype=np.int64)
        if cards.size == 0:   # a slot took them all over during the write
            return
        self.sim.levels.advance(t)
        self.ledger.set(cards, MOVING, IDLE, t=t)
        self.state.unhold(cards)
        if self.training is not None:
            self.training.poke()

    def activated(self, rep: Any, t: float) -> None:
        """``rep``'s model is loaded at ``t``: its cards serve."""
        if self.sliced(rep):
            self.slice_activated(rep, t)
            return
        if self.slot[rep.rid] == LOADING:
            self.ledger.set(rep.cards, MOVING, SERVING, t=t)
            self.slot[rep.rid] = HELD

    def switched_off(self, rep: Any, t: float) -> None:
        """The autoscaler stopped ``rep`` at ``t`` (it drains; its cards are lent later)."""
        self.off_since[rep.rid] = t

    def tick(self, pool: Any, t: float) -> None:
        """Lend the cards of drained, off slots of ``pool`` the policy picks (of a sliced pool:
        its cards whose slices are all off and drained, .sliced)."""
        if pool.replicas and self.sliced(pool.replicas[0]):
            self.tick_slices(pool, t)
            return
        off = []
        for r in pool.replicas:
            st = self.slot[r.rid]
            if r.active or r.warming or st == FREE:
                continue
            if st == LOADING:   # a warm-up cancelled before it ended: stop loading, give the cards back
                self._release(r, MOVING, t)
                continue
            if r.phase or r.W or r.Wr or r.kv or r.inflight or r.xq:
                continue        # still draining
            off.append(OffSlot(r.rid, self.off_since.get(r.rid, t)))
        if not off:
            return
        lend = set(self.policy.lend(off, t))
        for r in pool.replicas:
            if r.rid in lend:
                self._release(r, SERVING, t)

    def _release(self, rep: Any, src: int, t: float) -> None:
        if self.slot[rep.rid] == FREE:
            raise PlacementError(f"card broker: replica {rep.rid} holds no cards")
        self.sim.levels.advance(t)
        self.ledger.set(rep.cards, src, IDLE, t=t)
        self.state.unhold(rep.cards)
        self.slot[rep.rid] = FREE
        self.off_since.pop(rep.rid, None)
        self.counts["lends"] += 1
        self.events.append((t, "lend", len(rep.cards)))
        if self.training is not None:
            self.training.poke()

    def record(self) -> dict[str, Any]:
        """The broker's part of the run record."""
        return {**self.counts, "checkpoint_card_s": self.checkpoint_card_s,
                "lost_work_card_s": self.lost_work_card_s, "min_replicas": self.min_replicas}
