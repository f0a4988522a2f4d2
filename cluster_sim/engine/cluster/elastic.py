"""Elastic training jobs (issue #17 item 2; a mixin of
:class:`~cluster_sim.engine.cluster.training.TrainingEngine`).

An elastic job hit by a failure does not release everything and queue. At the failure instant
(one heap event at the same time, after the failure has taken all its cards down) it keeps the
cards it still holds that are up, rounded down to a multiple of its parallel granularity (a
model job's ``tp x pp x cp``; otherwise one card; whole nodes first, so it spans as few nodes as
it can), and if that is at least its ``min_cards`` it
restarts on them at once: it holds them through the restart delay (``FailureModel.restart_for``
of the new size) plus the usual restore stall, then progresses at the speed of the smaller
placement. Below ``min_cards`` it re-queues after the restart delay exactly as a non-elastic
job does. The work lost is the same as for any failure (progress since the last checkpoint).

Speed: a model job's speed hook sees the smaller card set and re-plans it with fewer
data-parallel replicas (same global batch, more micro-batches per replica,
``experiment/build.py::_ModelJobSpeed``); a job without a hook progresses at ``new / full`` of
its speed, so its total card-seconds of work are conserved.

Growing back, at a checkpoint boundary: when a shrunk job completes a checkpoint (explicit
checkpoints: its write ends; closed form: every ``checkpoint_interval`` of progress, one heap
event per boundary while it is shrunk) and every card of the full placement it had before its
first shrink is up and free again (repaired, or a spare swapped into the slot, and not taken by
another job meanwhile), it stops there without losing work and restarts on that placement after
a re-launch stall: the restart delay without detection (``restart_for(full) - detection``) plus
the usual restore stall. Otherwise it tries again at its next boundary. A shrunk job that is
queued (a preemption, an eviction, or a failure leaving fewer than ``min_cards``) asks for its
full size again, and the scheduler places it whole as any job.

Per job: ``shrinks`` (restarts on fewer cards), ``regrows`` (back to full size while running)
and ``shrunk_card_s`` (card-seconds it held its cards while below its full size, restart stalls
included).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from ...policies.base import Placement
from ...workload.jobs import KIND_OFFLINE, KIND_TRACE
from .interruptions import REQUEUE
from .views import RESTARTING, RUNNING

__all__ = ["ELASTIC", "Elastic"]

ELASTIC, GROW = 20, 21  # heap event kinds: the restart decision at the failure; a boundary


class Elastic:
    """Shrink-on-failure of elastic jobs (the engine sets every attribute used)."""

    sim: Any
    state: Any
    failures: Any
    preempt_overhead_s: float
    job_id: list[int]
    num: list[int]
    milli: list[int]
    kind: list[int]
    mask: list[int]
    demand: list[float]
    ver: list[int]
    status: list[int]
    queued_since: Any
    tenant: list[int]
    tenant_queued: Any
    restore_s: dict[int, float]
    job_speed: dict[int, Any]
    prog_wall: list[float]
    attained: list[float]
    lost_card_s: list[float]
    pf_job: dict[int, float]
    progress_factor: float
    explicit: bool
    phase: dict[int, int]
    writes: dict[int, Any]
    _heap: list[Any]

    def start(self, i: int, placement: Placement, t: float) -> None:   # the engine's
        raise NotImplementedError

    def _stop(self, i: int, t: float) -> None:   # the engine's
        raise NotImplementedError

    # .checkpoints' (an annotation, not a stub: this mixin comes first in the engine's bases)
    _ck_saved: Callable[[int], None]

    def _init_elastic(self, spec: dict[int, tuple[int, int]]) -> None:
        """``spec``: ``{job_id: (min_cards, granularity)}`` of the elastic jobs."""
        row_of = {jid: r for r, jid in enumerate(self.job_id)}
        self.el: dict[int, tuple[int, int]] = {}
        for jid, (lo, g) in sorted(spec.items()):
            r = row_of.get(jid)
            if r is None:
                continue
            n = self.num[r]
            if self.kind[r] in (KIND_TRACE, KIND_OFFLINE) or self.milli[r] < 1000:
                raise ValueError(f"elastic job {jid}: only whole-card training jobs can shrink")
            if not (1 <= lo <= n) or g < 1 or n % g:
                raise ValueError(f"elastic job {jid}: needs 1 <= min_cards <= {n} cards and a "
                                 f"granularity dividing them, got min_cards={lo}, granularity={g}")
            self.el[r] = (int(lo), int(g))
        self.el_full: dict[int, int] = {}        # row -> full size, while shrunk
        self.el_scale: dict[int, float] = {}     # row -> new / full (jobs without a speed hook)
        self.el_since: dict[int, float] = {}     # row -> when its shrunk placement began
        self.el_held: dict[int, np.ndarray] = {}  # row -> its cards at the failure (decision pending)
        self.el_orig: dict[int, np.ndarray] = {}  # row -> its full placement before the first shrink
        self.el_gen: dict[int, int] = {}          # row -> progress spell (voids older GROW events)
        self.el_shrinks: dict[int, int] = {}
        self.el_regrows: dict[int, int] = {}
        self.el_card_s: dict[int, float] = {}
        self.el_wall: dict[int, float] = {}       # row -> wall seconds held shrunk
        self.el_prog: dict[int, tuple[float, float]] = {}  # row -> (progress s, progress card-s) shrunk
        self.el_prog0: dict[int, float] = {}      # row -> prog_wall when its shrunk spell began

    # ---- hooks from the engine -----------------------------------------------------------------
    def _el_failed(self, i: int, t: float, held: np.ndarray) -> None:
        """Elastic job ``i`` failed at ``t`` holding ``held``: decide once the failure has taken
        all its cards down (same instant, after this failure's handler)."""
        self.el_held[i] = held
        heapq.heappush(self._heap, (t, ELASTIC, i, self.ver[i]))

    def _el_event(self, kind: int, i: int, v: int, t: float) -> None:
        if kind == GROW:
            live = self.el_gen.get(i) == v and self.status[i] == RUNNING and i in self.el_full
            if live and not self._el_try_grow(i, t):
                heapq.heappush(self._heap, (t + self.failures.checkpoint_interval_s, GROW, i, v))
            return
        held = self.el_held.pop(i, None)
        if held is None or self.ver[i] != v or self.status[i] != RESTARTING:
            return
        st = self.state
        ok = (st.owner[held] == -1) & ~st.down[held] & ~st.reserved[held]
        ok &= ((self.mask[i] >> st.layout.card_type[held].astype(np.int64)) & 1) == 1
        up = held[ok]
        lo, g = self.el[i]
        k = (up.size // g) * g
        full = self.el_full.get(i, self.num[i])
        if k < lo or k == 0:   # too few left: re-queue after the restart delay, as any job
            heapq.heappush(self._heap, (t + self.failures.restart_for(self.num[i]), REQUEUE, i, v))
            return
        if i not in self.el_full:
            self.el_orig[i] = held.copy()
        self.el_full[i] = full
        self._el_resize(i, k, full)
        self.el_shrinks[i] = self.el_shrinks.get(i, 0) + 1
        self.restore_s[i] = self.failures.restart_for(k) + self.preempt_overhead_s
        self.queued_since[i] = t                           # start() counts no wait
        self.tenant_queued[self.tenant[i]] += self.demand[i]   # start() moves it to running
        self.start(i, Placement(cards=_fewest_nodes(up, st.layout.card_node, k)), t)
        self.el_since[i] = t
        self.el_prog0[i] = self.prog_wall[i]

    def _ck_progress(self, i: int, t: float) -> None:
        """Job ``i`` (re)started progressing: a shrunk one looks for its cards at each boundary."""
        super()._ck_progress(i, t)  # type: ignore[misc]
        if i in self.el_full:
            g = self.el_gen[i] = self.el_gen.get(i, 0) + 1
            if not self.explicit:
                heapq.heappush(self._heap, (t + self.failures.checkpoint_interval_s, GROW, i, g))

    def _completed(self, i: int, t: float) -> None:
        """An explicit checkpoint of job ``i`` completed: a shrunk job may grow back now."""
        super()._completed(i, t)  # type: ignore[misc]
        if (i in self.el_full and self.status[i] == RUNNING and i not in self.phase
                and i not in self.writes):
            self._el_try_grow(i, t)

    def _el_try_grow(self, i: int, t: float) -> bool:
        """Restart shrunk job ``i`` on its full placement if all of it is free; False if not."""
        st, orig = self.state, self.el_orig[i]
        mine = st.owner[orig] == i
        free = (st.owner[orig] == -1) & ~st.down[orig] & ~st.reserved[orig]
        if not (mine | free).all():
            return False
        self._stop(i, t)
        self._ck_saved(i)
        self._el_regrow(i)
        self.el_regrows[i] = self.el_regrows.get(i, 0) + 1
        fm = self.failures
        self.restore_s[i] = fm.restart_for(self.num[i]) - fm.detection_s + self.preempt_overhead_s
        self.queued_since[i] = t
        self.tenant_queued[self.tenant[i]] += self.demand[i]
        self.start(i, Placement(cards=orig), t)
        return True

    def _el_stop(self, i: int, t: float) -> None:
        """Job ``i`` released its (shrunk) cards at ``t``: account its shrunk card-seconds."""
        t0 = self.el_since.pop(i)
        k = self.num[i]
        self.el_card_s[i] = self.el_card_s.get(i, 0.0) + (t - t0) * k
        self.el_wall[i] = self.el_wall.get(i, 0.0) + (t - t0)
        dp = self.prog_wall[i] - self.el_prog0.pop(i)
        p, pc = self.el_prog.get(i, (0.0, 0.0))
        self.el_prog[i] = (p + dp, pc + dp * k)

    def _el_regrow(self, i: int) -> None:
        """A shrunk job is queued again: it asks for its full size."""
        full = self.el_full.pop(i)
        self.el_gen[i] = self.el_gen.get(i, 0) + 1
        self._el_resize(i, full, full)

    def _el_resize(self, i: int, k: int, full: int) -> None:
        self.num[i] = k
        self.demand[i] = k * self.milli[i] / 1000.0
        if k == full or i in self.job_speed:
            self.el_scale.pop(i, None)
        else:
            self.el_scale[i] = k / full

    def elastic_columns(self) -> dict[str, np.ndarray]:
        """Per-job ``elastic``, ``shrinks``, ``regrows`` and ``shrunk_card_s`` (only when some job
        is elastic)."""
        if not self.el:
            return {}
        n = len(self.num)
        shrinks = np.zeros(n, np.int64)
        regrows = np.zeros(n, np.int64)
        card_s = np.zeros(n)
        for r, x in self.el_shrinks.items():
            shrinks[r] = x
        for r, x in self.el_regrows.items():
            regrows[r] = x
        for r, y in self.el_card_s.items():
            card_s[r] = y
        el = np.zeros(n, bool)
        el[list(self.el)] = True
        return {"elastic": el, "shrinks": shrinks, "regrows": regrows, "shrunk_card_s": card_s}

    def reliability_columns(self) -> dict[str, np.ndarray]:
        """The checkpoint accounting's columns (card-seconds at the job's current size), with the
        shrunk spells of elastic jobs counted at the size they ran."""
        cols: dict[str, np.ndarray] = super().reliability_columns()  # type: ignore[misc]
        if not self.el_wall:
            return cols
        held, ck, surv = cols["held_card_s"], cols["checkpoint_card_s"], cols["surviving_card_s"]
        lost = cols["lost_card_s.failure"] + np.asarray(self.lost_card_s, np.float64)
        for r, w in self.el_wall.items():
            cur = self.num[r] * self.milli[r] / 1000.0
            full = self.el_full.get(r, self.num[r]) * self.milli[r] / 1000.0
            p, pc = self.el_prog.get(r, (0.0, 0.0))
            pf = self.pf_job.get(r, self.progress_factor)
            prog_card = (self.prog_wall[r] - p) * full + pc
            held[r] = (self.attained[r] - w) * full + self.el_card_s[r]
            ck[r] += (1.0 - pf) * (prog_card - self.prog_wall[r] * cur)
            surv[r] = max(pf * prog_card - lost[r], 0.0)
        return cols

    def finalize_elastic(self, t: float) -> None:
        """Close the shrunk spells of jobs still running at the horizon."""
        for i in sorted(self.el_since):
            self._el_stop(i, t)


def _fewest_nodes(cards: np.ndarray, card_node: np.ndarray, k: int) -> np.ndarray:
    """``k`` of ``cards``, whole nodes first: the nodes with the most of them, then node order
    (a shrunk job spans as few nodes as it can, as the packed placement would place it)."""
    nodes = np.asarray(card_node)[cards]
    uniq, inv, cnt = np.unique(nodes, return_inverse=True, return_counts=True)
    rank = np.empty(uniq.size, np.int64)
    rank[np.lexsort((uniq, -cnt))] = np.arange(uniq.size)
    order = np.lexsort((cards, rank[inv.reshape(-1)]))
    return np.sort(cards[order[:k]])
