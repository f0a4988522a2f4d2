"""The card ledger: which state every card of the cluster is in, on the simulation's clock.

One :class:`CardLedger` per :class:`~cluster_sim.engine.simulation.Simulation`. Every card is in
exactly one state at a time: ``idle``, ``training`` (held by training jobs, whole or in
fractional shares), ``serving`` (held by an inference replica), ``moving`` (between holders:
drain, checkpoint, model load) or ``down`` (failed). The engines take and give back cards
through it (the cluster engine where ``ClusterState`` allocates and releases, the serving engine
where replicas are placed); a card given to a second holder is a
:class:`~cluster_sim.errors.PlacementError`, never a silent overwrite.

A transition costs O(changed cards) in plain Python for small placements (the cluster engine's
fast path; numpy for large ones) and nothing at all between transitions: each (state, card
type) keeps its card count ``c`` and the sum ``a`` of ``+t`` for every card that entered it and
``-t`` for every card that left it at time ``t``, so its card-seconds over ``[0, T]`` are
``c * T - a`` (the integral of the count, evaluated only when asked). Every transition adds
and removes the same ``t``, so ``sum over states of card_seconds == n_cards x T`` up to rounding.

>>> import numpy as np
>>> led = CardLedger(np.array([0, 0, 1, 1]), ("h100-sxm", "ascend-910b"))
>>> led.take(np.array([0, 1]), SERVING, t=0.0)
>>> led.take(np.array([2]), TRAINING, t=10.0)
>>> led.give(np.array([2]), TRAINING, t=30.0)
>>> led.card_seconds(40.0)
{'idle': 60.0, 'training': 20.0, 'serving': 80.0, 'moving': 0.0, 'down': 0.0}
>>> led.take(np.array([1]), TRAINING, t=40.0)
Traceback (most recent call last):
...
cluster_sim.errors.PlacementError: card ledger: card 1 is serving, cannot be given to training
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ...errors import PlacementError

__all__ = ["DOWN", "IDLE", "MOVING", "SERVING", "STATES", "TRAINING", "CardLedger"]

IDLE, TRAINING, SERVING, MOVING, DOWN = range(5)
STATES = ("idle", "training", "serving", "moving", "down")
"""State names, indexed by the state codes."""


class CardLedger:
    """Per-card state of the whole cluster with time-weighted card-seconds per state and type.

    Parameters
    ----------
    card_type : numpy.ndarray
        Type index of every card (length ``n_cards``).
    card_types : tuple of str
        Type names, indexed by ``card_type``.
    clock : callable, optional
        Current simulated time, read at a transition whose ``t`` is not given.

    Attributes
    ----------
    state : numpy.ndarray
        State code of every card (int8, live, read-only use).
    holds : dict of int to int
        Number of fractional training shares on each shared card.
    """

    SMALL = 32  # cards; below this a transition runs in plain Python

    def __init__(self, card_type: np.ndarray, card_types: tuple[str, ...], clock: Any = None) -> None:
        self.card_type = np.asarray(card_type, dtype=np.int64)
        self.card_types = tuple(card_types)
        self.n_cards = n = int(self.card_type.size)
        T = self._T = len(self.card_types)
        self._st = bytearray(n)                      # IDLE == 0
        self.state = np.frombuffer(self._st, dtype=np.int8)
        self._ct = self.card_type.tolist()
        self.holds: dict[int, int] = {}
        cap = np.bincount(self.card_type, minlength=T).astype(np.int64)
        self.capacity_by_type = cap
        self._n = [[0] * T for _ in STATES]
        self._n[IDLE] = cap.tolist()
        self._a = [[0.0] * T for _ in STATES]
        self.t = 0.0
        self.clock = clock
        self.transitions = 0
        self._tot = [0] * len(STATES)   # cards per state (all types)
        self._tot[IDLE] = n
        self._bin = 0.0                 # timeline bin width (0: no timeline, see :meth:`enable_timeline`)

    @property
    def counts(self) -> np.ndarray:
        """Cards per (state, type) now, ``(states, types)``."""
        return np.array(self._n, dtype=np.int64)

    # ---- transitions ---------------------------------------------------------------------------
    def _time(self, t: float | None) -> float:
        if t is None:
            t = float(self.clock()) if self.clock is not None else self.t
        if t < self.t:
            raise PlacementError(f"card ledger: transition at t={t!r} before the last one at t={self.t!r}")
        if self._bin and t > self.t:
            self._advance(t)
        self.t = t
        return t

    # ---- timeline (optional) -----------------------------------------------------------------
    def enable_timeline(self, bin_s: float) -> None:
        """Also keep the card-seconds of each (state, card type) per time bin of ``bin_s`` (from
        t = 0; before any transition): :meth:`timeline`, :meth:`timeline_by_type`. Costs a few
        operations per transition (states x types)."""
        if not bin_s > 0:
            raise ValueError(f"card ledger: timeline bin must be > 0 s, got {bin_s!r}")
        if self.transitions:
            raise ValueError("card ledger: enable the timeline before the first transition")
        self._bin = float(bin_s)
        self._k = 0
        self._acc = [0.0] * (len(STATES) * self._T)
        self._rows: list[list[float]] = []
        self._bt = 0.0

    def _advance(self, t: float) -> None:
        # cards per (state, type), flattened state-major; one type: the state totals
        tot = self._tot if self._T == 1 else [x for row in self._n for x in row]
        acc, b = self._acc, self._bin
        t0 = self._bt
        end = (self._k + 1) * b
        while t >= end:
            w = end - t0
            self._rows.append([a + x * w for a, x in zip(acc, tot, strict=True)])
            acc = [0.0] * len(tot)
            t0 = end
            self._k += 1
            end = (self._k + 1) * b
        w = t - t0
        self._acc = [a + x * w for a, x in zip(acc, tot, strict=True)]
        self._bt = t

    def timeline(self, t_end: float) -> np.ndarray:
        """``(bins, 2 + states)``: bin start, bin end, then the mean number of cards in each state
        over the bin (up to ``t_end``). Needs :meth:`enable_timeline`."""
        edges, vals = self._bins(t_end)
        return np.column_stack([edges[0], edges[1], vals.sum(axis=2)])

    def timeline_by_type(self, t_end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(start, end, cards)``: the bins of :meth:`timeline` and the mean number of cards in
        each (state, card type) over each bin, ``cards[bin, state, type]``."""
        (starts, ends), vals = self._bins(t_end)
        return starts, ends, vals

    def _bins(self, t_end: float) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        if not self._bin:
            raise ValueError("card ledger: no timeline (enable_timeline was not called)")
        if t_end < self.t:
            raise ValueError(f"card ledger: t_end={t_end!r} is before the last transition at t={self.t!r}")
        saved = (self._k, list(self._acc), list(self._rows), self._bt)
        if t_end > self._bt:
            self._advance(t_end)
        rows = list(self._rows)
        if t_end > self._k * self._bin:
            rows.append(list(self._acc))
        self._k, self._acc, self._rows, self._bt = saved
        edges = np.arange(len(rows) + 1) * self._bin   # each bin ends exactly where the next starts
        starts = edges[:-1]
        ends = np.minimum(edges[1:], t_end)
        width = np.maximum(ends - starts, 1e-300)
        vals = np.array(rows, dtype=np.float64).reshape(len(rows), len(STATES), self._T) / width[:, None, None]
        return (starts, ends), vals

    def _tally(self, cl: list[int], src: int, dst: int, t: float) -> None:
        """Count the cards ``cl`` (already re-stated) out of ``src`` and into ``dst`` at ``t``."""
        ns, nd, as_, ad = self._n[src], self._n[dst], self._a[src], self._a[dst]
        tot = self._tot
        tot[src] -= len(cl)
        tot[dst] += len(cl)
        if self._T == 1:
            k = len(cl)
            ns[0] -= k
            nd[0] += k
            as_[0] -= k * t
            ad[0] += k * t
        else:
            ct = self._ct
            k = ct[cl[0]]
            for c in cl:
                if ct[c] != k:
                    for c2 in cl:
                        k = ct[c2]
                        ns[k] -= 1
                        nd[k] += 1
                        as_[k] -= t
                        ad[k] += t
                    break
            else:  # one placement is (nearly always) one type
                m = len(cl)
                ns[k] -= m
                nd[k] += m
                as_[k] -= m * t
                ad[k] += m * t
        self.transitions += 1

    def _move(self, cards: np.ndarray | list[int], src: int, dst: int, t: float) -> None:
        if isinstance(cards, list):
            st = self._st
            for c in cards:
                st[c] = dst
            self._tally(cards, src, dst, t)
            return
        self.state[cards] = dst
        self._tot[src] -= int(cards.size)
        self._tot[dst] += int(cards.size)
        d = np.bincount(self.card_type[cards], minlength=self._T).tolist()
        ns, nd, as_, ad = self._n[src], self._n[dst], self._a[src], self._a[dst]
        for k, x in enumerate(d):
            if x:
                ns[k] -= x
                nd[k] += x
                as_[k] -= x * t
                ad[k] += x * t
        self.transitions += 1

    def _require(self, cl: list[int] | np.ndarray, src: int, what: str, *, whole: bool = False) -> None:
        """Refuse (:meth:`_refuse`) the first card of ``cl`` not in state ``src``; with ``whole``, a
        card of a list that holds fractional shares is refused too."""
        if isinstance(cl, list):
            st = self._st
            for c in cl:
                if st[c] != src or (whole and c in self.holds):
                    self._refuse(c, what)
            return
        bad = self.state[cl] != src
        if bad.any():
            self._refuse(int(cl[bad][0]), what)

    def _refuse(self, c: int, what: str) -> None:
        raise PlacementError(f"card ledger: card {c} is {STATES[self._st[c]]}, cannot be {what}")

    def _cards(self, cards: Any) -> list[int] | np.ndarray:
        if isinstance(cards, list) and len(cards) <= self.SMALL:
            return cards
        a = np.asarray(cards, dtype=np.int64).reshape(-1)
        return a.tolist() if a.size <= self.SMALL else a

    def take(self, cards: Any, state: int, *, shared: bool = False, t: float | None = None) -> None:
        """Give idle ``cards`` to a holder in ``state`` (``shared``: a fractional training share,
        which may join other shares of a card already training in shares). All or nothing.

        Raises
        ------
        PlacementError
            A card that is not idle (or, for a share, not idle and not shared training).
        """
        t = self._time(t)
        cl = self._cards(cards)
        st = self._st
        if shared:
            cl = list(cl) if isinstance(cl, list) else cl.tolist()
            holds = self.holds
            for c in cl:
                if st[c] != IDLE and (st[c] != state or c not in holds):
                    self._refuse(c, f"shared with {STATES[state]}")
            new = [c for c in cl if st[c] == IDLE]
            for c in cl:
                holds[c] = holds.get(c, 0) + 1
            if new:
                self._move(new, IDLE, state, t)
            return
        self._require(cl, IDLE, f"given to {STATES[state]}")
        self._move(cl, IDLE, state, t)

    def give(self, cards: Any, state: int, *, shared: bool = False, t: float | None = None) -> None:
        """A holder in ``state`` gives ``cards`` back; they become idle (a shared card when its
        last share is given back). All or nothing.

        Raises
        ------
        PlacementError
            A card that is not in ``state`` (or, for a share, holds no share).
        """
        t = self._time(t)
        cl = self._cards(cards)
        st = self._st
        if shared:
            cl = list(cl) if isinstance(cl, list) else cl.tolist()
            holds = self.holds
            for c in cl:
                if st[c] != state or c not in holds:
                    self._refuse(c, f"given back by {STATES[state]} (as a share)")
            last = []
            for c in cl:
                h = holds[c] - 1
                if h:
                    holds[c] = h
                else:
                    del holds[c]
                    last.append(c)
            if last:
                self._move(last, state, IDLE, t)
            return
        self._require(cl, state, f"given back by {STATES[state]}", whole=True)
        self._move(cl, state, IDLE, t)

    def set(self, cards: Any, src: int, dst: int, *, t: float | None = None) -> None:
        """Move whole ``cards`` from ``src`` to ``dst`` (idle <-> down, serving -> moving, ...).

        Raises
        ------
        PlacementError
            A card not in ``src``.
        """
        t = self._time(t)
        cl = self._cards(cards)
        self._require(cl, src, f"moved from {STATES[src]} to {STATES[dst]}")
        self._move(cl, src, dst, t)

    # ---- results ---------------------------------------------------------------------------------
    def _integral(self, t_end: float) -> np.ndarray:
        if t_end < self.t:
            raise ValueError(f"card ledger: t_end={t_end!r} is before the last transition at t={self.t!r}")
        return np.array(self._n, dtype=np.float64) * t_end - np.array(self._a, dtype=np.float64)

    def card_seconds(self, t_end: float) -> dict[str, float]:
        """Card-seconds spent in each state over ``[0, t_end]``."""
        return {s: float(v) for s, v in zip(STATES, self._integral(t_end).sum(axis=1).tolist(), strict=True)}

    def card_seconds_by_type(self, t_end: float) -> dict[str, dict[str, float]]:
        """``{state: {card type: card-seconds}}`` over ``[0, t_end]``."""
        rows = self._integral(t_end).tolist()
        return {s: dict(zip(self.card_types, row, strict=True)) for s, row in zip(STATES, rows, strict=True)}

    def record(self, t_end: float) -> dict[str, Any]:
        """The ledger's part of the run record: card-seconds by state and by (state, type), the
        counts at ``t_end``, the capacity per type and the number of transitions."""
        return {"states": list(STATES), "card_types": list(self.card_types), "t_end_s": float(t_end),
                "n_cards": self.n_cards, "capacity_by_type": self.capacity_by_type.tolist(),
                "card_seconds": self.card_seconds(t_end), "card_seconds_by_type": self.card_seconds_by_type(t_end),
                "cards_now": dict(zip(STATES, self.counts.sum(axis=1).tolist(), strict=True)),
                "transitions": self.transitions}

    def check(self, training: Iterable[np.ndarray] | None = None) -> None:
        """Recompute the counts from the per-card states and compare (tests; O(cards)). With
        ``training`` (the card arrays of every running training allocation, e.g. a cluster
        state's ``alloc`` values), also check that exactly those cards are ``training``."""
        if training is not None:
            held = np.zeros(self.n_cards, bool)
            for cards in training:
                held[cards] = True
            assert ((self.state == TRAINING) == held).all(), \
                "card ledger: its training cards are not the training jobs' allocations"
        counts = self.counts
        for s in range(len(STATES)):
            got = np.bincount(self.card_type[self.state == s], minlength=self._T)
            assert (got == counts[s]).all(), f"card ledger: {STATES[s]} counts out of sync"
        assert all(self._st[c] == TRAINING and h > 0 for c, h in self.holds.items()), \
            "card ledger: shares on a non-training card"
        assert self._tot == counts.sum(axis=1).tolist(), "card ledger: state totals out of sync"
