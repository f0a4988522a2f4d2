"""Training jobs on the shared cluster: one SimPy process, a heap of timed events, rates between events.

A job's progress is a rate (work-seconds per wall second, :mod:`.speed`) between events; when
its rate changes (a bandwidth share moves, a restart stall ends) its remaining work is brought
up to date and its finish re-scheduled (older heap entries are invalidated by a version number).
Events exist only where something changes: arrival, start, finish, preemption, failure, repair,
re-queue, bandwidth-share change, and (for an ordering whose keys change with service, e.g.
Tiresias) a running job crossing a queue threshold or a waiting job's starvation promotion.
Everything due at the same instant is handled as one batch,
followed by one scheduling cycle (:mod:`.cycle`). docs/engine.md explains why one process with a
heap is used rather than one SimPy process per job (measured there).
"""

from __future__ import annotations

import heapq
import math
from typing import Any

import numpy as np
import simpy

from ...errors import PlacementError
from ...perf.base import TrainingStepModel
from ...policies.base import Placement, TenantUsage, readonly
from ...workload.jobs import ANY_TYPE, KIND_OFFLINE, KIND_TRACE, JobTable
from .checkpoints import CK_DUE, Checkpoints
from .cycle import PROMOTE, RERANK, Scheduler
from .elastic import ELASTIC, Elastic
from .failures import FailureModel
from .interruptions import FAILURE, FINISH, RECYCLE, REPAIR, REQUEUE, STARTED
from .speed import LeafContention, busy_fraction
from .stragglers import SLOW, StragglerModel, Stragglers
from .terms import job_terms
from .views import (  # noqa: F401  (the status codes are part of this module's API)
    FINISHED,
    PENDING,
    QUEUED,
    REJECTED,
    RESTARTING,
    RUNNING,
    STATUS_NAMES,
    TrainingViews,
)

__all__ = ["STATUS_NAMES", "TrainingEngine"]

INF = math.inf
NAN = math.nan
BUSY_SCALE = 1_000_000  # busy level units per milli-card


class TrainingEngine(Elastic, Checkpoints, Stragglers, TrainingViews):
    """The training subsystem of a :class:`~cluster_sim.engine.simulation.Simulation`.

    Parameters
    ----------
    jobs : JobTable
        The jobs (any order; run in ``(submit_s, job_id)`` order).
    admission, ordering, placement, preemption : policy objects
        The four stages of the scheduling cycle (see ``cluster_sim.policies.registry``).
    backfill : bool or str
        ``True`` / ``"easy"``: EASY backfill behind a blocked head; ``"greedy"``: every waiting job
        that fits starts (no reservation); ``False``: strict queue order (see :mod:`.cycle`).
    backfill_depth : int
        How many queued jobs behind the head a cycle may consider.
    failures : FailureModel, optional
    stragglers : StragglerModel, optional
        Fail-slow episodes and the response to them (:mod:`.stragglers`).
    preempt_overhead_s : float
        Stall (cards held, no progress) when a preempted job restarts from its checkpoint.
    job_speed : mapping, optional
        Speed hooks for explicit model jobs: ``{job_id: callable(cards, share) -> (speed, mfu)}``
        (speed relative to the job's reference placement; see ``build_simulation``).
    work_quantum_s : mapping, optional
        ``{job_id: seconds}``: work a job saves only in whole units of (an offline inference
        job's batch at reference speed); when it is preempted or evicted, the unit in progress is
        lost and redone (docs/engine.md, "Offline inference jobs").
    elastic : mapping, optional
        ``{job_id: (min_cards, granularity)}``: jobs that shrink onto the cards left after a
        failure instead of queueing (:mod:`.elastic`).
    max_segments : int
        Most run segments kept for the Perfetto trace.
    """

    def __init__(self, jobs: JobTable, *, admission: Any, ordering: Any, placement: Any, preemption: Any,
                 backfill: bool | str = False, backfill_depth: int = 32, failures: FailureModel | None = None,
                 preempt_overhead_s: float = 60.0, job_speed: dict[int, TrainingStepModel] | None = None,
                 max_segments: int = 200_000, work_quantum_s: dict[int, float] | None = None,
                 stragglers: StragglerModel | None = None,
                 elastic: dict[int, tuple[int, int]] | None = None) -> None:
        self.table = jobs.sorted() if len(jobs) else jobs
        self.admission, self.ordering, self.placement, self.preemption = admission, ordering, placement, preemption
        if backfill not in (True, False, "easy", "greedy"):
            raise ValueError(f"backfill must be True, False, 'easy' or 'greedy', got {backfill!r}")
        self.backfill = "easy" if backfill is True else backfill
        self.backfill_depth = backfill_depth
        self.failures = failures if failures is not None and (failures.active or failures.explicit) else None
        self._init_stragglers(stragglers)
        self.preempt_overhead_s = preempt_overhead_s
        self.job_speed = dict(job_speed or {})
        self.work_quantum_s = dict(work_quantum_s or {})
        self.elastic_spec = dict(elastic or {})
        self.max_segments = max_segments
        self.events = 0
        self.release_epoch = 0
        self.rate_epoch = 0
        self._heap: list[tuple[float, int, int, int]] = []
        self._sleep: Any = None
        self._waiting = False

    # ---- set-up --------------------------------------------------------------------------------
    def connect(self, sim: Any) -> None:
        """Attach to a simulation: build per-job state and start the process."""
        self.sim, self.env, self.state, self.speed = sim, sim.env, sim.state, sim.speed
        self.view = self.state.view
        lo = self.state.layout
        J = self.table
        n = self.n = len(J)
        T = len(lo.card_types)
        # translate the job table's type vocabulary into cluster type bits
        cmask = np.zeros(n, dtype=np.uint64)
        uniq, inv = np.unique(J.type_mask, return_inverse=True) if n else (np.zeros(0, np.uint64), np.zeros(0, int))
        for u, m in enumerate(uniq.tolist()):
            bits = 0
            if m == int(ANY_TYPE):
                bits = (1 << T) - 1
            else:
                for k, name in enumerate(J.card_types):
                    if m >> k & 1 and name in lo.card_types:
                        bits |= 1 << lo.card_types.index(name)
            cmask[inv.reshape(-1) == u] = bits
        interned: dict[int, int] = {}
        self.mask = [interned.setdefault(x, x) for x in cmask.tolist()]
        self.cmask = cmask
        self.job_id = J.job_id.tolist()
        self.submit = J.submit_s.tolist()
        self.release = J.release_s.tolist()
        self.num = J.num_cards.tolist()
        self.milli = J.card_milli.tolist()
        # host CPU / memory requests count only on a cluster that models host resources
        host = self.state.has_host
        self.cpu = J.cpu_milli.tolist() if host else [0] * len(J)
        self.mem = J.memory_mib.tolist() if host else [0] * len(J)
        self.dur = J.duration_s.tolist()
        self.kind = J.kind.tolist()
        self.prio = J.priority.tolist()
        self.tenant = J.tenant.tolist()
        self.preemptible = J.preemptible.tolist()
        self.single = (J.kind == KIND_TRACE).tolist()
        self.demand = (J.num_cards * J.card_milli / 1000.0).tolist()
        ref_of = {m: self.speed.reference_for(m) for m in set(self.mask)}
        self.ref = [ref_of[m] for m in self.mask]
        row_of = {jid: r for r, jid in enumerate(self.job_id)}
        self.job_speed = {row_of[jid]: fn for jid, fn in sorted(self.job_speed.items()) if jid in row_of}
        offline = J.kind == KIND_OFFLINE
        self.offline = offline.tolist()  # replicas that never talk: busy while they progress
        modelled = (J.model_idx >= 0) & ~offline  # count model FLOPs; speed keys: terms.job_terms
        self.skey, mfu = job_terms(self.speed, J.kind, J.num_cards, self.ref, modelled, set(self.job_speed), offline)
        pref = np.asarray(lo.type_peak_flops)[np.asarray(self.ref, dtype=np.int64)] if n else np.zeros(0)
        fref = np.where(modelled, mfu * J.num_cards * J.card_milli / 1000.0 * pref, np.nan)
        self.flops_ref = fref.tolist()
        self.quantum = {row_of[jid]: q for jid, q in sorted(self.work_quantum_s.items()) if jid in row_of}
        self.status = [PENDING] * n
        # hot per-job state as Python lists (fast scalar access), the rest as numpy columns
        self.remaining = list(self.dur)
        self.rate = [0.0] * n
        self.sp = [0.0] * n
        self.last = [0.0] * n
        self.ver = [0] * n
        self.attained = [0.0] * n
        self.flops = [0.0] * n
        self.peak_s = [0.0] * n
        self.first_start = np.full(n, np.nan)
        self.finish_t = np.full(n, np.nan)
        self.restarts = np.zeros(n, np.int32)
        self.preempts = np.zeros(n, np.int32)
        self.wait = np.zeros(n)
        self.queued_since = np.zeros(n)
        self.run_start = np.zeros(n)
        self.peak_rate = [0.0] * n
        self.reason: dict[int, str] = {}
        self.restore_s: dict[int, float] = {}   # restart stall of an evicted job (its checkpoint read)
        self.lost_card_s = [0.0] * n   # card-seconds of work lost to evictions (redone later)
        self.stall_card_s = [0.0] * n  # card-seconds held in restart stalls (no progress)
        self.evictions = np.zeros(n, np.int32)
        self.held_levels = False       # a card broker holds cards: count them out of training's levels
        self.first_type = np.full(n, -1, np.int32)
        self.spans = np.zeros((n, 3), np.int32)  # (nodes, domains, leaves) of the latest placement
        self.info: dict[int, Any] = {}
        self.tmilli: dict[int, list[tuple[int, int]]] = {}
        self.busy = [0.0] * T  # busy milli-cards per type (docs/engine.md, "Busy cards")
        self._busy_u = [0] * T  # the same x BUSY_SCALE, as exact integer sums
        self.busy_frac = [0.0] * n  # busy share of each job's cards (speed.busy_fraction)
        self.running_set: dict[int, None] = {}
        self.n_tenants = max(len(J.tenants), 1)
        self.tenant_running = np.zeros(self.n_tenants)
        self.tenant_queued = np.zeros(self.n_tenants)
        self.usage = TenantUsage(tuple(J.tenants), readonly(self.tenant_running), readonly(self.tenant_queued))
        self.seg: list[tuple[int, float, float, int, int]] = []
        self.seg_open: dict[int, tuple[float, tuple[tuple[int, int], ...]]] = {}  # (start, (domain, cards)...)
        self.contention = LeafContention(lo, self.speed)
        self.net_dirty = False
        self.dirty = False
        self.next_arrival = 0
        self.progress_factor = self.failures.progress_factor if self.failures else 1.0
        self._cap_types = np.asarray(self.state.type_capacity)
        self._type_node_size = np.asarray(self.view.type_node_size)
        self._never: dict[tuple[int, int, bool], str | None] = {}
        self.placement_name = str(getattr(self.placement, "name", type(self.placement).__name__))
        self.svc_base = [0.0] * n  # attained_s at the last starvation promotion (see service_s)
        # keys of jobs that have not run yet depend only on their static columns: compute once
        self.key0 = self.scheduler_keys(list(range(n))) if n else []
        self.scheduler = Scheduler(self)
        self.blocked = False
        self.active = 0  # admitted jobs not finished yet
        self._init_checkpoints()
        self._init_elastic(self.elastic_spec)
        self._start_failures()
        self._start_stragglers()
        self._scalars = [0.0, 0.0, 0.0, 0.0, 0.0]
        self.submitted_cards = 0.0
        sim.levels.sample = self.sample_levels
        self.process = self.env.process(self._loop())

    # ---- the process -----------------------------------------------------------------------------
    def _next_time(self) -> float:
        t = self.submit[self.next_arrival] if self.next_arrival < self.n else INF
        if self._heap and self._heap[0][0] < t:
            t = self._heap[0][0]
        return t

    def _loop(self) -> Any:
        env = self.env
        while True:
            t = self._next_time()
            if t == INF:
                self._sleep = env.event()
                yield self._sleep
                self._sleep = None
                continue
            if t > env.now:
                self._waiting = True
                try:
                    yield env.timeout(t - env.now)
                except simpy.Interrupt:
                    continue
                finally:
                    self._waiting = False
            self.step(max(t, env.now))

    def poke(self) -> None:
        """Ask for a scheduling cycle now (another subsystem changed the cluster, e.g. released
        cards it had taken with ``sim.state.allocate``)."""
        self.dirty = True
        self.release_epoch += 1
        heapq.heappush(self._heap, (self.env.now, RECYCLE, -1, 0))
        if self._sleep is not None and not self._sleep.triggered:
            self._sleep.succeed()
        elif self._waiting:
            self.process.interrupt("poke")

    def step(self, t: float) -> None:
        """Handle everything due at ``t``, then run one scheduling cycle."""
        self.sim.levels.advance(t)
        heap = self._heap
        while heap and heap[0][0] <= t:
            _, kind, i, v = heapq.heappop(heap)
            if kind == FINISH:
                if self.ver[i] == v and self.status[i] == RUNNING:
                    self._finish(i, t)
            elif kind == STARTED:
                if self.ver[i] == v and self.status[i] == RUNNING:
                    self._begin_progress(i, t)
            elif kind == REQUEUE:
                if self.ver[i] == v and self.status[i] == RESTARTING:
                    self._enqueue(i, t)
                elif self.ver[i] == v and self.status[i] == PENDING:  # an off-peak hold ends
                    self._enqueue(i, t)
                    self.queued_since[i] = self.submit[i]  # its wait counts from submit
            elif kind == REPAIR:
                self._repair(i, t, v)
            elif kind == FAILURE:
                self._failure(i, v, t)
            elif kind == SLOW:
                self._slow_event(i, v, t)
            elif kind in (RERANK, PROMOTE):
                self.scheduler.on_rank_event(kind == PROMOTE, i, v, t)
            elif kind >= ELASTIC:
                self._el_event(kind, i, v, t)
            elif kind >= CK_DUE:
                self._checkpoint_event(kind, i, v, t)
            else:
                self.dirty = True
        submit, n = self.submit, self.n
        while self.next_arrival < n and submit[self.next_arrival] <= t:
            self._arrive(self.next_arrival, t)
            self.next_arrival += 1
        if self.dirty:
            self.dirty = False
            self.scheduler.run(t)
        if self.net_dirty:
            self._update_shares(t)
        self._set_levels()

    # ---- job lifecycle ---------------------------------------------------------------------------
    def never_fits(self, i: int) -> str | None:
        """Why engine row ``i`` can never run on this cluster (None if it can)."""
        key = (self.mask[i], self.num[i], self.single[i])
        if key in self._never:
            return self._never[key]
        mask, num = key[0], key[1]
        types = self.view.types_of(mask)
        if types.size == 0:
            allowed = self.table.allowed_types(i) if hasattr(self.table, "allowed_types") else ()
            why: str | None = (f"no card of an allowed type ({'|'.join(allowed) or '?'}) in the cluster "
                               f"(has {', '.join(self.state.layout.card_types)})")
        elif self.milli[i] < 1000:
            why = None
        elif self.single[i] and num > int(self._type_node_size[types].max()):
            why = f"needs {num} cards on one node; the largest node of its types has {int(self._type_node_size[types].max())}"
        elif num > int(self._cap_types[types].sum()):
            why = f"needs {num} cards; the cluster has {int(self._cap_types[types].sum())} of its types"
        else:
            why = None
        self._never[key] = why
        return why

    def _arrive(self, i: int, t: float) -> None:
        self.events += 1
        self.submitted_cards += self.demand[i]
        why = self.never_fits(i)
        if why is None:
            adm = self.admission.admit(self.job_view(i), self.usage)
            if not adm.accept:
                why = adm.reason or f"rejected by admission policy {getattr(self.admission, 'name', '?')}"
        if why is not None:
            self.status[i] = REJECTED
            self.reason[i] = why
            return
        self.state.push_request(self.num[i], self.milli[i], self.mask[i], self.cpu[i], self.mem[i])
        self.active += 1
        if self.release[i] > t:  # held (off-peak) until its release: joins the queue then
            heapq.heappush(self._heap, (self.release[i], REQUEUE, i, self.ver[i]))
            return
        self._enqueue(i, t)

    def _enqueue(self, i: int, t: float) -> None:
        if i in self.el_full:   # a shrunk elastic job asks for its full size again
            self._el_regrow(i)
        self.status[i] = QUEUED
        self.queued_since[i] = t
        self.tenant_queued[self.tenant[i]] += self.demand[i]
        self.scheduler.pending.append(i)
        self.scheduler.on_enqueue(i, t)
        self.dirty = True

    def start(self, i: int, placement: Placement, t: float) -> None:
        """Apply a validated placement: allocate, account, schedule the finish."""
        if placement.cards.size != self.num[i]:
            raise PlacementError(f"placement policy {self.placement_name!r}, job row {i}: "
                                 f"{placement.cards.size} cards for a job of {self.num[i]}")
        cards = self.state.allocate(i, placement.cards, self.milli[i], self.placement_name, self.mask[i],
                                    self.cpu[i], self.mem[i])
        self.events += 1
        self.status[i] = RUNNING
        if self.first_start[i] != self.first_start[i]:  # NaN: first start
            self.first_start[i] = t
            self.first_type[i] = int(self.state.layout.card_type[cards[0]])
        self.wait[i] += t - self.queued_since[i]
        ten, d = self.tenant[i], self.demand[i]
        self.tenant_queued[ten] -= d
        self.tenant_running[ten] += d
        info = self.speed.info(self.skey[i], cards)
        self.info[i] = info
        sp_row = self.spans[i]
        sp_row[0], sp_row[1], sp_row[2] = info.n_nodes, info.n_domains, len(info.leaves)
        m = self.milli[i]
        if info.n_nodes == 1:
            tm = [(info.slowest_type, m * len(cards))]
        else:
            cnt = np.bincount(self.state.layout.card_type[cards])
            tm = [(int(tt), int(c) * m) for tt, c in enumerate(cnt.tolist()) if c]
        self.tmilli[i] = tm
        peak = self.state.layout.type_peak_flops
        self.peak_rate[i] = sum(float(peak[tt]) * mm / 1000.0 for tt, mm in tm)
        if self.contention.add(i, info):
            self.net_dirty = True
        self.sp[i] = self._speed(i, cards, 1.0)
        self.last[i] = t
        self.running_set[i] = None
        if len(self.seg) < self.max_segments:
            self.seg_open[i] = (t, self._domain_spans(cards, info.n_domains, int(self.num[i])))
        stall = self.restore_s.pop(i, None)
        if stall is None:
            stall = self.preempt_overhead_s if (self.restarts[i] or self.preempts[i]) else 0.0
        if stall > 0:
            self.rate[i] = 0.0
            self.ver[i] += 1
            self.stall_card_s[i] += stall * self.num[i] * self.milli[i] / 1000.0
            heapq.heappush(self._heap, (t + stall, STARTED, i, self.ver[i]))
        else:
            self._begin_progress(i, t)
        self.scheduler.on_start(i, t)

    def _speed(self, i: int, cards: np.ndarray, share: float) -> float:
        hook = self.job_speed.get(i)
        pf = self.pf_job.get(i, self.progress_factor)
        if self.slow_on:
            pf *= self.slow_factor(i, cards)
        if hook is not None:
            sp, mfu = hook(cards, share)
            if mfu == mfu:
                self.flops_ref[i] = mfu * self.peak_rate[i] / max(sp, 1e-12)
            return sp * pf
        if self.el_scale:   # a shrunk elastic job without a speed hook: linear in its cards
            pf *= self.el_scale.get(i, 1.0)
        info = self.info[i]
        return self.speed.speed(self.speed.terms(*self.skey[i], info.slowest_type), info, share) * pf

    def _begin_progress(self, i: int, t: float) -> None:
        self._progress(i, t)
        sp = self.sp[i]
        self.rate[i] = sp
        self.run_start[i] = t
        self._set_busy(i, sp)
        self.ver[i] += 1
        heapq.heappush(self._heap, (t + self.remaining[i] / sp, FINISH, i, self.ver[i]))
        self._ck_progress(i, t)

    def _progress(self, i: int, t: float) -> None:
        dt = t - self.last[i]
        if dt > 0:
            self.attained[i] += dt
            r = self.rate[i]
            if r > 0:
                self.remaining[i] -= r * dt
            fr = self.flops_ref[i]
            if fr == fr:
                self.flops[i] += fr * r * dt
                self.peak_s[i] += self.peak_rate[i] * dt
        self.last[i] = t

    def _set_rate(self, i: int, t: float, sp: float) -> None:
        self.sp[i] = sp
        if self.rate[i] > 0:
            self._progress(i, t)
            self.rate[i] = sp
            self._set_busy(i, sp)
            self.ver[i] += 1
            heapq.heappush(self._heap, (t + max(self.remaining[i], 0.0) / sp, FINISH, i, self.ver[i]))
            self.events += 1
            self.rate_epoch += 1

    def _set_busy(self, i: int, rate: float) -> None:
        """Set job ``i``'s part of the busy level to :func:`~.speed.busy_fraction` of its cards."""
        f = 0.0
        if rate > 0.0:
            iso = (self.sp[i] / self.pf_job.get(i, self.progress_factor) if self.offline[i] else
                   self.speed.isolated_speed(self.skey[i], self.info[i]))
            if self.el_full and i in self.el_full:   # shrunk: busy relative to its own size
                iso *= self.num[i] / self.el_full[i]
            f = busy_fraction(rate, iso)
        old = self.busy_frac[i]
        if f != old:
            u = self._busy_u
            for tt, mm in self.tmilli[i]:  # integers: what a job adds, it removes exactly
                u[tt] += round(mm * f * BUSY_SCALE) - round(mm * old * BUSY_SCALE)
                self.busy[tt] = u[tt] / BUSY_SCALE
            self.busy_frac[i] = f

    def _stop(self, i: int, t: float) -> None:
        """Common part of finish, preemption and failure: account and release the cards."""
        if self.slow_on:
            self._close_slow(i, t)
        self._progress(i, t)
        self._set_busy(i, 0.0)
        self.rate[i] = 0.0
        self.ver[i] += 1
        self.state.release(i)
        del self.running_set[i]
        self.info.pop(i, None)
        self.tmilli.pop(i, None)
        self._ck_stop(i, t)
        if i in self.el_since:   # after _ck_stop: its progress clock is up to date
            self._el_stop(i, t)
        if self.contention.remove(i):
            self.net_dirty = True
        ten, d = self.tenant[i], self.demand[i]
        self.tenant_running[ten] -= d
        s0 = self.seg_open.pop(i, None)
        if s0 is not None and len(self.seg) < self.max_segments:
            self.seg.extend((i, s0[0], t, d, n) for d, n in s0[1])
        self.release_epoch += 1
        self.dirty = True
        self.events += 1

    def _domain_spans(self, cards: np.ndarray, n_domains: int, num: int) -> tuple[tuple[int, int], ...]:
        """``(domain, cards in it)`` of a placement, one pair per scale-up domain it spans (the
        segment rows of the trace: a job shows on every domain it holds). At job starts only."""
        dom = self.state.layout.card_domain
        if n_domains <= 1:
            return ((int(dom[cards[0]]), num),)
        ds, counts = np.unique(dom[cards], return_counts=True)
        return tuple((int(d), int(c)) for d, c in zip(ds.tolist(), counts.tolist(), strict=True))

    def _finish(self, i: int, t: float) -> None:
        self._stop(i, t)
        self.remaining[i] = 0.0
        self.active -= 1
        self.status[i] = FINISHED
        self.finish_t[i] = t
        if self._fp is not None and not self.active:
            self._fp.on_idle(t)

    # ---- network shares ------------------------------------------------------------------------
    def _update_shares(self, t: float) -> None:
        self.net_dirty = False
        for i, share in self.contention.changed_shares().items():
            if self.status[i] != RUNNING:
                continue
            sp = self._speed(i, self.state.alloc[i][0], share)
            if abs(sp - self.sp[i]) > 1e-12 * sp:
                self._set_rate(i, t, sp)

    # ---- levels and finalisation ---------------------------------------------------------------
    def _set_levels(self) -> None:
        q = len(self.scheduler.queue) + len(self.scheduler.pending)
        self.blocked = q > 0
        free = float(self.state.type_free_milli.sum()) / 1000.0 if self.blocked else 0.0
        self._scalars = [float(q), float(len(self.running_set)), 1.0 if self.blocked else 0.0, free,
                         self.submitted_cards]

    def sample_levels(self) -> list[float]:
        """Raw levels for :class:`~cluster_sim.engine.simulation.Levels` (see there)."""
        st = self.state
        out = (st.type_down + st.type_held) if self.held_levels else st.type_down
        return st.type_free_milli.tolist() + out.tolist() + self.busy + self._scalars

    def finalize(self, t: float) -> None:
        """Bring running jobs' accounting up to ``t`` (the horizon) and close their segments."""
        self.finalize_checkpoints(t)
        self.finalize_elastic(t)
        if self._fp is not None:
            self.sim.meta["failures"] = self._fp.record(t)
        for i in sorted(self.running_set):
            self._progress(i, t)
            s0 = self.seg_open.pop(i, None)
            if s0 is not None and len(self.seg) < self.max_segments:
                self.seg.extend((i, s0[0], t, d, n) for d, n in s0[1])
