"""The card broker's rules for sliced cards (``slices`` replicas per card, MIG-like partitions).

A pool with ``slices > 1`` puts ``slices`` replica slots on each of its cards
(:func:`cluster_sim.engine.serving.pd.share_cards`). Under a dynamic pool policy the unit the
broker claims and lends is then the **card**, not the slot; :class:`SlicedCards` is the part of
:class:`~cluster_sim.engine.pool.broker.CardBroker` that keeps the card's state beside its slices':

* **claim.** The first slice started on a card that holds nothing claims the card exactly as a
  whole-card slot claims its cards (free cards; under ``peak_shaving`` reclaimed from preemptible
  training, the evicted jobs' checkpoint writes first); the card is ``moving``. A slice started on
  a card already held claims no card: it only loads its own model's weights (its bytes over the
  storage bandwidth, or the autoscaler's warm-up if longer, after any checkpoint write still
  holding the card). A slice off but still on a held card keeps its weights and restarts at once.
* **moving -> serving.** The card is ``moving`` while it is claimed and none of its slices serves
  yet; it is ``serving`` from the first slice's activation until it is lent (whatever its other
  slices do: a slice loading on a serving card leaves the card ``serving``). One state per card.
* **lend.** A card is lent (``serving -> idle``) only when ALL its slices are off and drained,
  chosen by the policy's ``lend`` with one :class:`~cluster_sim.policies.pool.sharing.OffSlot` per
  card, off since its last slice went off: ``lend_after_s`` counts from then and ``headroom``
  counts cards. A card whose only started slices had their warm-up cancelled before any served is
  given back at once (as a whole-card slot's).
* **start order.** Off slices whose card is held come first (kept-warm ones, then those that need
  only their model's load), in slot order; then the policy's ``start_order`` over one view per
  card that holds nothing, each card's slices in a row. So a scale-up fills held cards' free
  slices before it claims a new card, and the second slice of a newly claimed card comes next.

Events stay where cards or models move: a claim, a load, an activation, a lend (ticks only).
"""

from __future__ import annotations

from typing import Any

from ...policies.pool.sharing import OffSlot
from .ledger import MOVING, SERVING

__all__ = ["SlicedCards"]

FREE, LOADING, HELD = 0, 1, 2   # as in .broker: not held / held, nothing serving yet / held, serving


class SlicedCards:
    """Mixin of the card broker: the state of sliced cards (see the module docstring).

    Attributes
    ----------
    card_of : dict
        Sliced slot (replica id) -> its card's key (the replica id of the card's first slice).
    slices_on : dict
        Card key -> the replicas on that card, in slot order.
    card : dict
        Card key -> ``FREE`` (held by nobody), ``LOADING`` (claimed, ``moving``: no slice serves yet)
        or ``HELD`` (``serving``).
    """

    slot: dict[int, int]
    off_since: dict[int, float]
    counts: dict[str, int]
    events: list[tuple[float, str, int]]
    policy: Any

    def bind_slices(self, replicas: list[Any]) -> None:
        """Group the sliced slots of ``replicas`` by card."""
        self.card_of: dict[int, int] = {}
        self.slices_on: dict[int, list[Any]] = {}
        self.card: dict[int, int] = {}
        self.ready_at: dict[int, float] = {}   # card key -> end of the checkpoint write it waits for
        for r in replicas:
            s = int(getattr(r.pool.spec, "slices", 1))
            if s > 1:
                g = int(r.pool.replicas[r.local - r.local % s].rid)
                self.card_of[r.rid] = g
                self.slices_on.setdefault(g, []).append(r)
                self.card[g] = FREE

    def sliced(self, rep: Any) -> bool:
        """``rep`` is a slice of a partitioned card."""
        return rep.rid in self.card_of

    # ---- claim ----------------------------------------------------------------------------------
    def claim_slice(self, rep: Any, t: float, warmup_s: float) -> float | None:
        """:meth:`CardBroker.claim` of a sliced slot: the card if it holds nothing, else only the
        slice (its model's load)."""
        g = self.card_of[rep.rid]
        if self.card[g] == FREE:
            delay = self._claim_slot(rep, t, warmup_s)   # type: ignore[attr-defined]
            if delay is not None:
                self.card[g] = self.slot[rep.rid]   # LOADING (moving) or, at t = 0, HELD (serving)
                self.ready_at[g] = t + self._ready  # type: ignore[attr-defined]
            return delay
        self.counts["claims"] += 1
        self.off_since.pop(rep.rid, None)
        st = self.slot[rep.rid]
        if st != FREE:   # its model loaded (kept warm) or loading (a cancelled warm-up restarted)
            return 0.0 if st == HELD else max(warmup_s, 0.0)
        if t <= 0.0:
            self.slot[rep.rid] = HELD
            return 0.0
        cards = rep.cards
        load = self.policy.transfer_s(float(getattr(rep.perf, "weight_bytes_per_card", 0.0)) * len(cards),
                                      self._nodes(cards))   # type: ignore[attr-defined]
        self.counts["model_loads"] += 1
        self.events.append((t, "load", len(cards)))
        self.slot[rep.rid] = LOADING
        return max(self.ready_at.get(g, t) - t, 0.0) + max(load, warmup_s)

    def slice_activated(self, rep: Any, t: float) -> None:
        """A slice's model is loaded at ``t``: it serves; its card serves from its first slice on."""
        if self.slot[rep.rid] == LOADING:
            self.slot[rep.rid] = HELD
        g = self.card_of[rep.rid]
        if self.card[g] == LOADING:
            self.ledger.set(rep.cards, MOVING, SERVING, t=t)   # type: ignore[attr-defined]
            self.card[g] = HELD

    # ---- start order ----------------------------------------------------------------------------
    def order_slices(self, reps: list[Any], t: float) -> list[Any]:
        """The off sliced replicas to try starting: those on held cards first, then the policy's
        order of the cards that hold nothing (see the module docstring)."""
        slot, card, card_of = self.slot, self.card, self.card_of
        warm = sorted((r for r in reps if slot[r.rid] != FREE), key=lambda r: (slot[r.rid] != HELD, r.rid))
        on_held = sorted((r for r in reps if slot[r.rid] == FREE and card[card_of[r.rid]] != FREE),
                         key=lambda r: r.rid)
        free: dict[int, list[Any]] = {}
        for r in sorted(reps, key=lambda r: r.rid):
            if card[card_of[r.rid]] == FREE:
                free.setdefault(card_of[r.rid], []).append(r)
        views = [v for v in (self.candidate(rs[0], t) for rs in free.values())   # type: ignore[attr-defined]
                 if v is not None]
        new = [r for v in self.policy.start_order(views) for r in free[card_of[v.slot]]]
        return warm + on_held + new

    # ---- lend -----------------------------------------------------------------------------------
    def tick_slices(self, pool: Any, t: float) -> None:
        """:meth:`CardBroker.tick` of a sliced pool: lend the cards whose slices are all off and
        drained, as the policy picks (one off slot per card)."""
        off = []
        for g in dict.fromkeys(self.card_of[r.rid] for r in pool.replicas):
            if self.card[g] == FREE:
                continue
            reps = self.slices_on[g]
            for r in reps:   # a warm-up cancelled before it ended: that slice stops loading
                if self.slot[r.rid] == LOADING and not (r.active or r.warming):
                    self.slot[r.rid] = FREE
                    self.off_since.pop(r.rid, None)
            if all(self.slot[r.rid] == FREE for r in reps):   # nothing served on it: back at once
                self._release_card(g, t)
                continue
            if any(r.active or r.warming or r.phase or r.W or r.Wr or r.kv or r.inflight or r.xq for r in reps):
                continue        # a slice on, or still draining
            since = max((self.off_since[r.rid] for r in reps if r.rid in self.off_since), default=t)
            off.append(OffSlot(g, since))
        if not off:
            return
        for g in sorted(self.policy.lend(off, t)):
            self._release_card(g, t)

    def _release_card(self, g: int, t: float) -> None:
        reps = self.slices_on[g]
        src = MOVING if self.card[g] == LOADING else SERVING
        holder = next((r for r in reps if self.slot[r.rid] != FREE), reps[0])
        self.slot[holder.rid] = LOADING   # _release needs a holding slot; the card's state is src
        self._release(holder, src, t)     # type: ignore[attr-defined]
        for r in reps:
            self.slot[r.rid] = FREE
            self.off_since.pop(r.rid, None)
        self.card[g] = FREE
        self.ready_at.pop(g, None)
