"""Stragglers (fail-slow cards and nodes), a mixin of
:class:`~cluster_sim.engine.cluster.training.TrainingEngine` (docs/faults_stragglers.md).

Episodes arrive as one Poisson process over the cluster (rate ``nodes x rate per node-second``,
or ``units / mtbf``), each on a uniformly chosen unit (a node or a card), with a speed factor
``f`` in (0, 1) and a length drawn uniformly from their ranges. Draws come from the run's
``"failures.stragglers"`` stream only (four per episode), so enabling stragglers never shifts
another stream. A card's factor is the minimum over the episodes on it; a synchronous job runs
at the minimum factor over its cards (every rank waits for the slowest at each step), an offline
inference job (independent replicas) at the mean.

Events only at an episode's start, its detection (``detection_s`` after the start, if it is still
on) and its end. Under policy ``replace`` the detection evicts every job on the unit (it writes a
checkpoint, re-enters the queue after ``restart_delay_s`` and stalls ``preempt_overhead_s`` when
it starts again, the engine's eviction machinery) and drains the unit's cards (out of service,
ledger state ``down``) until the episode ends; placement never sees a drained card.

Per job the engine keeps the progressing time at a factor below 1 and the card-seconds of
progress not made, ``cards x (1 - f) x time``; their sums are the ``stragglers.*`` summary keys.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np

from .interruptions import Interruptions
from .views import RUNNING

__all__ = ["SLOW", "STREAM", "StragglerModel", "Stragglers"]

SLOW = 8  # engine heap event kind (after FINISH ... RECYCLE = 0 ... 5 and RERANK, PROMOTE = 6, 7)
STREAM = "failures.stragglers"
NODE_DAY_S = 86_400.0
_START, _DETECT, _END = 0, 1, 2
POLICIES = ("ignore", "replace")


@dataclass(frozen=True)
class StragglerModel:
    """Fail-slow episodes and the response to them (seconds).

    Parameters
    ----------
    unit : {"node", "card"}
        What slows down: every card of a node, or one card.
    rate_per_1000_node_days : float, optional
        Episodes per 1,000 node-days (over the cluster: ``nodes x rate / 1000`` per day, whatever
        the unit); give this or ``mtbf_s``.
    mtbf_s : float, optional
        Mean time between episodes of one unit (one node, or one card with ``unit="card"``).
    slowdown : (float, float)
        Range of the speed factor, drawn uniformly (``lo == hi``: fixed), in (0, 1).
    duration_s : (float, float)
        Range of an episode's length, drawn uniformly (``lo == hi``: fixed), > 0.
    detection_s : float
        Time from an episode's start until it is detected (>= 0).
    policy : {"ignore", "replace"}
        What a detection does: nothing, or evict the unit's jobs and drain it until the end.
    restart_delay_s : float
        Time from a replacement's eviction until the job may be scheduled again.
    """

    unit: str = "node"
    rate_per_1000_node_days: float | None = None
    mtbf_s: float | None = None
    slowdown: tuple[float, float] = (0.5, 0.5)
    duration_s: tuple[float, float] = (3600.0, 3600.0)
    detection_s: float = 600.0
    policy: str = "ignore"
    restart_delay_s: float = 600.0

    def __post_init__(self) -> None:
        if self.unit not in ("node", "card"):
            raise ValueError(f"unit must be 'node' or 'card', got {self.unit!r}")
        if (self.rate_per_1000_node_days is None) == (self.mtbf_s is None):
            raise ValueError("give rate_per_1000_node_days or mtbf_s, exactly one")
        for name in ("rate_per_1000_node_days", "mtbf_s"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        lo, hi = self.slowdown
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"slowdown must be in (0, 1) with lo <= hi, got {self.slowdown!r}")
        if not 0.0 < self.duration_s[0] <= self.duration_s[1]:
            raise ValueError(f"duration_s must be > 0 with lo <= hi, got {self.duration_s!r}")
        if self.detection_s < 0 or self.restart_delay_s < 0:
            raise ValueError("detection_s and restart_delay_s must be >= 0")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")

    def rate(self, n_cards: int, n_nodes: int) -> float:
        """Cluster-wide episode rate, per second."""
        if self.mtbf_s is not None:
            return (n_nodes if self.unit == "node" else n_cards) / self.mtbf_s
        assert self.rate_per_1000_node_days is not None
        return n_nodes * self.rate_per_1000_node_days / 1000.0 / NODE_DAY_S

    def next_episode(self, t: float, rng: np.random.Generator, n_cards: int,
                     n_nodes: int) -> tuple[float, int, float, float]:
        """``(start, unit id, factor, length)`` of the next episode after ``t`` (four draws)."""
        dt = float(rng.exponential(1.0 / self.rate(n_cards, n_nodes)))
        uid = int(rng.integers(n_nodes if self.unit == "node" else n_cards))
        u, v = float(rng.random()), float(rng.random())
        (f0, f1), (d0, d1) = self.slowdown, self.duration_s
        return t + dt, uid, f0 + (f1 - f0) * u, d0 + (d1 - d0) * v


class Stragglers(Interruptions):
    """Fail-slow episodes on the engine's cards (the engine sets every attribute used)."""

    stragglers: StragglerModel | None
    env: Any
    sp: list[float]
    offline: list[bool]
    contention: Any
    preempt_overhead_s: float

    def _speed(self, i: int, cards: np.ndarray, share: float) -> float:   # the engine's
        raise NotImplementedError

    def _set_rate(self, i: int, t: float, sp: float) -> None:   # the engine's
        raise NotImplementedError

    # ---- set-up ------------------------------------------------------------------------------
    def _init_stragglers(self, model: StragglerModel | None) -> None:
        self.stragglers = model
        self.slow_on = False  # True once the process runs: the engine's hooks do nothing before

    def _start_stragglers(self) -> None:
        if self.stragglers is None:
            return
        n = self.state.n_cards
        self.slow_on = True
        self.slow_card = np.ones(n)                 # each card's speed factor
        self._card_eps: dict[int, dict[int, float]] = {}   # slow card -> {episode: factor}
        self._ep: list[list[Any]] = []              # [start, end, factor, cards, detected]
        self._drain: dict[int, float] = {}          # drained card -> since when
        self._drain_later: set[int] = set()         # failed card of a drained unit: kept out at repair
        self._job_f: dict[int, float] = {}          # job -> factor of its open slowed interval
        self._job_t0: dict[int, float] = {}
        self.slowed_s = [0.0] * self.n
        self.slow_lost_card_s = [0.0] * self.n
        self.slow_card_s = [0.0] * self.n
        self.replacements = 0
        self.drained_card_s = 0.0
        self._schedule_episode(0.0)

    # ---- the engine's hooks ------------------------------------------------------------------
    def slow_factor(self, i: int, cards: np.ndarray) -> float:
        """Job ``i``'s speed factor on ``cards`` (1 when none is slow); opens or closes its slowed
        interval when the factor changes (called where the engine computes the job's speed)."""
        f = 1.0
        if self._card_eps:
            x = self.slow_card[cards]
            f = float(x.mean() if self.offline[i] else x.min())
        if f != self._job_f.get(i, 1.0):
            t = float(self.env.now)
            self._close_slow(i, t)
            if f < 1.0:
                self._job_f[i], self._job_t0[i] = f, t
        return f

    def _close_slow(self, i: int, t: float) -> None:
        """Account job ``i``'s open slowed interval up to ``t`` (the engine calls it when the job
        stops): only time making progress counts (not a restart stall)."""
        if i not in self._job_f:
            return
        prog, cards, f = self._open_part(i, t)
        del self._job_f[i], self._job_t0[i]
        if prog > 0:
            self.slowed_s[i] += prog
            self.slow_card_s[i] += cards * prog
            self.slow_lost_card_s[i] += cards * (1.0 - f) * prog

    def _open_part(self, i: int, t: float) -> tuple[float, float, float]:
        """``(progressing seconds, cards, factor)`` of job ``i``'s open slowed interval up to ``t``."""
        f, t0 = self._job_f[i], self._job_t0[i]
        prog = t - max(t0, float(self.run_start[i])) if self.rate[i] > 0 else 0.0
        return max(prog, 0.0), self.num[i] * self.milli[i] / 1000.0, f

    def hold_drained(self, c: int, t: float) -> bool:
        """True when card ``c``, repaired at ``t`` while its unit is drained, stays out (it then
        counts as drained); the failure classes' repairs ask this too (failure_process.py)."""
        if self.slow_on and c in self._drain_later:
            self._drain_later.discard(c)
            if self.state.down[c] and self._wanted(c):
                self._drain[c] = t
                self.events += 1
                return True
        return False

    def _repair(self, c: int, t: float, v: int = 0) -> None:
        if v >= 0 and self.hold_drained(c, t):
            return
        super()._repair(c, t, v)

    def _wanted(self, c: int) -> bool:
        """True while a detected episode covers card ``c`` (under ``replace``: it stays drained)."""
        return any(self._ep[e][4] for e in self._card_eps.get(c, ()))

    # ---- the process -------------------------------------------------------------------------
    def _schedule_episode(self, t: float) -> None:
        assert self.stragglers is not None
        if t > 0 and self.next_arrival >= self.n and self.active == 0 and self.sim.horizon_s is None:
            return  # no work left and no horizon: stop the process so the run can end
        t1, uid, f, length = self.stragglers.next_episode(
            t, self.sim.streams[STREAM], self.state.layout.n_cards, int(self.view.n_nodes))
        cards = self.view.node_cards[uid] if self.stragglers.unit == "node" else np.array([uid])
        cards = [c for c in cards.tolist() if c < self.state.n_cards]
        self._ep.append([t1, t1 + length, f, cards, False])
        heapq.heappush(self._heap, (t1, SLOW, len(self._ep) - 1, _START))

    def _slow_event(self, ep: int, phase: int, t: float) -> None:
        assert self.stragglers is not None
        self.events += 1
        start, end, f, cards, _ = self._ep[ep]
        if phase == _START:
            for c in cards:
                self._card_eps.setdefault(c, {})[ep] = f
            self._recompute(cards, t)
            heapq.heappush(self._heap, (end, SLOW, ep, _END))
            if start + self.stragglers.detection_s < end:
                heapq.heappush(self._heap, (start + self.stragglers.detection_s, SLOW, ep, _DETECT))
            self._schedule_episode(t)
        elif phase == _DETECT:
            self._ep[ep][4] = True
            if self.stragglers.policy == "replace":
                self._replace(ep, cards, t)
        else:
            for c in cards:
                eps = self._card_eps[c]
                del eps[ep]
                if not eps:
                    del self._card_eps[c]
            for c in cards:  # back in service unless another detected episode still covers it
                if c in self._drain and not self._wanted(c):
                    self.state.set_up(c)
                    self.drained_card_s += t - self._drain.pop(c)
                elif c in self._drain_later and not self._wanted(c):
                    self._drain_later.discard(c)
            self.release_epoch += 1
            self.dirty = True
            self._recompute(cards, t)

    def _recompute(self, cards: list[int], t: float) -> None:
        """New factors of ``cards`` and new speeds of the jobs on them."""
        jobs: set[int] = set()
        for c in cards:
            eps = self._card_eps.get(c)
            self.slow_card[c] = min(eps.values()) if eps else 1.0
            jobs.update(self.state.jobs_on(c))
        for i in sorted(jobs):
            if self.status[i] == RUNNING:
                sp = self._speed(i, self.state.alloc[i][0], self.contention.share(i))
                if sp != self.sp[i]:
                    self._set_rate(i, t, sp)

    def _replace(self, ep: int, cards: list[int], t: float) -> None:
        """Evict the detected unit's jobs (checkpoint, re-queue after the restart delay) and drain
        its cards until the episode ends."""
        assert self.stragglers is not None
        jobs = sorted({i for c in cards for i in self.state.jobs_on(c)})
        for i in jobs:
            self.evict(i, t, requeue_s=self.stragglers.restart_delay_s, lost_s=0.0,
                       restore_s=self.preempt_overhead_s)
            self.replacements += 1
        for c in cards:
            if self.state.reserved[c] or c in self._drain:
                continue  # another holder's card (a pool partition or a lent slot), or drained already
            if self.state.down[c]:
                self._drain_later.add(c)  # failed: kept out when its repair is due
            else:
                self.state.set_down(c)
                self._drain[c] = t
        self.release_epoch += 1
        self.dirty = True

    # ---- record ------------------------------------------------------------------------------
    def straggler_record(self, t_end: float) -> dict[str, Any]:
        """Counts, card-seconds and per-job columns of the episodes up to ``t_end`` (the open slowed
        intervals of running jobs count up to ``t_end``; nothing is changed, the run may go on)."""
        assert self.stragglers is not None
        slowed, card_s, lost = list(self.slowed_s), list(self.slow_card_s), list(self.slow_lost_card_s)
        for i in sorted(self._job_f):  # still running slowed: counted up to t_end, left open
            prog, cards, f = self._open_part(i, t_end)
            slowed[i] += prog
            card_s[i] += cards * prog
            lost[i] += cards * (1.0 - f) * prog
        started = [e for e in self._ep if e[0] <= t_end]
        exposure = sum(len(e[3]) * (min(e[1], t_end) - e[0]) for e in started)
        drained = self.drained_card_s + sum(t_end - t0 for t0 in self._drain.values())
        return {"episodes": len(started), "detected": sum(1 for e in started if e[4]),
                "replacements": self.replacements, "policy": self.stragglers.policy,
                "unit": self.stragglers.unit, "slow_card_s": float(exposure),
                "drained_card_s": float(drained),
                "slowed_s": slowed, "slow_job_card_s": card_s, "lost_card_s": lost}
