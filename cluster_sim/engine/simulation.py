"""One run: :class:`Simulation` owns the SimPy environment, RNG streams, cluster state and levels.

Lifecycle: build (``Simulation(layout, ...)`` then ``add_training(jobs, ...)`` or any other
subsystem with ``connect(sim)`` / ``finalize(t)``) -> :meth:`Simulation.run` -> :meth:`collect`
(a :class:`RunRecord` of raw numpy columns; ``cluster_sim.metrics`` turns it into DataFrames and
the summary). ``cluster_sim.experiment.build.build_simulation`` does the whole build from an
experiment config (the engine never sees the config).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from ..rng import Streams
from .cluster.failures import FailureModel
from .cluster.speed import SpeedModel
from .cluster.state import ClusterLayout, ClusterState
from .cluster.training import STATUS_NAMES, TrainingEngine
from .pool.ledger import SERVING, CardLedger

if TYPE_CHECKING:
    from .cluster.silos import TrainingSilos

__all__ = ["PROGRESS_EVENTS", "PROGRESS_STEPS", "Levels", "RunRecord", "Simulation", "Tick"]

Tick = Callable[[float, int], None]
"""``tick(fraction_of_the_run_done, events_so_far)``: a progress callback (:meth:`Simulation.run`)."""

PROGRESS_STEPS = 100
"""Stretches a finite run is cut into when it reports progress (one ``env.run`` call each)."""

PROGRESS_EVENTS = 4096
"""SimPy events (steps) between progress reports of an open-ended run (no horizon)."""

SCALAR_LEVELS = ("capacity_cards", "available_cards", "allocated_cards", "busy_cards", "queued_jobs",
                 "running_jobs", "blocked", "free_cards_when_blocked", "submitted_cards")


class Levels:
    """Time-weighted levels: integrals over the run and per timeline bin (``bin_s`` wide from 0).

    The engine provides ``sample()``: the current *raw* quantities (per type: free milli-cards,
    failed cards, busy milli-cards; then queued jobs, running jobs, blocked flag, free cards while
    blocked, cards asked for by all jobs submitted so far). :meth:`advance` integrates them up to ``t`` before anything changes. The named levels
    (:attr:`names`, in cards) are linear in the raw ones, so their integrals follow exactly.
    """

    def __init__(self, card_types: tuple[str, ...], capacity_by_type: np.ndarray, bin_s: float) -> None:
        self.card_types = card_types
        T = self._T = len(card_types)
        self.names = SCALAR_LEVELS + tuple(f"{k}.{t}" for k in ("allocated_cards", "busy_cards",
                                                                 "available_cards") for t in card_types)
        self._cap = np.asarray(capacity_by_type, dtype=np.float64)
        idle = [float(c) * 1000.0 for c in self._cap] + [0.0] * (2 * T) + [0.0] * 5
        self.sample = lambda: idle
        self._R = 3 * T + 5
        self._int = [0.0] * self._R
        self._acc = [0.0] * self._R
        self.bin_s = float(bin_s)
        self._k = 0  # index of the current bin; its end is (k + 1) * bin_s (no drift)
        self._bin_end = self.bin_s
        self._rows: list[list[float]] = []
        self.t = 0.0

    def advance(self, t: float) -> None:
        """Integrate the current raw levels from the last call up to ``t``."""
        t0 = self.t
        if t <= t0:
            return
        v = self.sample()
        dt = t - t0
        self._int = [a + x * dt for a, x in zip(self._int, v, strict=True)]
        if t < self._bin_end:
            self._acc = [a + x * dt for a, x in zip(self._acc, v, strict=True)]
        else:
            while t >= self._bin_end:
                w = self._bin_end - t0
                self._rows.append([a + x * w for a, x in zip(self._acc, v, strict=True)])
                self._acc = [0.0] * self._R
                t0 = self._bin_end
                self._k += 1
                self._bin_end = (self._k + 1) * self.bin_s
            w = t - t0
            self._acc = [x * w for x in v]
        self.t = t

    def _named(self, raw: np.ndarray, duration: np.ndarray) -> np.ndarray:
        """Named-level integrals ``(rows, names)`` from raw integrals ``(rows, R)`` over ``duration``."""
        T = self._T
        free, down, busy = raw[:, :T] / 1000.0, raw[:, T:2 * T], raw[:, 2 * T:3 * T] / 1000.0
        avail = self._cap[None, :] * duration[:, None] - down
        alloc = avail - free
        scal = raw[:, 3 * T:]
        cols = [self._cap.sum() * duration, avail.sum(1), alloc.sum(1), busy.sum(1), scal[:, 0], scal[:, 1],
                scal[:, 2], scal[:, 3], scal[:, 4]]
        return np.column_stack([*cols, alloc, busy, avail])

    @property
    def integral(self) -> np.ndarray:
        """Integral over ``[0, t]`` of each named level (card-seconds, job-seconds, seconds)."""
        return self._named(np.array([self._int]), np.array([self.t]))[0]

    def timeline(self, t_end: float) -> np.ndarray:
        """``(bins, 2 + levels)``: bin start, bin end, then the time-average of each named level."""
        rows = list(self._rows)
        start = self._k * self.bin_s
        if t_end - start > 1e-9 * self.bin_s:
            rows.append(list(self._acc))
        n = len(rows)
        if n == 0:
            return np.zeros((0, 2 + len(self.names)))
        starts = np.arange(n) * self.bin_s
        ends = np.minimum(starts + self.bin_s, t_end)
        width = np.maximum(ends - starts, 1e-300)
        named = self._named(np.array(rows), width) / width[:, None]
        return np.column_stack([starts, ends, named])


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What a run leaves behind, as numpy columns (``cluster_sim.metrics`` makes DataFrames).

    ``jobs`` maps column name -> array (one row per job, in run order); ``level_integral`` is
    the integral over ``[0, t_end_s]`` of each of ``level_names``; ``timeline`` has columns
    ``t_start_s, t_end_s, *level_names`` (bin averages); ``segments`` has one row per run segment
    and scale-up domain it spans (job row, start, end, domain, cards in it). ``pool`` is the card ledger's record
    (:meth:`~cluster_sim.engine.pool.ledger.CardLedger.record`: card-seconds per state and per
    (state, card type) over the whole cluster).
    """

    name: str
    seed: int
    t_end_s: float
    wall_s: float
    events: int
    card_types: tuple[str, ...]
    capacity_by_type: np.ndarray
    type_peak_flops: np.ndarray
    jobs: dict[str, np.ndarray]
    level_names: tuple[str, ...]
    level_integral: np.ndarray
    timeline: np.ndarray
    segments: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    pool: dict[str, Any] = field(default_factory=dict)


class Simulation:
    """One simulated cluster run.

    Parameters
    ----------
    layout : ClusterLayout
    seed : int
        Seed of the run's named RNG streams.
    horizon_s : float, optional
        Simulated time to stop at (None: when nothing is left to do).
    timeline_step_s : float, optional
        Timeline bin width (default: horizon / 500, else one hour).
    throughput : numpy.ndarray, optional
        ``(kinds, types)`` relative throughput matrix (default from the catalog, :mod:`.speed`).
    reference_type : str, optional
        Reference card type of jobs that allow several types.
    recent_window : int
        Recent request sizes kept for fragmentation-aware placement.
    name : str
    reserved_cards : numpy.ndarray, optional
        Cards the training engine never sees (a pool partition for serving,
        :meth:`ClusterState.reserve`): its capacity, levels and utilization are over the rest.
        The card ledger (:attr:`ledger`) still covers every card of the layout.
    """

    def __init__(self, layout: ClusterLayout, *, seed: int = 0, horizon_s: float | None = None,
                 timeline_step_s: float | None = None, throughput: np.ndarray | None = None,
                 reference_type: str | None = None, recent_window: int = 1000, name: str = "run",
                 reserved_cards: np.ndarray | None = None) -> None:
        self.name = name
        self.layout = layout
        self.seed = int(seed)
        self.horizon_s = horizon_s
        self.env = simpy.Environment()
        self.streams = Streams(self.seed)
        self.ids = itertools.count()
        self.speed = SpeedModel(layout, throughput, reference_type)
        self.ledger = CardLedger(layout.card_type, layout.card_types, clock=lambda: self.env.now)
        self.state = ClusterState(layout, throughput=self.speed.throughput, recent_window=recent_window,
                                  ledger=self.ledger)
        if reserved_cards is not None:
            self.state.reserve(reserved_cards, "pool partition")
        step = timeline_step_s or (horizon_s / 500.0 if horizon_s else 3600.0)
        self.levels = Levels(layout.card_types, self.state.type_capacity, step)
        self.subsystems: list[Any] = []
        self.training: TrainingEngine | TrainingSilos | None = None
        self.wall_s = 0.0
        self.meta: dict[str, Any] = {}

    def add(self, subsystem: Any) -> Any:
        """Connect a subsystem (anything with ``connect(sim)`` and ``finalize(t)``); returns it."""
        subsystem.connect(self)
        self.subsystems.append(subsystem)
        return subsystem

    def take_serving(self, cards: np.ndarray) -> None:
        """Mark ``cards`` serving in the ledger from now (a replica placed on them); they must be
        idle (a card already training or serving is a PlacementError)."""
        self.ledger.take(np.asarray(cards, dtype=np.int64), SERVING)

    def add_training(self, jobs: Any, *, admission: Any, ordering: Any, placement: Any, preemption: Any,
                     backfill: bool = False, failures: FailureModel | None = None, **kwargs: Any) -> TrainingEngine:
        """Add the training subsystem (see :class:`TrainingEngine` for the parameters)."""
        eng = TrainingEngine(jobs, admission=admission, ordering=ordering, placement=placement,
                             preemption=preemption, backfill=backfill, failures=failures, **kwargs)
        self.training = self.add(eng)
        return eng

    def run(self, until: float | None = None, tick: Tick | None = None) -> Simulation:
        """Advance simulated time to ``until`` (default: the horizon, else until idle).

        ``tick(fraction, events)``, when given, is called as simulated time advances
        (:data:`PROGRESS_STEPS` times to a finite end; without one, every
        :data:`PROGRESS_EVENTS` SimPy events, the fraction then being the simulated time over the last
        job submission, at most 0.99). The run is the same event for event with or without it:
        a finite run is cut into ``env.run(until=...)`` stretches (the stop events are urgent
        and sit between events, never reordering them); an open-ended one is stepped.
        """
        until = self.horizon_s if until is None else until
        t0 = time.perf_counter()
        if tick is None:
            self.env.run(until=until)
        else:
            self._run_ticking(until, tick)
        t_end = float(self.env.now if until is None else until)
        self.levels.advance(t_end)
        for s in self.subsystems:
            s.finalize(t_end)
        self.t_end_s = t_end
        self.wall_s += time.perf_counter() - t0
        return self

    def _run_ticking(self, until: float | None, tick: Tick) -> None:
        env = self.env
        if until is not None and math.isfinite(until):
            start = float(env.now)
            for k in range(1, PROGRESS_STEPS + 1):
                b = until if k == PROGRESS_STEPS else start + (until - start) * k / PROGRESS_STEPS
                if b > env.now:
                    env.run(until=b)
                tick(k / PROGRESS_STEPS, self.events())
            return
        est = self._end_estimate()
        step, count, nxt = env.step, 0, PROGRESS_EVENTS
        try:
            while True:
                step()
                count += 1
                if count >= nxt:
                    nxt += PROGRESS_EVENTS
                    tick(min(float(env.now) / est, 0.99) if est > 0 else 0.0, self.events())
        except simpy.core.EmptySchedule:   # what env.run(until=None) stops on: nothing left to do
            pass
        tick(1.0, self.events())

    def _end_estimate(self) -> float:
        """The last job submission time: the open-ended run's progress scale (0: none known)."""
        eng = self.training
        engines = [] if eng is None else (eng.engines if not isinstance(eng, TrainingEngine) else [eng])
        return max((float(max(e.submit)) for e in engines if e.n), default=0.0)

    def events(self) -> int:
        """Events processed so far by the hosted engines (training and serving)."""
        # a subsystem's ``events`` is its event count; the card broker's is its log (a list)
        return sum(n for s in self.subsystems if isinstance(n := getattr(s, "events", None), int))

    def collect(self) -> RunRecord:
        """The run's raw record (call after :meth:`run`)."""
        t_end = getattr(self, "t_end_s", float(self.env.now))
        lo = self.layout
        eng = self.training
        jobs: dict[str, np.ndarray] = {}
        segments = np.zeros((0, 5))
        events = 0
        if eng is not None and not isinstance(eng, TrainingEngine):  # tenant silos (.silos)
            jobs, segments, events, meta = eng.record_parts(_job_columns)
            self.meta.update(meta)
        elif eng is not None:
            jobs = _job_columns(eng)
            if eng.seg:
                segments = np.array(eng.seg, dtype=np.float64)
            events = eng.events
            self.meta.update({
                "policies": {"admission": repr(eng.admission), "ordering": repr(eng.ordering),
                             "placement": repr(eng.placement), "preemption": repr(eng.preemption),
                             "backfill": eng.backfill},
                "cycles": eng.scheduler.cycles, "tenants": list(eng.table.tenants)})
            if eng.slow_on:  # fail-slow episodes (engine/cluster/stragglers.py)
                self.meta["stragglers"] = eng.straggler_record(t_end)
        self.meta.update({"layout": lo.name, "assumed_card_types": list(lo.assumed_types),
                          "n_cards": lo.n_cards, "reference_type": lo.card_types[self.speed.reference],
                          "speed_notes": self.speed.notes(), **_type_costs(lo.card_types)})
        return RunRecord(
            name=self.name, seed=self.seed, t_end_s=t_end, wall_s=self.wall_s, events=events,
            card_types=lo.card_types, capacity_by_type=np.asarray(self.state.type_capacity),
            type_peak_flops=np.asarray(lo.type_peak_flops), jobs=jobs, level_names=self.levels.names,
            level_integral=self.levels.integral.copy(), timeline=self.levels.timeline(t_end),
            segments=segments, meta=dict(self.meta), pool=self.ledger.record(t_end))


def _type_costs(card_types: tuple[str, ...]) -> dict[str, Any]:
    """Per-type TDP, idle power and rental price from the catalog, and ``type_notes``: one line
    for each type the catalog lacks (its power and price count as 0, and the note says so)."""
    from ..catalog import accelerator
    from ..errors import CatalogError
    from ..perf.power import IDLE_FRACTION_OF_TDP

    tdp, idle, price, notes = [], [], [], []
    for t in card_types:
        try:
            a = accelerator(t)
        except CatalogError:
            tdp.append(0.0)
            idle.append(0.0)
            price.append(0.0)
            notes.append(f"card type {t!r} is not in the catalog: its speed is assumed "
                         f"(engine/cluster/layout.py ASSUMED_TYPES) and its power and price are unknown, "
                         f"so energy_kwh and cost_usd exclude its cards")
            continue
        tdp.append(a.tdp_w)
        idle.append(a.idle_w or IDLE_FRACTION_OF_TDP * a.tdp_w)   # the serving engine's rule too
        price.append(a.price_usd_per_hour)
        if not a.tdp_w > 0:
            notes.append(f"card type {a.name!r} has no power in the catalog: energy_kwh excludes its cards")
        elif not a.idle_w > 0:
            notes.append(f"card type {a.name!r} has no idle power in the catalog: its held idle cards are taken "
                         f"to draw {IDLE_FRACTION_OF_TDP:.0%} of its {a.tdp_w:g} W TDP")
        if not a.price_usd_per_hour > 0:
            notes.append(f"card type {a.name!r} has no price in the catalog: cost_usd excludes its cards")
        if not a.nic_bytes_per_s:
            notes.append(f"card type {a.name!r} has no NIC rate in the catalog: its scale-out traffic "
                         f"is modelled at 25 Gbit/s (engine/cluster/layout.py)")
    return {"type_tdp_w": tdp, "type_idle_w": idle, "type_price_usd_per_hour": price, "type_notes": notes}


def _job_columns(eng: TrainingEngine) -> dict[str, np.ndarray]:
    J = eng.table
    f = np.asarray
    cols: dict[str, np.ndarray] = {
        "job_id": J.job_id, "tenant": J.tenant, "kind": J.kind, "num_cards": J.num_cards,
        "card_milli": J.card_milli, "priority": J.priority, "submit_s": J.submit_s,
        "duration_s": J.duration_s, "model_idx": J.model_idx, "release_s": J.release_s,
        "deadline_s": J.deadline_s,
        "status": np.array([STATUS_NAMES[s] for s in eng.status], dtype=object),
        "first_start_s": f(eng.first_start, dtype=np.float64), "finish_s": f(eng.finish_t, dtype=np.float64),
        "restarts": f(eng.restarts, dtype=np.int64), "preemptions": f(eng.preempts, dtype=np.int64),
        "attained_s": f(eng.attained, dtype=np.float64), "wait_s": f(eng.wait, dtype=np.float64),
        "remaining_s": f(eng.remaining, dtype=np.float64), "useful_flops": f(eng.flops, dtype=np.float64),
        "evictions": f(eng.evictions, dtype=np.int64), "lost_card_s": f(eng.lost_card_s, dtype=np.float64),
        "stall_card_s": f(eng.stall_card_s, dtype=np.float64),
        "peak_flop_s": f(eng.peak_s, dtype=np.float64), "first_card_type": f(eng.first_type, dtype=np.int64),
        "n_nodes": eng.spans[:, 0].astype(np.int64), "n_domains": eng.spans[:, 1].astype(np.int64),
        "n_leaves": eng.spans[:, 2].astype(np.int64),
        "reject_reason": np.array([eng.reason.get(i, "") for i in range(eng.n)], dtype=object),
    }
    cols.update(eng.reliability_columns())
    cols.update(eng.elastic_columns())
    if J.name is not None:
        cols["name"] = J.name
    return cols
