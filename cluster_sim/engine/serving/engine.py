"""The LLM serving engine: continuous batching replicas, routing, autoscaling, PD separation.

Requests are rows of numpy arrays (:class:`~cluster_sim.workload.requests.RequestTable`),
never processes. Time advances over one heap of *replica* next-event times (plus KV-network
completions, deliveries and autoscaling ticks) merged with the sorted arrival stream; a
replica's batch moves from one change to the next in one event
(:mod:`cluster_sim.engine.serving.replica`). Standalone: :meth:`ServingEngine.run`. Hosted in
a SimPy environment: :meth:`ServingEngine.process` is ONE process for the whole engine that
sleeps until the next serving event; as a subsystem of
:class:`~cluster_sim.engine.simulation.Simulation` (``sim.add(engine)``), ``connect`` starts that
process and ``finalize`` collects :attr:`ServingEngine.result`.

At equal times: arrivals first, then replica activations, KV deliveries, network
completions, replica events (in scheduling order) and autoscaling ticks.

>>> from cluster_sim.perf.linear_serving import LinearServingPerf
>>> from cluster_sim.workload.requests import RequestTable
>>> reqs = RequestTable.from_arrays([0.0, 0.5], [100, 100], [3, 3])
>>> perf = LinearServingPerf(prefill_s=0.25, decode_s=0.125, kv_capacity_tokens=1000)
>>> svc = ServiceSpec("chat", reqs, (PoolSpec("colocated", 1, perf),))
>>> run = ServingEngine([svc]).run()
>>> run.requests[["first_token_s", "last_token_s"]].values.tolist()
[[0.25, 0.5], [0.75, 1.0]]
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np

from ...errors import PlacementError
from ...policies.serving.autoscaling import FixedReplicas
from ...policies.serving.base import RoutingView, readonly
from ...policies.serving.routing import RoundRobin
from ..simulation import PROGRESS_STEPS
from .faults import FaultState, ReplicaFaults
from .pools import ServingPool
from .replica import Replica
from .results import REASONS, ServingRun, build_run
from .scaling import apply_target, scale_view
from .setup import EngineSetup
from .specs import PoolSpec, ServiceSpec, ServingOptions  # noqa: F401  (PoolSpec: the doctest above)

__all__ = ["ServingEngine", "ServingRun"]

K_ACTIVATE, K_DELIVER, K_NET, K_REPLICA, K_TICK, K_FAIL, K_RECOVER = 0, 1, 2, 3, 4, 5, 6
_heappush, _heappop = heapq.heappush, heapq.heappop


class ServingEngine(EngineSetup):
    """Serve every service's requests on its replicas.

    Parameters
    ----------
    services : sequence of ServiceSpec
        The services; request ids in results are global (services in order, rows in order).
    routing : RoutingPolicy, optional
        Router for every pool (default round robin). Stateless policies can be shared.
    autoscaling : AutoscalingPolicy, optional
        Autoscaler for every pool (default fixed).
    options : ServingOptions, optional
        Batching and recording knobs.
    topology : Topology, optional
        Cards to place replicas on and the links KV transfers cross; without one, replicas
        get virtual cards on a non-blocking NIC fabric.
    cards : numpy.ndarray, optional
        The only topology cards replicas may be placed on (a pool policy's inference partition).
        Hosted in a :class:`~cluster_sim.engine.simulation.Simulation`, the replicas' cards are
        marked ``serving`` in its card ledger when the engine connects.
    broker : CardBroker, optional
        Hosted under a dynamic pool policy: a replica holds its cards only while it is on; the
        broker (:mod:`cluster_sim.engine.pool.broker`) gives them at scale-up (reclaiming them
        from training if the policy allows) and lends them to training after scale-down.
    faults : ReplicaFaults, optional
        Replica failures (:mod:`cluster_sim.engine.serving.faults`); default: none.
    """

    K_DELIVER, K_NET = K_DELIVER, K_NET   # (the fault module's view of the event kinds)

    def __init__(self, services: Sequence[ServiceSpec], *, routing: Any = None, autoscaling: Any = None,
                 options: ServingOptions | None = None, topology: Any = None,
                 cards: np.ndarray | None = None, broker: Any = None,
                 faults: ReplicaFaults | None = None) -> None:
        self.services = list(services)
        self.broker = broker
        self.routing = routing if routing is not None else RoundRobin()
        self.autoscaling = autoscaling if autoscaling is not None else FixedReplicas()
        self.options = opt = options or ServingOptions()
        self.topology = topology
        self.allowed_cards = None if cards is None else np.asarray(cards, dtype=np.int64)
        self.horizon = math.inf if opt.horizon_s is None else float(opt.horizon_s)
        self.block_tokens = 512
        self.events = 0
        self.now = 0.0
        self.nfinished = 0
        self.heap: list[tuple[float, int, int, Any, int]] = []
        self._sync: list[float] = []   # with a card broker: times of ticks and activations (where it may act)
        self._seq = 0
        self.tl_rows: list[tuple[int, float, float, float, float, float, float]] = []
        self._build_requests()
        self._build_pools()
        self.bin_width = self._bin_width()
        self._build_replicas()
        self.faults: FaultState | None = None
        self.handoffs: dict[int, list[tuple[int, Replica]]] = {}   # PD: prefilled, no decode replica up
        if faults is not None and faults.active:
            if broker is not None:
                raise PlacementError("failures.serving: replica failures under a dynamic pool policy "
                                     "(shared_pool, peak_shaving) are not modelled; use separate or "
                                     "static_partition")
            self.faults = FaultState(self, faults, K_FAIL, K_RECOVER)
        self._started = False
        self._closed: ServingRun | None = None
        self.result: ServingRun | None = None   # set by finalize() when hosted
        self._svc_list: list[int] = self.svc_of.tolist() if len(self.services) > 1 else []

    # ---- scheduling helpers (called by replicas) ------------------------------------------
    def schedule(self, rep: Replica, t: float) -> None:
        """(Re)schedule ``rep``'s next event at ``t``; older entries become stale."""
        rep.version += 1
        self._seq += 1
        _heappush(self.heap, (t, K_REPLICA, self._seq, rep, rep.version))

    def _push(self, t: float, kind: int, obj: Any, ver: int = 0) -> None:
        self._seq += 1
        _heappush(self.heap, (t, kind, self._seq, obj, ver))
        if (kind >= K_TICK or kind == K_ACTIVATE) and self.broker is not None:
            _heappush(self._sync, t)

    def finished(self, r: int, t: float) -> None:
        """Request ``r`` produced its last token at ``t``."""
        self.rs.status[r] = 1
        self.nfinished += 1
        ring = self._recent
        if ring is not None:
            k = int(self.svc_of[r])
            buf, pos = ring[k]
            rs = self.rs
            n = rs.output[r]
            buf[pos % len(buf), 0] = rs.t_first[r] - self.arrival[r]
            buf[pos % len(buf), 1] = (t - rs.t_first[r]) / (n - 1) if n > 1 else math.nan
            ring[k] = (buf, pos + 1)

    def prefilled(self, prep: Replica, r: int, t: float) -> None:
        """PD: request ``r``'s prefill ended on ``prep`` at ``t``; hand it to a decode replica."""
        rs = self.rs
        if rs.gen[r] >= rs.output[r]:
            prep.release(r, t)
            rs.t_last[r] = t
            self.finished(r, t)
            return
        self._handoff(prep, r, t)

    def _handoff(self, prep: Replica, r: int, t: float) -> None:
        rs = self.rs
        dpool = self.decode_pool[int(self.svc_of[r])]
        assert dpool is not None
        drep = self._route(dpool, r, t)
        if drep is None:   # every decode replica failed (replica failures): wait for one to be back
            dpool.parked.pop()
            self.handoffs.setdefault(id(dpool), []).append((r, prep))
            return
        rs.drep[r] = drep.rid
        if not drep.xq and drep.can_reserve(r):
            self._transfer(prep, drep, r, t)
        else:
            drep.xq.append((r, prep))

    def _transfer(self, prep: Replica, drep: Replica, r: int, t: float) -> None:
        net = self.net
        assert net is not None
        drep.reserve(r, t)
        nbytes = self.rs.prompt[r] * float(prep.perf.kv_bytes_per_token_unique)
        net.start(t, prep.cards, drep.cards, nbytes, (r, prep, drep))
        self._push(net.next_t, K_NET, net, net.version)

    def _try_transfers(self, drep: Replica, t: float) -> None:
        xq = drep.xq
        while xq and drep.can_reserve(xq[0][0]):
            r, prep = xq.popleft()
            self._transfer(prep, drep, r, t)

    # ---- routing --------------------------------------------------------------------------
    def _route(self, pool: ServingPool, r: int, t: float) -> Replica | None:
        pool.arrivals += 1
        reps = pool.replicas
        nloc = len(pool.local)
        if nloc == 0:   # scaled to zero (a dynamic pool policy with min_replicas 0): wait for a start
            pool.parked.append(r)
            return None
        if nloc == 1:
            pool.seq += 1
            return reps[int(pool.local[0])]
        rs = self.rs
        if pool.all_active:
            q, run, pend, kvu, kvcap = pool.ro
        else:
            loc = pool.local
            q, run, pend, kvu, kvcap = (readonly(a[loc]) for a in (pool.q, pool.run, pool.pend, pool.kvu, pool.kvcap))
        cached = pool.zeros
        if pool.cache is not None and rs.blocks is not None and rs.blocks[r] is not None:
            hits = pool.cache.all_leading_hits(rs.blocks[r])
            cached = readonly(hits if pool.all_active else hits[pool.local])
        view = RoutingView(t, pool.service_name, pool.kind, pool.seq, rs.prompt[r], rs.output[r], pool.ids_ro,
                           q, run, pend, kvu, kvcap, cached, self.block_tokens, pool.speed_local)
        pool.seq += 1
        d = self.routing.route(view)
        loc_i = int(d.replica) - int(pool.gids[0])
        if not (0 <= loc_i < len(reps) and reps[loc_i].active):
            raise PlacementError(f"routing policy {self.routing!r} chose replica {d.replica!r}, not a routable "
                                 f"replica of {pool.service_name!r}/{pool.kind} ({pool.ids_ro.tolist()})")
        return reps[loc_i]

    def unpark_handoffs(self, pool: ServingPool, t: float) -> None:
        """PD: hand the prefilled requests that found no decode replica of ``pool`` up to one now."""
        waiting = self.handoffs.pop(id(pool), None)
        for r, prep in waiting or ():
            pool.arrivals -= 1   # counted when it first tried
            self._handoff(prep, r, t)

    # ---- autoscaling ----------------------------------------------------------------------
    def _tick(self, pool: ServingPool, t: float) -> None:
        interval = pool.scaler.interval_s
        dt = interval if (interval and t > 0) else 0.0
        recent = self._recent[pool.service] if self._recent is not None else None
        d = pool.scaler.scale(scale_view(pool, self.services[pool.service], recent, t, dt))
        pool.arrivals_at_tick = pool.arrivals
        broker = self.broker
        for r, delay in apply_target(pool, d.target_replicas, d.warmup_s, t, broker):
            self._push(t + delay, K_ACTIVATE, r, r.warm_token)
        if broker is not None:
            broker.tick(pool, t)
            self._unpark(pool, t)
        if interval and self.nfinished < self.n_live:  # stop ticking once every request is done
            self._push(t + interval, K_TICK, pool)

    def _unpark(self, pool: ServingPool, t: float) -> None:
        """Route the requests that waited for a replica of ``pool``, in arrival order, once one is on."""
        if not pool.parked or not len(pool.local):
            return
        waiting, pool.parked = pool.parked, []
        rs = self.rs
        for r in waiting:
            pool.arrivals -= 1   # counted when it first arrived
            rep = self._route(pool, r, t)
            assert rep is not None
            rs.rep[r] = rep.rid
            rep.enqueue(r, t)

    # ---- main loop ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._wall0 = time.perf_counter()
        order = np.lexsort((np.arange(len(self.arrival)), self.arrival))
        order = order[self.reason[order] == 0]
        self.arr_t = self.arrival[order].tolist()
        self.arr_r = order.tolist()
        self.n_live = len(self.arr_r)
        self.ai = 0
        scaled = [p for p in self.pools if getattr(p.scaler, "interval_s", None)]
        self._recent = None
        if scaled:
            m = self.options.recent_requests
            self._recent = [(np.full((m, 2), np.nan), 0) for _ in self.services]
        for p in self.pools:
            self._tick(p, 0.0)
        if self.faults is not None:
            self.faults.start()

    def next_time(self) -> float:
        """Time of the next event (``inf`` when nothing is left)."""
        self._start()
        heap = self.heap
        while heap and heap[0][1] == K_REPLICA and heap[0][4] != heap[0][3].version:
            _heappop(heap)
        if heap and heap[0][1] >= K_FAIL and self.faults is not None and self.faults.idle():
            self.faults.purge()   # a drain run whose requests all ended: failures no longer matter
        ta = self.arr_t[self.ai] if self.ai < len(self.arr_t) else math.inf
        return min(ta, heap[0][0]) if heap else ta

    def _run_until(self, limit: float) -> None:
        """Process every event with time <= ``limit``."""
        self._start()
        heap = self.heap
        arr_t, arr_r = self.arr_t, self.arr_r
        n = len(arr_t)
        i = self.ai
        rs = self.rs
        entry = self.entry
        svc_of = self._svc_list if len(self.services) > 1 else None
        route = self._route
        events = self.events
        inf = math.inf
        ta = arr_t[i] if i < n else inf
        while True:
            if heap and heap[0][0] < ta:
                t = heap[0][0]
                if t > limit:
                    break
                t, kind, _, obj, ver = _heappop(heap)
                if kind == K_REPLICA:
                    if ver != obj.version:
                        continue
                    events += 1
                    obj.on_event(t)
                    if obj.xq:
                        self._try_transfers(obj, t)
                elif kind == K_NET:
                    if ver != obj.version:
                        continue
                    events += 1
                    for t_del, (r, prep, drep) in obj.complete(t):
                        prep.release(r, t)
                        self._push(t_del, K_DELIVER, (r, drep))
                    if obj.next_t < inf:
                        self._push(obj.next_t, K_NET, obj, obj.version)
                elif kind == K_DELIVER:
                    events += 1
                    r, drep = obj
                    drep.deliver(r, t)
                elif kind == K_ACTIVATE:
                    events += 1
                    if obj.warming and ver == obj.warm_token:
                        obj.warming = False
                        obj.active = True
                        obj.pool.refresh()
                        if self.broker is not None:
                            self.broker.activated(obj, t)
                            self._unpark(obj.pool, t)
                elif kind == K_TICK:
                    events += 1
                    self._tick(obj, t)
                else:
                    assert self.faults is not None
                    if not self.faults.on_event(kind, obj, ver, t):
                        continue
                    events += 1
                self.now = t
            else:
                if ta > limit or ta == inf:
                    break
                r = arr_r[i]
                i += 1
                events += 1
                pool = entry[svc_of[r]] if svc_of is not None else entry[0]
                rep = route(pool, r, ta)
                if rep is not None:
                    rs.rep[r] = rep.rid
                    rep.enqueue(r, ta)
                self.now = ta
                ta = arr_t[i] if i < n else inf
        self.ai = i
        self.events = events

    def run(self, until: float | None = None, tick: Callable[[float, int], None] | None = None) -> ServingRun:
        """Run to ``until`` (default: the horizon, or until every request is done) and collect.

        ``tick(fraction, events)``, when given, is called as simulated time advances: at
        :data:`PROGRESS_STEPS` equal stretches of a finite run, else at that many quantiles of
        the arrival times (the fraction is then the share of requests arrived). The run is the
        same either way: processing the events up to ``b`` and then up to ``limit`` is
        processing them up to ``limit``.
        """
        limit = self.horizon if until is None else min(float(until), self.horizon)
        if tick is not None:
            for b, frac in self._progress_points(limit):
                self._run_until(b)
                tick(frac, self.events)
        self._run_until(limit)
        if tick is not None:
            tick(1.0, self.events)
        return self.close(limit if math.isfinite(limit) else self.now)

    def _progress_points(self, limit: float) -> list[tuple[float, float]]:
        """``(time, fraction)`` stops before ``limit`` for :meth:`run`'s progress reports."""
        n = PROGRESS_STEPS
        if math.isfinite(limit):
            return [(limit * k / n, k / n) for k in range(1, n)]
        self._start()   # sorts the arrivals (once)
        m = len(self.arr_t)
        return [(float(self.arr_t[m * k // n]), k / n) for k in range(1, n) if m * k // n < m] if m else []

    def process(self, env: Any) -> Generator[Any, Any, ServingRun]:
        """SimPy process driving the engine inside a host simulation (one process in all)."""
        yield from self._hosted(env)
        end = self.horizon if math.isfinite(self.horizon) else max(self.now, env.now)
        if end > env.now and math.isfinite(self.horizon):
            yield env.timeout(end - env.now)
        return self.close(end)

    # ---- hosting in a cluster_sim Simulation (subsystem protocol) ----------------------------
    def connect(self, sim: Any) -> None:
        """Subsystem hook: run inside ``sim.env`` as one SimPy process (horizon: the sim's)."""
        if not math.isfinite(self.horizon) and getattr(sim, "horizon_s", None):
            self.horizon = float(sim.horizon_s)
        if self.broker is not None:
            if self.topology is None:
                raise PlacementError("serving engine: a card broker needs a topology (replicas on real cards)")
            self.broker.bind(self.replicas)
            for r in self.replicas:   # off until the first tick claims cards for them
                r.active = False
            for p in self.pools:
                p.refresh()
            self._start()   # the replicas on at t = 0 claim their cards before any training job starts
        elif hasattr(sim, "take_serving") and self.topology is not None and self.replicas:
            sim.take_serving(np.unique(np.concatenate([r.cards for r in self.replicas])))  # slices: once
        sim.env.process(self._hosted(sim.env, run_ahead=True))

    def _hosted(self, env: Any, run_ahead: bool = False) -> Generator[Any, Any, None]:
        """Drive the engine on ``env``'s clock. With ``run_ahead`` (hosted in a Simulation, where
        only ticks and activations can touch what the engines share: the card broker, the
        ledger, the training engine), every other event is processed without waiting for the
        host's clock: the process wakes only at those sync times (or once, at the end, without
        a broker), not at each of the millions of batch events."""
        sync = self._sync
        while True:
            t = self.next_time()
            if t > self.horizon or t == math.inf:
                return
            if run_ahead:
                s = sync[0] if sync else math.inf
                if t < s:   # internal events before the next sync time: no host clock needed
                    self._run_until(self.horizon if s > self.horizon else math.nextafter(s, -math.inf))
                    continue
            if t > env.now:
                yield env.timeout(t - env.now)
            self._run_until(t)
            while sync and sync[0] <= t:
                _heappop(sync)

    def finalize(self, t: float) -> None:
        """Subsystem hook: process what is due by ``t``, then collect into :attr:`result`."""
        self._run_until(min(t, self.horizon))
        self.result = self.close(t)

    def close(self, end_s: float) -> ServingRun:
        """Account partial iterations at ``end_s`` and build the result frames (idempotent)."""
        if self._closed is not None:
            return self._closed
        self._start()
        wall = time.perf_counter() - self._wall0
        self._closed = build_run(self, end_s, wall)
        return self._closed


__all__ += ["REASONS"]
