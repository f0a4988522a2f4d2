"""One run: :class:`Simulation` owns the SimPy environment, RNG streams, cluster state and levels.

Lifecycle: build (``Simulation(layout, ...)`` then ``add_training(jobs, ...)`` or any other
subsystem with ``connect(sim)`` / ``finalize(t)``) -> :meth:`Simulation.run` -> :meth:`collect`
(a :class:`RunRecord` of raw numpy columns; ``cluster_sim.metrics`` turns it into DataFrames and
the summary). :func:`build_simulation` does the whole build from an
:class:`~cluster_sim.config.ExperimentConfig`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import simpy

from ..config.plans import job_plan
from ..rng import Streams
from .cluster.failures import FailureModel
from .cluster.speed import SpeedModel
from .cluster.state import ClusterLayout, ClusterState
from .cluster.training import STATUS_NAMES, TrainingEngine

__all__ = ["Levels", "RunRecord", "Simulation"]

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
    (job row, start, end, first domain, cards).
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
    """

    def __init__(self, layout: ClusterLayout, *, seed: int = 0, horizon_s: float | None = None,
                 timeline_step_s: float | None = None, throughput: np.ndarray | None = None,
                 reference_type: str | None = None, recent_window: int = 1000, name: str = "run") -> None:
        self.name = name
        self.layout = layout
        self.seed = int(seed)
        self.horizon_s = horizon_s
        self.env = simpy.Environment()
        self.streams = Streams(self.seed)
        self.ids = itertools.count()
        self.speed = SpeedModel(layout, throughput, reference_type)
        self.state = ClusterState(layout, throughput=self.speed.throughput, recent_window=recent_window)
        step = timeline_step_s or (horizon_s / 500.0 if horizon_s else 3600.0)
        self.levels = Levels(layout.card_types, self.state.type_capacity, step)
        self.subsystems: list[Any] = []
        self.training: TrainingEngine | None = None
        self.wall_s = 0.0
        self.meta: dict[str, Any] = {}

    def add(self, subsystem: Any) -> Any:
        """Connect a subsystem (anything with ``connect(sim)`` and ``finalize(t)``); returns it."""
        subsystem.connect(self)
        self.subsystems.append(subsystem)
        return subsystem

    def add_training(self, jobs: Any, *, admission: Any, ordering: Any, placement: Any, preemption: Any,
                     backfill: bool = False, failures: FailureModel | None = None, **kwargs: Any) -> TrainingEngine:
        """Add the training subsystem (see :class:`TrainingEngine` for the parameters)."""
        eng = TrainingEngine(jobs, admission=admission, ordering=ordering, placement=placement,
                             preemption=preemption, backfill=backfill, failures=failures, **kwargs)
        self.training = self.add(eng)
        return eng

    def run(self, until: float | None = None) -> Simulation:
        """Advance simulated time to ``until`` (default: the horizon, else until idle)."""
        until = self.horizon_s if until is None else until
        t0 = time.perf_counter()
        self.env.run(until=until)
        t_end = float(self.env.now if until is None else until)
        self.levels.advance(t_end)
        for s in self.subsystems:
            s.finalize(t_end)
        self.t_end_s = t_end
        self.wall_s += time.perf_counter() - t0
        return self

    def collect(self) -> RunRecord:
        """The run's raw record (call after :meth:`run`)."""
        t_end = getattr(self, "t_end_s", float(self.env.now))
        lo = self.layout
        eng = self.training
        jobs: dict[str, np.ndarray] = {}
        segments = np.zeros((0, 5))
        events = 0
        if eng is not None:
            jobs = _job_columns(eng)
            if eng.seg:
                segments = np.array(eng.seg, dtype=np.float64)
            events = eng.events
            self.meta.update({
                "policies": {"admission": repr(eng.admission), "ordering": repr(eng.ordering),
                             "placement": repr(eng.placement), "preemption": repr(eng.preemption),
                             "backfill": eng.backfill},
                "cycles": eng.scheduler.cycles, "tenants": list(eng.table.tenants)})
        self.meta.update({"layout": lo.name, "assumed_card_types": list(lo.assumed_types),
                          "n_cards": lo.n_cards, "reference_type": lo.card_types[self.speed.reference],
                          **_type_costs(lo.card_types)})
        return RunRecord(
            name=self.name, seed=self.seed, t_end_s=t_end, wall_s=self.wall_s, events=events,
            card_types=lo.card_types, capacity_by_type=np.asarray(self.state.type_capacity),
            type_peak_flops=np.asarray(lo.type_peak_flops), jobs=jobs, level_names=self.levels.names,
            level_integral=self.levels.integral.copy(), timeline=self.levels.timeline(t_end),
            segments=segments, meta=dict(self.meta))


def _type_costs(card_types: tuple[str, ...]) -> dict[str, Any]:
    """Per-type TDP, idle power and rental price from the catalog, and ``type_notes``: one line
    for each type the catalog lacks (its power and price count as 0, and the note says so)."""
    from ..catalog import accelerator
    from ..errors import CatalogError

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
        idle.append(a.idle_w)
        price.append(a.price_usd_per_hour)
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
        "duration_s": J.duration_s, "model_idx": J.model_idx,
        "status": np.array([STATUS_NAMES[s] for s in eng.status], dtype=object),
        "first_start_s": f(eng.first_start, dtype=np.float64), "finish_s": f(eng.finish_t, dtype=np.float64),
        "restarts": f(eng.restarts, dtype=np.int64), "preemptions": f(eng.preempts, dtype=np.int64),
        "attained_s": f(eng.attained, dtype=np.float64), "wait_s": f(eng.wait, dtype=np.float64),
        "remaining_s": f(eng.remaining, dtype=np.float64), "useful_flops": f(eng.flops, dtype=np.float64),
        "peak_flop_s": f(eng.peak_s, dtype=np.float64), "first_card_type": f(eng.first_type, dtype=np.int64),
        "n_nodes": eng.spans[:, 0].astype(np.int64), "n_domains": eng.spans[:, 1].astype(np.int64),
        "n_leaves": eng.spans[:, 2].astype(np.int64),
        "reject_reason": np.array([eng.reason.get(i, "") for i in range(eng.n)], dtype=object),
    }
    if J.name is not None:
        cols["name"] = J.name
    return cols


# ---- building a run from an experiment config ---------------------------------------------------
NODE_BUILDERS = ("openb_nodes", "pai_machines", "node_groups")


def build_layout(topology: str | dict[str, Any], base_dir: str = ".") -> ClusterLayout:
    """The cluster layout of ``cluster.topology``: a topology file / inline builder spec, or a node
    inventory ``{builder: openb_nodes | pai_machines, path: ..., nodes_per_leaf: 32,
    oversubscription: 1, scale: 1, host_resources: true}`` or ``{builder: node_groups, groups:
    [[type, cards_per_node, nodes(, cpu_milli, memory_mib)], ...]}``. ``scale`` multiplies every
    (type, cards per node) group's node count (rounded, at least 1): a scaled copy of a traced
    cluster keeps its mix of node sizes and types. With ``host_resources`` (default) an inventory's
    per-node CPU and memory become capacity dimensions (pods' ``cpu_milli`` / ``memory_mib`` must
    fit too); the scaled count of a group is shared over its host variants by largest remainder.
    """
    from ..config import resolve_path
    from ..errors import ConfigError
    from .cluster.state import layout_from_node_groups, layout_from_topology

    if isinstance(topology, dict) and topology.get("builder") in NODE_BUILDERS:
        spec = dict(topology)
        kind = spec.pop("builder")
        where = "cluster.topology"
        opts = {k: spec.pop(k) for k in ("nodes_per_leaf", "oversubscription", "name") if k in spec}
        scale = float(spec.pop("scale", 1.0))
        if not scale > 0:
            raise ConfigError(f"{where}.scale: must be > 0, got {scale!r}")
        host = spec.pop("host_resources", True)
        if not isinstance(host, bool):
            raise ConfigError(f"{where}.host_resources: must be true or false, got {host!r}")
        if kind == "node_groups":
            groups = [tuple(g) for g in spec.pop("groups", [])]
            name = str(opts.pop("name", "node_groups"))
        else:
            from ..workload.traces import alibaba

            if "path" not in spec:
                raise ConfigError(f"{where}.path: required for builder {kind}")
            path = resolve_path(spec.pop("path"), base_dir)
            inv = alibaba.read_openb_nodes(path) if kind == "openb_nodes" else alibaba.read_pai_machines(path)
            if host:
                groups = inv.host_groups(scale)
                scale = 1.0
            else:
                groups = inv.to_cluster_spec()["node_groups"]
            name = str(opts.pop("name", kind))
        if spec:
            raise ConfigError(f"{where}.{sorted(spec)[0]}: unknown field for builder {kind}; known: "
                              "path, groups, nodes_per_leaf, oversubscription, scale, host_resources, name")
        if scale != 1.0:
            groups = [(g[0], g[1], max(1, round(g[2] * scale)), *g[3:]) for g in groups]
        return layout_from_node_groups(groups, name=name, **opts)
    from ..topology import load_topology

    src = topology if isinstance(topology, dict) else resolve_path(topology, base_dir)
    return layout_from_topology(load_topology(src, base_dir=base_dir))


def build_simulation(cfg: Any) -> Simulation:
    """Build a ready-to-run :class:`Simulation` from an :class:`~cluster_sim.config.ExperimentConfig`."""
    from .cluster.cycle import training_policies
    from .cluster.failures import failure_model

    layout = build_layout(cfg.cluster.topology, cfg.base_dir)
    sim = Simulation(layout, seed=cfg.seed, horizon_s=cfg.duration, name=cfg.name)
    if cfg.training is not None:
        jobs, hooks = build_jobs(cfg, layout, sim.streams)
        pol = training_policies(cfg.policy.training)
        sim.add_training(jobs, **pol, failures=failure_model(cfg.failures), job_speed=hooks)
    return sim


class _ModelJobSpeed:
    """Speed hook of an explicit model job: perf-model step time at the reference vs actual cards."""

    def __init__(self, model: Any, plan: Any, topo: Any, jc: Any, ref_step_s: float) -> None:
        self.model, self.plan, self.topo, self.jc, self.ref_step_s = model, plan, topo, jc, ref_step_s
        self._cache: dict[tuple[bytes, float], tuple[float, float]] = {}

    def __call__(self, cards: np.ndarray, share: float) -> tuple[float, float]:
        from ..perf.training import estimate_step

        key = (np.asarray(cards, np.int64).tobytes(), round(float(share), 9))
        out = self._cache.get(key)
        if out is None:
            est = estimate_step(self.model, self.plan, self.topo, np.asarray(cards, np.int64),
                                seq_len=self.jc.seq_len, dtype=self.jc.dtype, scaleout_share=share,
                                check_memory=False)
            out = (self.ref_step_s / est.step_time_s, est.mfu)
            self._cache[key] = out
        return out


def _explicit_jobs(cfg: Any, layout: ClusterLayout) -> tuple[Any, dict[str, Any]]:
    from ..errors import ClusterSimError, ConfigError
    from ..workload.jobs import JobTable, TrainingJob
    from ..workload.models import model as model_spec

    specs, hooks = [], {}
    topo = layout.topology
    for k, jc in enumerate(cfg.training.jobs):
        where = f"training.jobs[{k}]"
        plan = job_plan(jc, where)[0] if jc.model else None
        duration = jc.duration
        if plan is not None and topo is not None:  # plan is set exactly when jc.model is
            from ..perf.training import estimate_step

            ctype = jc.card_type or (jc.allowed_types[0] if jc.allowed_types else None)
            if ctype is None:
                counts = layout.capacity_by_type()
                ctype = max(sorted(counts), key=lambda t: counts[t])
            try:
                m = model_spec(jc.model)
                ref = estimate_step(m, plan, topo, seq_len=jc.seq_len, card_type=ctype, dtype=jc.dtype)
            except ClusterSimError as exc:
                raise ConfigError(f"{where} ({jc.name}): {exc}") from None
            if duration is None and jc.tokens is not None:
                duration = jc.tokens / ref.tokens_per_s
            hooks[jc.name] = _ModelJobSpeed(m, plan, topo, jc, ref.step_time_s)
        if duration is None:
            raise ConfigError(f"{where} ({jc.name}): give duration, or model + tokens on a topology "
                              "(a node-inventory cluster has no perf model)")
        try:
            specs.append(TrainingJob(
                name=jc.name, model=jc.model, cards=jc.cards, card_type=jc.card_type,
                allowed_types=tuple(jc.allowed_types or ()), parallel=plan, seq_len=jc.seq_len,
                global_batch_tokens=jc.global_batch_tokens, tokens=jc.tokens, duration_s=duration,
                submit_s=jc.submit, tenant=jc.tenant, priority=jc.priority, preemptible=jc.preemptible,
                checkpoint_interval_s=jc.checkpoint_interval))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return JobTable.from_jobs(specs), hooks


def build_jobs(cfg: Any, layout: ClusterLayout, streams: Streams) -> tuple[Any, dict[int, Any]]:
    """The run's jobs (explicit + generator + trace, ids renumbered in that order) and speed hooks."""
    from ..config import resolve_path
    from ..errors import ConfigError
    from ..workload import generators
    from ..workload.jobs import JobTable

    tc = cfg.training
    tables: list[Any] = []
    hooks_by_name: dict[str, Any] = {}
    if tc.jobs:
        t, hooks_by_name = _explicit_jobs(cfg, layout)
        tables.append(t)
    g = tc.generator
    if g is not None:
        params = dict(g.params)
        try:
            if g.kind == "industry_mix":
                if g.n_jobs is None and cfg.duration is None:
                    raise ConfigError("training.generator: give n_jobs, or set the experiment duration")
                ap = dict(params.pop("arrival_params", {}))
                if g.arrival == "gamma":
                    ap.setdefault("cv", g.cv)
                if params.pop("philly_durations", False):
                    from ..workload.traces.philly import philly_sampler

                    params["finetune_durations"] = philly_sampler()
                if isinstance(params.get("mix"), str):
                    params["mix"] = resolve_path(params["mix"], cfg.base_dir)
                keep = params.pop("classes", None)
                if keep is not None:
                    mix = generators.load_mix(params.get("mix"))
                    unknown = sorted(set(keep) - {c.name for c in mix})
                    if unknown:
                        raise ConfigError(f"training.generator.params.classes: unknown class {unknown[0]!r}; "
                                          f"known: {', '.join(c.name for c in mix)}")
                    params["mix"] = tuple(c for c in mix if c.name in keep)
                tables.append(generators.industry_mix(
                    g.n_jobs, jobs_per_hour=g.jobs_per_hour, horizon_s=cfg.duration if g.n_jobs is None else None,
                    rng=streams["workload"], card_types=layout.card_types, arrival=g.arrival,
                    arrival_params=ap, **params))
            else:
                if g.n_jobs is None or g.jobs_per_hour is None:
                    raise ConfigError("training.generator: uniform needs n_jobs and jobs_per_hour")
                tables.append(generators.uniform_jobs(g.n_jobs, g.jobs_per_hour / 3600.0, rng=streams["workload"],
                                                      card_types=layout.card_types, **params))
        except TypeError as exc:
            raise ConfigError(f"training.generator.params: {exc}") from None
    tr = tc.trace
    if tr is not None:
        from ..workload.traces import alibaba

        if tr.kind not in ("alibaba_openb", "alibaba_openb_pods", "openb"):
            raise ConfigError(f"training.trace.kind: unknown trace kind {tr.kind!r}; known: alibaba_openb")
        t = alibaba.read_openb_pods(resolve_path(tr.path, cfg.base_dir))
        if tr.max_jobs is not None:
            t = t.take(np.arange(min(tr.max_jobs, len(t))))
        if tr.time_scale != 1.0:
            t = t.replace(submit_s=t.submit_s * tr.time_scale)
        tables.append(t)
    if not tables:
        return JobTable.empty(layout.card_types), {}
    table = tables[0] if len(tables) == 1 and not hooks_by_name else JobTable.concat(tables, renumber=True)
    hooks = {}
    if hooks_by_name:
        names = table.name.tolist()
        for name, fn in hooks_by_name.items():
            hooks[int(table.job_id[names.index(name)])] = fn
    return table, hooks
