"""Failure classes, repairs, spares and link failures of the training engine (docs/faults.md).

One :class:`FailureProcesses` per :class:`~cluster_sim.engine.cluster.training.TrainingEngine`
whose :class:`~.failures.FailureModel` has ``classes``. Each class is an independent process over
its units (cards, nodes, leaf uplinks or leaf switches), drawn from its own stream
``"failures.<class name>"``:

* **exponential**: the superposition of the units, one pending event per class: the next failure
  is ``t + Exp(mtbf / units)`` on a uniform unit; a unit already down for this class is not in
  service and its draw is dropped (thinning, which keeps every up unit at rate ``1 / mtbf``);
* **Weibull** (shape ``k``, scale ``mtbf / Gamma(1 + 1/k)``): a numpy array of next-failure times
  per unit plus a heap; a unit's clock restarts when it is back in service (renewal after repair).

Only the earliest failure of a class sits in the engine's heap (``(t, FAILURE, unit, 2 + class)``;
a re-armed class leaves a stale entry that is skipped). A failure of a card, node or switch takes
its cards down and fails every job on them (``TrainingEngine._fail_job``); a link failure takes
one uplink of its leaf, so the leaf's capacity in the engine's
:class:`~.speed.LeafContention` drops to ``(uplinks - down) / uplinks`` of its full capacity and
the flows that cross it share what is left (slower jobs, events only at the failure and repair).
Repairs are served first come, first served by ``technicians`` (unlimited by default); with
``spare_nodes`` a failed node's slot is refilled by a spare after ``swap_s`` while the node goes to
repair and then back to the spare pool. Each card of the engine is ``up``, ``waiting`` (for a
technician or a spare), ``repairing`` or ``swapping`` at every instant; the card-seconds in each
state are integrated at the events that change them.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from typing import Any

import numpy as np

from .failures import FailureModel

__all__ = ["CARD_STATES", "FailureProcesses", "uplinks_per_leaf"]

CARD_STATES = ("up", "waiting", "repairing", "swapping")
UP, WAITING, REPAIRING, SWAPPING = range(4)
FAILURE_CODE, REPAIR_CODE = 4, 3  # the engine's FAILURE and REPAIR heap codes (see .interruptions)
REPAIR_DONE, SWAP_DONE = -1, -2   # the heap entry's last field for class repairs and swaps
MAX_OUTAGES = 200_000             # outages kept in the log (counters are kept for all)


def uplinks_per_leaf(layout: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(full capacity, uplinks)`` per leaf of a cluster layout.

    The layout keeps one aggregated uplink per leaf (docs/architecture.md, departure 4) whose
    capacity is inf when it carries all its cards' NIC bandwidth (non-blocking). The builders give
    a leaf ``cards x NIC / oversubscription`` of uplink capacity in ports of the NIC's line rate
    (topology/builders.py), so the full capacity is the finite value, or the cards' NIC sum when
    non-blocking, and the number of uplinks is that capacity / the leaf's fastest NIC (at least 1).
    """
    leaf = np.asarray(layout.card_leaf)
    n_leaf = int(leaf.max()) + 1
    nic = np.asarray(layout.type_nic_Bps, dtype=np.float64)[np.asarray(layout.card_type)]
    nic_sum = np.bincount(leaf, weights=nic, minlength=n_leaf)
    port = np.zeros(n_leaf)
    np.maximum.at(port, leaf, nic)
    cap = np.asarray(layout.leaf_uplink_Bps, dtype=np.float64)
    full = np.where(np.isfinite(cap), cap, nic_sum)
    n_up = np.maximum(1, np.rint(full / port)).astype(np.int64)
    return full, n_up


class FailureProcesses:
    """The failure classes of one training engine (``eng``: the engine, connected)."""

    def __init__(self, eng: Any, model: FailureModel) -> None:
        self.eng = eng
        self.model = model
        self.classes = model.classes
        state = eng.state
        lo = state.layout
        self.n = n = int(state.n_cards)
        self.node_cards = np.asarray(eng.view.node_cards)
        leaf = np.asarray(lo.card_leaf)[:n]
        self.n_leaves = int(leaf.max()) + 1
        order = np.argsort(leaf, kind="stable")
        bounds = np.searchsorted(leaf[order], np.arange(self.n_leaves + 1))
        self.leaf_cards = [order[bounds[k]:bounds[k + 1]] for k in range(self.n_leaves)]
        self.full_cap, self.n_up = uplinks_per_leaf(lo)
        self.layout_cap = np.asarray(lo.leaf_uplink_Bps, dtype=np.float64).tolist()
        self.link_start = np.concatenate([[0], np.cumsum(self.n_up)])
        self.links_down = np.zeros(self.n_leaves, np.int64)
        sizes = {"card": n, "node": int(eng.view.n_nodes), "switch": self.n_leaves,
                 "link": int(self.link_start[-1])}
        self.n_units = [sizes[c.unit] for c in self.classes]
        self.rngs = [eng.sim.streams[f"failures.{c.name}"] for c in self.classes]
        self.unit_down = [np.zeros(k, bool) for k in self.n_units]
        self.last_up = [np.zeros(k) for k in self.n_units]   # when each unit was last back in service
        self.next_t: dict[int, np.ndarray] = {}
        self.local: dict[int, list[tuple[float, int]]] = {}
        self.armed: list[tuple[float, int] | None] = [None] * len(self.classes)
        self.scripted: set[tuple[int, int, float]] = set()
        # per-card outage counts by state (rows WAITING, REPAIRING, SWAPPING) and the state levels
        self.n_in = np.zeros((4, n), np.int32)
        self.level = [float(n), 0.0, 0.0, 0.0]
        self.card_s = [0.0, 0.0, 0.0, 0.0]
        self.t_last = 0.0
        self.free_tech: int | None = model.technicians
        self.queue: deque[int] = deque()
        self.spares = int(model.spare_nodes)
        self.spare_wait: deque[int] = deque()
        # outages (a unit out of service) and repairs (a technician's job)
        self.o_class: list[int] = []
        self.o_unit: list[int] = []
        self.o_cards: list[np.ndarray] = []
        self.o_t: list[float] = []
        self.o_ttf: list[float] = []
        self.o_up: list[float] = []
        self.r_outage: list[int] = []
        self.r_spare: list[bool] = []
        self.r_req: list[float] = []
        self.r_start: list[float] = []
        k = len(self.classes)
        self.failures = [0] * k
        self.interruptions = [0] * k
        self.job_interruptions = [0] * k
        self.down_s = [0.0] * k      # outage durations of units back in service (for MTTR)
        self.restored = [0] * k
        self.swaps = 0
        self.wait_s = 0.0            # technician queue: waiting and repairing seconds
        self.repair_s = 0.0
        self.link_down_s = 0.0
        self.detect_card_s = 0.0
        if any(c.unit == "link" for c in self.classes):
            eng.contention.track_all_leaves()

    # ---- the processes -------------------------------------------------------------------------
    def start(self, t: float) -> None:
        """Draw every class's first failure."""
        for ci, c in enumerate(self.classes):
            if c.shape is not None:
                nt = t + c.weibull_scale_s * self.rngs[ci].weibull(c.shape, self.n_units[ci])
                self.next_t[ci] = nt
                self.local[ci] = list(zip(nt.tolist(), range(self.n_units[ci]), strict=True))
                heapq.heapify(self.local[ci])
            self._arm(ci, t)

    def _idle(self, t: float) -> bool:
        e = self.eng
        return t > 0 and e.next_arrival >= e.n and e.active == 0 and e.sim.horizon_s is None

    def on_idle(self, t: float) -> None:
        """The last job finished: without a horizon and with no arrival left, drop the pending
        failures so the run ends (repairs under way still complete)."""
        if self._idle(t):
            heap = self.eng._heap
            heap[:] = [e for e in heap if not (e[1] == FAILURE_CODE and e[3] >= 2)]
            heapq.heapify(heap)
            self.armed = [None] * len(self.classes)
            self.scripted.clear()

    def _arm(self, ci: int, t: float) -> None:
        """Put class ``ci``'s next failure in the engine's heap."""
        self.armed[ci] = None
        if self._idle(t):
            return  # no work left and no horizon: stop so the run can end
        c = self.classes[ci]
        if c.shape is None:
            rng = self.rngs[ci]
            tf = t + float(rng.exponential(c.mtbf_s / self.n_units[ci]))
            u = int(rng.integers(self.n_units[ci]))
        else:
            h, nt = self.local[ci], self.next_t[ci]
            while h and nt[h[0][1]] != h[0][0]:
                heapq.heappop(h)   # a unit that failed (clock inf) or was renewed since
            if not h:
                return
            tf, u = h[0]
        self.armed[ci] = (tf, u)
        heapq.heappush(self.eng._heap, (tf, FAILURE_CODE, u, 2 + ci))

    def _renew(self, ci: int, u: int, t: float) -> None:
        """Unit ``u`` of class ``ci`` is back in service at ``t``."""
        self.unit_down[ci][u] = False
        self.last_up[ci][u] = t
        c = self.classes[ci]
        if c.shape is not None:
            tf = t + c.weibull_scale_s * float(self.rngs[ci].weibull(c.shape))
            self.next_t[ci][u] = tf
            heapq.heappush(self.local[ci], (tf, u))
            a = self.armed[ci]
            if a is None or tf < a[0]:
                self._arm(ci, t)

    def inject(self, name: str, unit: int, t: float) -> None:
        """A scripted failure of ``unit`` of class ``name`` at ``t`` (tests, what-if studies),
        besides the class's random ones; dropped if the unit is down for that class then."""
        ci = [c.name for c in self.classes].index(name)
        if not 0 <= unit < self.n_units[ci]:
            raise ValueError(f"failure class {name!r} has {self.n_units[ci]} units, not unit {unit}")
        self.scripted.add((ci, unit, t))
        heapq.heappush(self.eng._heap, (t, FAILURE_CODE, unit, 2 + ci))

    def on_failure(self, ci: int, u: int, t: float) -> None:
        """The engine popped ``(t, FAILURE, u, 2 + ci)``."""
        if (ci, u, t) in self.scripted:
            self.scripted.discard((ci, u, t))
            if not self.unit_down[ci][u]:
                weibull = self.classes[ci].shape is not None
                if weibull:
                    self.next_t[ci][u] = math.inf   # its clock restarts after the repair
                self._fail_unit(ci, u, t)
                a = self.armed[ci]
                if weibull and a is not None and a[1] == u:
                    self._arm(ci, t)
            return
        if self.armed[ci] != (t, u):
            return   # stale: the class was re-armed earlier
        if self.classes[ci].shape is not None:
            self.next_t[ci][u] = math.inf
            heapq.heappop(self.local[ci])
        if not self.unit_down[ci][u]:   # else an exponential draw on a unit out of service: thinned
            self._fail_unit(ci, u, t)
        self._arm(ci, t)

    def _fail_unit(self, ci: int, u: int, t: float) -> None:
        eng = self.eng
        c = self.classes[ci]
        eng.events += 1
        self.unit_down[ci][u] = True
        self.failures[ci] += 1
        oid = len(self.o_class)
        cards = self._cards(c.unit, u)
        self.o_class.append(ci)
        self.o_unit.append(u)
        self.o_cards.append(cards)
        self.o_t.append(t)
        self.o_ttf.append(t - float(self.last_up[ci][u]))
        self.o_up.append(math.nan)
        if c.unit == "link":
            self._set_link(u, +1, t)
        else:
            self._fail_jobs(ci, cards, t)
        if c.unit == "node" and self.model.spare_nodes > 0:
            self._request_repair(oid, t, spare=True)   # the failed node, off its slot
            if self.spares > 0:
                self.spares -= 1
                self._move(cards, UP, SWAPPING, t)
                heapq.heappush(eng._heap, (t + self.model.swap_s, REPAIR_CODE, oid, SWAP_DONE))
            else:
                self._move(cards, UP, WAITING, t)
                self.spare_wait.append(oid)
        else:
            self._move(cards, UP, WAITING, t)
            self._request_repair(oid, t, spare=False)

    def _cards(self, unit: str, u: int) -> np.ndarray:
        if unit == "card":
            cards = np.array([u], np.int64)
        elif unit == "node":
            cards = self.node_cards[u]
            cards = cards[cards < self.n].astype(np.int64)
        elif unit == "switch":
            cards = self.leaf_cards[u].astype(np.int64)
        else:
            return np.zeros(0, np.int64)
        return cards[~self.eng.state.reserved[cards]]  # a partition's cards fail outside this engine

    def _fail_jobs(self, ci: int, cards: np.ndarray, t: float) -> None:
        state = self.eng.state
        up = cards[self._cls(cards) == UP]
        if up.size == 0:
            return
        own = state.owner[up]
        jobs = set(own[own >= 0].tolist())
        for c in up[own == -2].tolist():
            jobs.update(state.jobs_on(c))
        if jobs:
            self.interruptions[ci] += 1
            self.job_interruptions[ci] += len(jobs)
            eng = self.eng
            for i in sorted(jobs):
                self.detect_card_s += self.model.detection_s * eng.num[i] * eng.milli[i] / 1000.0
                eng._fail_job(i, t)

    def _set_link(self, u: int, d: int, t: float) -> None:
        leaf = int(np.searchsorted(self.link_start, u, side="right")) - 1
        self._advance(t)
        self.links_down[leaf] += d
        k = int(self.links_down[leaf])
        cap = self.layout_cap[leaf] if k == 0 else float(self.full_cap[leaf]) * (self.n_up[leaf] - k) / self.n_up[leaf]
        self.eng.contention.set_capacity(leaf, cap)
        self.eng.net_dirty = True
        self.eng.rate_epoch += 1

    # ---- repairs, swaps ------------------------------------------------------------------------
    def _request_repair(self, oid: int, t: float, *, spare: bool) -> None:
        rid = len(self.r_outage)
        self.r_outage.append(oid)
        self.r_spare.append(spare)
        self.r_req.append(t)
        self.r_start.append(math.nan)
        if self.free_tech is None or self.free_tech > 0:
            self._begin_repair(rid, t)
        else:
            self.queue.append(rid)

    def _begin_repair(self, rid: int, t: float) -> None:
        if self.free_tech is not None:
            self.free_tech -= 1
        self.r_start[rid] = t
        self.wait_s += t - self.r_req[rid]
        oid = self.r_outage[rid]
        ci = self.o_class[oid]
        if not self.r_spare[rid]:
            self._move(self.o_cards[oid], WAITING, REPAIRING, t)
        dur = self.classes[ci].repair_s
        heapq.heappush(self.eng._heap, (t + dur, REPAIR_CODE, rid, REPAIR_DONE))

    def on_repair(self, i: int, v: int, t: float) -> None:
        """The engine popped ``(t, REPAIR, i, v)`` with ``v`` :data:`REPAIR_DONE` (``i`` a repair) or
        :data:`SWAP_DONE` (``i`` an outage)."""
        self.eng.events += 1
        if v == SWAP_DONE:
            self.swaps += 1
            self._restore(i, SWAPPING, t)
            return
        if self.free_tech is not None:
            self.free_tech += 1
        oid = self.r_outage[i]
        self.repair_s += self.classes[self.o_class[oid]].repair_s
        if self.r_spare[i]:   # a repaired node joins the spare pool
            self.spares += 1
            if self.spare_wait:
                w = self.spare_wait.popleft()
                self.spares -= 1
                self._move(self.o_cards[w], WAITING, SWAPPING, t)
                heapq.heappush(self.eng._heap, (t + self.model.swap_s, REPAIR_CODE, w, SWAP_DONE))
        else:
            self._restore(oid, REPAIRING, t)
        if self.queue and (self.free_tech is None or self.free_tech > 0):
            self._begin_repair(self.queue.popleft(), t)

    def _restore(self, oid: int, from_state: int, t: float) -> None:
        ci = self.o_class[oid]
        self._move(self.o_cards[oid], from_state, UP, t)
        if self.classes[ci].unit == "link":
            self._set_link(self.o_unit[oid], -1, t)
        self.o_up[oid] = t
        self.down_s[ci] += t - self.o_t[oid]
        self.restored[ci] += 1
        self._renew(ci, self.o_unit[oid], t)

    # ---- card states ---------------------------------------------------------------------------
    def _cls(self, cards: np.ndarray) -> np.ndarray:
        n_in = self.n_in
        return np.select([n_in[WAITING, cards] > 0, n_in[SWAPPING, cards] > 0, n_in[REPAIRING, cards] > 0],
                         [WAITING, SWAPPING, REPAIRING], UP)

    def _advance(self, t: float) -> None:
        dt = t - self.t_last
        if dt > 0:
            for s in range(4):
                self.card_s[s] += self.level[s] * dt
            self.link_down_s += float(self.links_down.sum()) * dt
            self.t_last = t

    def _move(self, cards: np.ndarray, old: int, new: int, t: float) -> None:
        """One outage's ``cards`` go from state ``old`` to ``new``; cards whose state leaves or
        reaches ``up`` go down / up in the engine's cluster state."""
        if cards.size == 0:
            return
        self._advance(t)
        before = self._cls(cards)
        if old != UP:
            self.n_in[old, cards] -= 1
        if new != UP:
            self.n_in[new, cards] += 1
        after = self._cls(cards)
        delta = np.bincount(after, minlength=4) - np.bincount(before, minlength=4)
        for s in range(4):
            self.level[s] += float(delta[s])
        state = self.eng.state
        for c in cards[(before == UP) & (after != UP)].tolist():
            state.set_down(c)
        back = cards[(before != UP) & (after == UP)]
        for c in back.tolist():
            if not self.eng.hold_drained(c, t):   # a straggler drain keeps it out (stragglers.py)
                state.set_up(c)
        if back.size:
            self.eng.release_epoch += 1
            self.eng.dirty = True

    # ---- record --------------------------------------------------------------------------------
    def record(self, t: float) -> dict[str, Any]:
        """The process's counters and outage log up to ``t`` (the run's end)."""
        self._advance(t)
        keep = min(len(self.o_class), MAX_OUTAGES)
        return {
            "classes": [{"name": c.name, "unit": c.unit, "units": k, "failures": f, "interruptions": it,
                         "job_interruptions": ji, "down_s": d, "restored": r,
                         "distribution": "exponential" if c.shape is None else "weibull"}
                        for c, k, f, it, ji, d, r in zip(self.classes, self.n_units, self.failures,
                                                         self.interruptions, self.job_interruptions,
                                                         self.down_s, self.restored, strict=True)],
            "n_cards": self.n, "t_end_s": t, "card_s": dict(zip(CARD_STATES, self.card_s, strict=True)),
            "swaps": self.swaps, "repair_wait_s": self.wait_s, "repair_s": self.repair_s,
            "link_down_s": self.link_down_s, "detection_card_s": self.detect_card_s,
            "outages": {"class": [self.classes[ci].name for ci in self.o_class[:keep]],
                        "unit": self.o_unit[:keep], "t_fail_s": self.o_t[:keep],
                        "ttf_s": self.o_ttf[:keep], "t_up_s": self.o_up[:keep]},
        }
