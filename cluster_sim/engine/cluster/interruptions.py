"""How a running training job stops early (a mixin of
:class:`~cluster_sim.engine.cluster.training.TrainingEngine`): a scheduler's preemption, a pool
policy's eviction (checkpoint within the notice, or lose the work since the last checkpoint),
and card and node failures with their repairs.

Each stops the job through the engine's ``_stop``, puts back the work that is lost, and pushes
the event that brings it back (a re-queue, a repair) on the engine's heap; nothing here runs
between events. The heap's event codes are defined here, with the engine's own.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np

from ...errors import PlacementError
from .failure_process import FAILURE_CODE, REPAIR_CODE, FailureProcesses
from .views import RESTARTING, RUNNING

__all__ = ["FAILURE", "FINISH", "RECYCLE", "REPAIR", "REQUEUE", "STARTED", "Interruptions"]

FINISH, STARTED, REQUEUE, REPAIR, FAILURE, RECYCLE = range(6)  # RERANK, PROMOTE: see .cycle
assert (FAILURE, REPAIR) == (FAILURE_CODE, REPAIR_CODE)  # failure_process.py pushes these codes


class Interruptions:
    """Preemption, eviction and failures of running jobs (the engine sets every attribute used)."""

    sim: Any
    state: Any
    view: Any
    failures: Any
    _fp: Any   # the failure classes' FailureProcesses (None without classes)
    _heap: list[Any]
    status: Any
    rate: list[float]
    remaining: list[float]
    dur: list[float]
    num: list[int]
    milli: list[int]
    run_start: Any
    ver: list[int]
    preempts: Any
    evictions: Any
    restarts: Any
    lost_card_s: list[float]
    restore_s: dict[int, float]
    quantum: dict[int, float]
    rate_epoch: int
    release_epoch: int
    dirty: bool
    events: int
    next_arrival: int
    n: int
    active: int

    lost_pre_card_s: dict[int, float]
    explicit: bool

    el: dict[int, tuple[int, int]]

    def _el_failed(self, i: int, t: float, held: np.ndarray) -> None:   # .elastic
        raise NotImplementedError

    def _ck_saved(self, i: int) -> None:   # .checkpoints
        raise NotImplementedError

    def _ck_fail(self, i: int, t: float, lost_work: float, rate_before: float) -> float:   # .checkpoints
        raise NotImplementedError

    def _stop(self, i: int, t: float) -> None:   # the engine's
        raise NotImplementedError

    def _enqueue(self, i: int, t: float) -> None:   # the engine's
        raise NotImplementedError

    def _set_levels(self) -> None:   # the engine's
        raise NotImplementedError

    def poke(self) -> None:   # the engine's
        raise NotImplementedError

    def preempt(self, i: int, t: float) -> None:
        """Checkpoint and evict a running job; it re-enters the queue at the next cycle."""
        self._stop(i, t)
        before = self.lost_card_s[i]
        self._drop_partial_unit(i)
        if self.lost_card_s[i] > before:
            self.lost_pre_card_s[i] = self.lost_pre_card_s.get(i, 0.0) + self.lost_card_s[i] - before
        self._ck_saved(i)
        self.preempts[i] += 1
        self.rate_epoch += 1
        self._enqueue(i, t)
        heapq.heappush(self._heap, (t, RECYCLE, -1, 0))

    def evict(self, i: int, t: float, *, requeue_s: float, lost_s: float, restore_s: float) -> np.ndarray:
        """Take running job ``i``'s cards away at ``t`` (a pool policy reclaims them): it stops, loses
        ``lost_s`` seconds of its progress (work since its last checkpoint; 0 when it could
        checkpoint within the notice), re-enters the queue after ``requeue_s`` (its checkpoint
        written) and, when it next starts, stalls ``restore_s`` (reading the checkpoint back).
        Called from outside the training process; returns the cards it released.
        """
        if self.status[i] != RUNNING:
            raise PlacementError(f"evict: job row {i} is not running")
        self.sim.levels.advance(t)
        cards = self.state.alloc[i][0].copy()
        rate = self.rate[i]
        self._stop(i, t)
        if lost_s > 0 and rate > 0:
            self.remaining[i] = min(self.dur[i], self.remaining[i] + lost_s * rate)
            self.lost_card_s[i] += lost_s * self.num[i] * self.milli[i] / 1000.0
        self._drop_partial_unit(i)
        self._ck_saved(i)
        self.preempts[i] += 1
        self.evictions[i] += 1
        self.restore_s[i] = float(restore_s)
        self.rate_epoch += 1
        self.status[i] = RESTARTING
        heapq.heappush(self._heap, (t + requeue_s, REQUEUE, i, self.ver[i]))
        self._set_levels()
        self.poke()
        return cards

    def _drop_partial_unit(self, i: int) -> None:
        """A stopped job with a work quantum keeps only whole units: the one in progress is redone
        (its work-seconds, at the job's reference speed, count as lost card-seconds)."""
        q = self.quantum.get(i)
        if q is None or self.remaining[i] <= 0.0:
            return
        done = self.dur[i] - self.remaining[i]
        kept = min(math.floor(done / q + 1e-9) * q, done)
        if kept < done:
            self.remaining[i] = self.dur[i] - kept
            self.lost_card_s[i] += (done - kept) * self.num[i] * self.milli[i] / 1000.0

    def progressed_s(self, i: int, t: float) -> float:
        """Seconds job ``i`` has been making progress since it (re)started (0 when stalled)."""
        return max(t - float(self.run_start[i]), 0.0) if self.status[i] == RUNNING and self.rate[i] > 0 else 0.0

    # ---- failures --------------------------------------------------------------------------------
    def _start_failures(self) -> None:
        """Start the failure process at 0: the failure classes' (failure_process.py), else the
        card / node MTBF superposition's."""
        self._fp = None
        if self.failures is not None and self.failures.classes:
            self._fp = FailureProcesses(self, self.failures)
            self._fp.start(0.0)
        elif self.failures is not None and self.failures.active:   # not just explicit checkpoints
            self._schedule_failure(0.0)

    def _schedule_failure(self, t: float) -> None:
        assert self.failures is not None
        if t > 0 and self.next_arrival >= self.n and self.active == 0 and self.sim.horizon_s is None:
            return  # no work left and no horizon: stop the failure process so the run can end
        lo = self.state.layout
        tf, unit, uid = self.failures.next_failure(t, self.sim.streams["failures"], lo.n_cards,
                                                   int(self.view.n_nodes))
        heapq.heappush(self._heap, (tf, FAILURE, uid, 0 if unit == "card" else 1))

    def _failure(self, uid: int, is_node: int, t: float) -> None:
        assert self.failures is not None
        if is_node >= 2:   # a failure class (failure_process.py)
            self._fp.on_failure(is_node - 2, uid, t)
            return
        self.events += 1
        cards = self.view.node_cards[uid] if is_node else np.array([uid])
        cards = cards[cards < self.state.n_cards]
        repair = self.failures.repair_time_s
        reserved = self.state.reserved
        for c in cards.tolist():
            if self.state.down[c] or reserved[c]:  # a partition's cards fail outside this engine
                continue
            for i in self.state.jobs_on(c):
                self._fail_job(i, t)
            self.state.set_down(c)
            heapq.heappush(self._heap, (t + repair, REPAIR, c, 0))
        self._schedule_failure(t)

    def _fail_job(self, i: int, t: float) -> None:
        assert self.failures is not None
        rate_before = self.rate[i]
        progressed = t - self.run_start[i] if rate_before > 0 else 0.0
        held = self.state.alloc[i][0] if i in self.el else None
        self._stop(i, t)
        lost = self.failures.lost_work_s(progressed) * rate_before
        if not self.explicit:  # explicit checkpoints: .checkpoints restores the last completed one
            self.remaining[i] = min(self.dur[i], self.remaining[i] + lost)
        self._ck_fail(i, t, lost, rate_before)
        self.restarts[i] += 1
        self.rate_epoch += 1
        self.status[i] = RESTARTING
        if held is not None:   # elastic: may restart at once on the cards it still holds (.elastic)
            self._el_failed(i, t, held)
            return
        heapq.heappush(self._heap, (t + self.failures.restart_for(self.num[i]), REQUEUE, i, self.ver[i]))

    def _repair(self, c: int, t: float, v: int = 0) -> None:
        if v < 0:   # a failure class's repair or swap (failure_process.py)
            self._fp.on_repair(c, v, t)
            return
        if self.state.down[c]:
            self.state.set_up(c)
            self.release_epoch += 1
            self.dirty = True
            self.events += 1
