"""Checkpoints and reliability accounting of training jobs (a mixin of
:class:`~cluster_sim.engine.cluster.training.TrainingEngine`; issue #17 items 2, 3 and 6).

Accounting (every run with a failure model): per job, the card-time it held its cards, the
wall seconds it made progress, the progress lost to failures (card-seconds and FLOPs), the
checkpoint stalls, the completed checkpoints and the time from each failure to resumed progress.
``reliability_columns`` hands them to the run record; ``metrics/reliability.py`` turns them into
ETTR, goodput and effective MFU.

Explicit checkpoints (the failure model has a shared storage bandwidth): after every
``checkpoint_interval_s`` of progress a job checkpoints. Synchronous: it stops progressing (rate
0, still running and holding its cards) while its write is in the storage pool. Asynchronous: it
stalls for the copy to host memory, then progresses while the persist is in the pool; its next
checkpoint waits for that persist to end. The pool's bandwidth is shared max-min among the
writes, each capped by its writer nodes' bandwidth (``network/contention.py::water_fill``); a
write's end is a heap event, and each write joining or leaving re-times the others (events only
there). A checkpoint is *completed* when its write ends; a failure loses the progress since the
last completed one (the job's remaining work goes back to what it was then). A job whose
checkpoint size is unknown (no model) stalls the fixed ``checkpoint_cost_s`` instead of writing.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from ...network.contention import water_fill
from .views import RUNNING

__all__ = ["CK_COPIED", "CK_DONE", "CK_DUE", "CK_FIXED", "Checkpoints"]

CK_DUE, CK_COPIED, CK_DONE, CK_FIXED = 10, 11, 12, 13  # heap event kinds (after .cycle's 6, 7)
_NONE, _WRITING, _COPYING, _PERSIST = 0, 1, 2, 3       # checkpoint phase of a job


class Checkpoints:
    """Checkpoint events and reliability accounting (the engine sets every attribute used)."""

    failures: Any
    table: Any
    n: int
    job_id: list[int]
    num: list[int]
    milli: list[int]
    rate: list[float]
    remaining: list[float]
    ver: list[int]
    status: list[int]
    peak_rate: list[float]
    flops_ref: list[float]
    dur: list[float]
    attained: list[float]
    peak_s: list[float]
    running_set: dict[int, None]
    progress_factor: float
    rate_epoch: int
    events: int
    _heap: list[Any]

    def _progress(self, i: int, t: float) -> None:   # the engine's
        raise NotImplementedError

    def _set_busy(self, i: int, rate: float) -> None:   # the engine's
        raise NotImplementedError

    def _begin_progress(self, i: int, t: float) -> None:   # the engine's
        raise NotImplementedError

    def _init_checkpoints(self) -> None:
        n, fm = self.n, self.failures
        row_of = {jid: r for r, jid in enumerate(self.job_id)}
        jobs = {} if fm is None else {row_of[j]: c for j, c in sorted(fm.jobs.items()) if j in row_of}
        self.ck_job = jobs
        self.pf_job = {} if fm is None else {
            r: fm.job_progress_factor(self.job_id[r]) for r in jobs
            if fm.job_progress_factor(self.job_id[r]) != self.progress_factor}
        self.explicit = fm is not None and fm.explicit
        # the card-time held is the engine's attained_s, its peak FLOPs peak_s; the rest is
        # sparse (rows an interruption or a checkpoint touched) but the progress clock
        self.prog_t = [-1.0] * n           # when its current progress spell began (-1: none)
        self.prog_wall = [0.0] * n         # wall seconds of progress (rate > 0)
        self.lost_fail_card_s: dict[int, float] = {}  # card-seconds of progress lost to failures
        self.lost_pre_card_s: dict[int, float] = {}   # ... to preemptions (a work unit in progress)
        self.lost_flops: dict[int, float] = {}
        self.ckpt_card_s: dict[int, float] = {}       # card-seconds stalled by explicit checkpoints
        self.n_ckpt: dict[int, int] = {}
        self.restart_wall: dict[int, float] = {}      # failure -> progress again, summed
        self.down_t: dict[int, float] = {}
        # explicit checkpoints
        self.saved: dict[int, tuple[float, float]] = {}  # (remaining, prog_wall) at the last completed one
        self.snap: dict[int, tuple[float, float]] = {}   # the checkpoint being written
        self.phase: dict[int, int] = {}
        self.stall_t: dict[int, float] = {}
        self.ck_ver = [0] * n if self.explicit else []
        self.due_wait: set[int] = set()    # due while its async persist still runs
        self.writes: dict[int, list[float]] = {}   # row -> [bytes left, cap, rate]
        self.pool_t = 0.0
        self.pool_epoch = 0

    # ---- hooks from the engine -----------------------------------------------------------------
    def _ck_progress(self, i: int, t: float) -> None:
        """Job ``i`` (re)started progressing at ``t``."""
        d = self.down_t.pop(i, None)
        if d is not None:
            _add(self.restart_wall, i, t - d)
        self.prog_t[i] = t
        if self.explicit:
            self.ck_ver[i] += 1
            heapq.heappush(self._heap, (t + self.failures.checkpoint_interval_s, CK_DUE, i, self.ck_ver[i]))

    def _ck_stop(self, i: int, t: float) -> None:
        """Job ``i`` released its cards at ``t`` (finish, preemption, eviction, failure)."""
        p0 = self.prog_t[i]
        if p0 >= 0.0:
            self.prog_wall[i] += t - p0
            if not self.explicit and self.failures is not None:
                k = int((t - p0) // self.failures.checkpoint_interval_s)
                if k:
                    _add(self.n_ckpt, i, k)
            self.prog_t[i] = -1.0
        if self.explicit:
            s0 = self.stall_t.pop(i, None)
            if s0 is not None:
                _add(self.ckpt_card_s, i, (t - s0) * self.num[i] * self.milli[i] / 1000.0)
            self.ck_ver[i] += 1
            self.due_wait.discard(i)
            self.phase.pop(i, None)
            if self.writes.pop(i, None) is not None:   # aborted: the others get its bandwidth
                self._pool_advance(t, skip=i)
                self._pool_retime(t)

    def _ck_fail(self, i: int, t: float, lost_work: float, rate_before: float) -> float:
        """Account a failure of job ``i`` (already stopped); returns the work lost (explicit: the
        progress since the last completed checkpoint, from which ``remaining`` is restored)."""
        c = self.num[i] * self.milli[i] / 1000.0
        if self.explicit:
            rem, prog = self.saved.get(i, (self.dur[i], 0.0))
            lost_work = max(rem - self.remaining[i], 0.0)
            lost_s = max(self.prog_wall[i] - prog, 0.0)
            self.remaining[i] = rem
            self.saved[i] = (rem, self.prog_wall[i])
            self.snap.pop(i, None)
        else:
            pf = self.pf_job.get(i, self.progress_factor)   # lost wall time: this share was progress
            lost_s = lost_work / rate_before * pf if rate_before > 0 else 0.0
        if lost_s > 0:
            _add(self.lost_fail_card_s, i, lost_s * c)
        fr = self.flops_ref[i]
        if fr == fr and lost_work > 0:
            _add(self.lost_flops, i, fr * lost_work)
        self.down_t[i] = t
        return lost_work

    def _ck_saved(self, i: int) -> None:
        """A stop that keeps its progress (preemption, eviction: their own checkpoint rule)."""
        if self.explicit:
            self.saved[i] = (self.remaining[i], self.prog_wall[i])

    # ---- explicit checkpoint events ------------------------------------------------------------
    def _checkpoint_event(self, kind: int, i: int, v: int, t: float) -> None:
        if kind == CK_DONE:
            if v == self.pool_epoch and i in self.writes:
                self._pool_advance(t, skip=i)
                del self.writes[i]
                self._pool_retime(t)
                self._completed(i, t)
            return
        if self.ck_ver[i] != v or self.status[i] != RUNNING:
            return
        self.events += 1
        if kind == CK_DUE:
            if i in self.writes:     # its async persist is still running: checkpoint when it ends
                self.due_wait.add(i)
            else:
                self._begin_checkpoint(i, t)
        elif kind == CK_COPIED:
            self._resume(i, t)
            self.phase[i] = _PERSIST
            self._join_pool(i, t)
        elif kind == CK_FIXED:
            self._completed(i, t)

    def _begin_checkpoint(self, i: int, t: float) -> None:
        self._progress(i, t)
        self.snap[i] = (self.remaining[i], self.prog_wall[i] + (t - self.prog_t[i]))
        jc = self.ck_job.get(i)
        self._pause(i, t)
        self.ck_ver[i] += 1
        if jc is None or not jc.bytes > 0:
            self.phase[i] = _WRITING
            heapq.heappush(self._heap, (t + self.failures.checkpoint_cost_s, CK_FIXED, i, self.ck_ver[i]))
        elif self.failures.async_checkpoint:
            self.phase[i] = _COPYING
            heapq.heappush(self._heap, (t + jc.copy_s, CK_COPIED, i, self.ck_ver[i]))
        else:
            self.phase[i] = _WRITING
            self._join_pool(i, t)

    def _completed(self, i: int, t: float) -> None:
        snap = self.snap.pop(i, None)
        if snap is not None:
            self.saved[i] = snap
            _add(self.n_ckpt, i, 1)
        was = self.phase.pop(i, _NONE)
        if was == _WRITING:
            self._resume(i, t)
        if i in self.due_wait:
            self.due_wait.discard(i)
            self._begin_checkpoint(i, t)

    def _pause(self, i: int, t: float) -> None:
        self.prog_wall[i] += t - self.prog_t[i]
        self.prog_t[i] = -1.0
        self.rate[i] = 0.0
        self._set_busy(i, 0.0)
        self.ver[i] += 1          # its finish event is void while it checkpoints
        self.rate_epoch += 1
        self.stall_t[i] = t

    def _resume(self, i: int, t: float) -> None:
        s0 = self.stall_t.pop(i, t)
        _add(self.ckpt_card_s, i, (t - s0) * self.num[i] * self.milli[i] / 1000.0)
        self._begin_progress(i, t)

    def _join_pool(self, i: int, t: float) -> None:
        jc = self.ck_job[i]
        self._pool_advance(t)
        self.writes[i] = [float(jc.bytes), float(jc.write_cap_Bps), 0.0]
        self._pool_retime(t)

    def _pool_advance(self, t: float, skip: int = -1) -> None:
        dt = t - self.pool_t
        if dt > 0:
            for r, w in self.writes.items():
                if r != skip:
                    w[0] = max(w[0] - w[2] * dt, 0.0)
        self.pool_t = t

    def _pool_retime(self, t: float) -> None:
        self.pool_t = t
        self.pool_epoch += 1
        if not self.writes:
            return
        rows = list(self.writes)
        rates = water_fill([self.writes[r][1] for r in rows], self.failures.storage_bandwidth_Bps)
        for r, x in zip(rows, rates, strict=True):
            w = self.writes[r]
            w[2] = x
            heapq.heappush(self._heap, (t + w[0] / x, CK_DONE, r, self.pool_epoch))

    # ---- results --------------------------------------------------------------------------------
    def finalize_checkpoints(self, t: float) -> None:
        """Close the accounting of the jobs still holding cards at ``t`` (the run end)."""
        for i in self.running_set:
            if self.prog_t[i] >= 0.0:
                self.prog_wall[i] += t - self.prog_t[i]
                self.prog_t[i] = t
            s0 = self.stall_t.get(i)
            if s0 is not None:
                _add(self.ckpt_card_s, i, (t - s0) * self.num[i] * self.milli[i] / 1000.0)
                self.stall_t[i] = t

    def reliability_columns(self) -> dict[str, np.ndarray]:
        """Per-job accounting columns for the run record (card-seconds unless named otherwise)."""
        n = self.n
        cards = np.asarray(self.num, np.float64) * np.asarray(self.milli, np.float64) / 1000.0
        pf = np.full(n, self.progress_factor)
        for r, x in self.pf_job.items():
            pf[r] = x
        prog = np.asarray(self.prog_wall, np.float64)
        cols = {k: _dense(d, n) for k, d in (
            ("lost_card_s.failure", self.lost_fail_card_s), ("lost_card_s.preemption", self.lost_pre_card_s),
            ("lost_flops", self.lost_flops), ("restart_wall_s", self.restart_wall), ("checkpoints", self.n_ckpt))}
        cols["checkpoint_card_s"] = _dense(self.ckpt_card_s, n) + (1.0 - pf) * prog * cards
        cols["held_card_s"] = np.asarray(self.attained, np.float64) * cards
        cols["held_peak_flop_s"] = np.asarray(self.peak_s, np.float64)
        lost = cols["lost_card_s.failure"] + np.asarray(getattr(self, "lost_card_s", np.zeros(n)), np.float64)
        cols["surviving_card_s"] = np.maximum(pf * prog * cards - lost, 0.0)
        cols["progress_s"] = prog
        return cols


def _add(d: dict[int, Any], i: int, x: Any) -> None:
    d[i] = d.get(i, 0) + x


def _dense(d: dict[int, Any], n: int) -> np.ndarray:
    out = np.zeros(n)
    if d:
        out[np.fromiter(d.keys(), np.int64, len(d))] = np.fromiter(d.values(), np.float64, len(d))
    return out
