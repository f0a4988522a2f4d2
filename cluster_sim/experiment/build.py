"""The one place an :class:`~cluster_sim.config.ExperimentConfig` becomes engine inputs.

The engines never see the config (the import contract forbids ``engine -> config``); this module
turns it into what they take:

* cluster engine: :func:`build_layout` (a loaded topology, or a node inventory read through the
  trace format registry), :func:`build_jobs` (explicit jobs with their perf-model speed hooks,
  generators, a trace read through the format registry), :func:`training_policies`,
  :func:`failure_model`, all put together by :func:`build_simulation`;
* serving engine: :func:`services_from_config` (services, pools with their perf models, request
  tables from traces or generators), :func:`options_from_config`, :func:`serving_policies`;
* the pool policy (``policy.pool``): :func:`pool_plan` (which cards are the inference partition,
  checked against the cluster and the deployments), used by :func:`build_simulation`.

A topology the caller already loaded (``simulate`` loads it once per run) is passed in, never
loaded again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import catalog
from ..config import resolve_path
from ..config.plans import job_plan
from ..engine.cluster.silos import TrainingSilos
from ..engine.cluster.state import ClusterLayout, layout_from_node_groups, layout_from_topology
from ..engine.serving.specs import PoolSpec, ReplicaGroup, ServiceSpec, ServingOptions
from ..engine.simulation import Simulation
from ..errors import ClusterSimError, ConfigError
from ..metrics.tariff import Tariff
from ..perf.base import TrainingStepModel
from ..perf.checkpoint import BYTES_PER_PARAM
from ..perf.training import estimate_step
from ..policies import registry
from ..policies.pool.partition import PoolPlan, PoolView
from ..policies.training.offpeak import OffPeak
from ..rng import Streams
from ..topology import load_topology
from ..workload import generators
from ..workload.jobs import JobTable, TrainingJob
from ..workload.lengths import synthetic_requests
from ..workload.models import model as model_spec
from ..workload.requests import RequestTable
from ..workload.traces import FORMATS
from .checkpoints import with_job_checkpoints
from .elastic import elastic_jobs, shrunk_plan
from .failures import failure_model
from .offline import OfflineJobs, offline_jobs
from .slicing import refuse_shared_slots, replica_perf
from .stragglers import straggler_model
from .tenants import tenant_silos

__all__ = ["CHECKPOINT_BYTES_PER_PARAM", "NODE_BUILDERS", "TRAINING_TRACE_KINDS", "build_jobs", "checkpoint_bytes", "build_layout", "build_simulation",
           "failure_model", "offpeak_releases", "inference_demand", "options_from_config", "pool_plan", "requests_for",
           "serving_policies", "services_from_config", "training_policies"]

NODE_BUILDERS = ("openb_nodes", "pai_machines", "node_groups")
_INVENTORY_FORMATS = {"openb_nodes": "alibaba_openb_nodes", "pai_machines": "alibaba_pai_machines"}
TRAINING_TRACE_KINDS = {"alibaba_openb": "alibaba_openb_pods", "alibaba_openb_pods": "alibaba_openb_pods",
                        "openb": "alibaba_openb_pods"}
"""``training.trace.kind`` -> trace format (``cluster_sim.workload.traces.FORMATS``)."""


# ---- cluster engine ----------------------------------------------------------------------------
def build_layout(topology: str | dict[str, Any], base_dir: str = ".", *, loaded: Any = None) -> ClusterLayout:
    """The cluster layout of ``cluster.topology``: a topology file / inline builder spec, or a node
    inventory ``{builder: openb_nodes | pai_machines, path: ..., nodes_per_leaf: 32,
    oversubscription: 1, scale: 1, host_resources: true}`` or ``{builder: node_groups, groups:
    [[type, cards_per_node, nodes(, cpu_milli, memory_mib)], ...]}``. ``scale`` multiplies every
    (type, cards per node) group's node count (rounded, at least 1): a scaled copy of a traced
    cluster keeps its mix of node sizes and types. With ``host_resources`` (default) an inventory's
    per-node CPU and memory become capacity dimensions (pods' ``cpu_milli`` / ``memory_mib`` must
    fit too); the scaled count of a group is shared over its host variants by largest remainder.
    ``loaded``: the topology of ``topology``, already loaded by the caller (not loaded again).
    """
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
            if "path" not in spec:
                raise ConfigError(f"{where}.path: required for builder {kind}")
            path = resolve_path(spec.pop("path"), base_dir)
            inv = FORMATS[_INVENTORY_FORMATS[kind]].reader(path)
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
    if loaded is not None:
        return layout_from_topology(loaded)
    src = topology if isinstance(topology, dict) else resolve_path(topology, base_dir)
    return layout_from_topology(load_topology(src, base_dir=base_dir))


def training_policies(tp: Any) -> dict[str, Any]:
    """Policy objects (and ``backfill``) from a ``policy.training`` config section.

    ``scheduler: NAME`` picks a preset (``registry.SCHEDULERS``); stages (and ``backfill``) set
    explicitly in the config override the preset's. A preset may set ``backfill`` to ``"easy"``
    or ``"greedy"`` (the config field itself is a bool: True means EASY).
    """
    stages = ("admission", "ordering", "placement", "preemption")
    refs: dict[str, Any] = {s: getattr(tp, s) for s in stages}
    if tp.scheduler is not None:
        if tp.scheduler not in registry.SCHEDULERS:
            raise ConfigError(f"policy.training.scheduler: unknown scheduler {tp.scheduler!r}; known: "
                              f"{', '.join(sorted(registry.SCHEDULERS))}")
        preset = registry.SCHEDULERS[tp.scheduler]
        for s in stages:
            if s not in tp.model_fields_set:
                refs[s] = preset[s]
    out: dict[str, Any] = {s: registry.make(s, refs[s], where=f"policy.training.{s}") for s in stages}
    out["backfill"] = tp.backfill if isinstance(tp.backfill, str) else ("easy" if tp.backfill else False)
    if tp.scheduler is not None and "backfill" not in tp.model_fields_set:
        out["backfill"] = registry.SCHEDULERS[tp.scheduler].get("backfill", False)
    return out


def inference_demand(cfg: Any) -> dict[str, list[tuple[str, int]]]:
    """Cards the inference deployments need, per (catalog) card type: ``{type: [(where, cards),
    ...]}``, one entry per pool (replicas / slices x tp x ep)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for i, svc in enumerate(cfg.inference.services if cfg.inference is not None else []):
        d = svc.deployment
        where = f"inference.services[{i}].deployment"
        for w, p in d.replica_pools(where):
            try:
                name = catalog.accelerator(p.card_type).name
            except ClusterSimError as exc:
                raise type(exc)(f"{w}.card_type: {exc}") from None
            out.setdefault(name, []).append((w, -(-p.replicas // p.slices) * p.tp * p.ep))
    return out


def pool_plan(cfg: Any, layout: ClusterLayout) -> PoolPlan:
    """The ``policy.pool`` decision on this cluster: which cards are the inference partition.

    Raises
    ------
    ConfigError
        ``policy.pool.params.<field>: ...`` for a card type the cluster lacks or more cards than
        it has of a type; ``policy.pool.params...: the inference partition has ...`` when the
        deployments need more cards of a type than the partition holds.
    """
    where = "policy.pool"
    pol = registry.make("pool", cfg.policy.pool, where=where)
    demand = inference_demand(cfg) if pol.name != "separate" else {}  # separate: nothing to fit
    cap = layout.capacity_by_type()
    for t, pools in sorted(demand.items()):
        if t not in cap:
            raise ConfigError(f"{pools[0][0]}.card_type: {t!r} is not in the cluster; it has: "
                              f"{', '.join(sorted(cap))}")
        if sum(n for _, n in pools) > cap[t]:
            raise ConfigError(f"inference.services: the deployments need {sum(n for _, n in pools)} {t} "
                              f"cards; the cluster has {cap[t]}")
    view = PoolView(layout.card_types, layout.card_type, layout.card_domain,
                    {t: sum(n for _, n in v) for t, v in demand.items()})
    try:
        plan: PoolPlan = pol.partition(view)
    except ValueError as exc:
        raise ConfigError(f"{where}.params.{exc}") from None
    if plan.dynamic:
        refuse_shared_slots(cfg, pol)
    if plan.shared and not plan.dynamic:
        field = ("inference_cards.{t}" if getattr(pol, "inference_cards", None) is not None else
                 "inference_fraction" if getattr(pol, "inference_fraction", None) is not None else None)
        for t, pools in sorted(demand.items()):
            need, have = sum(n for _, n in pools), plan.inference_by_type.get(t, 0)
            if need > have:
                at = f"{where}.params.{field.format(t=t)}" if field else where
                parts = ", ".join(f"{w}: {n}" for w, n in pools)
                raise ConfigError(f"{at}: the inference partition has {have} {t} cards; the deployments "
                                  f"need {need} ({parts})")
    return plan


def build_simulation(cfg: Any, *, topology: Any = None, layout: ClusterLayout | None = None,
                     plan: PoolPlan | None = None) -> Simulation:
    """Build a ready-to-run :class:`Simulation` from an :class:`~cluster_sim.config.ExperimentConfig`.

    ``topology`` (the loaded ``cluster.topology``) or ``layout`` (its cluster layout), when the
    caller has it, is used instead of loading the cluster again. Under a static sharing pool
    policy (``plan``, default :func:`pool_plan`) the inference partition's cards are reserved: the
    training engine never sees them; under a dynamic one nothing is reserved (the card broker
    lends and reclaims cards during the run).
    """
    if layout is None:
        layout = build_layout(cfg.cluster.topology, cfg.base_dir, loaded=topology)
    if plan is None:
        plan = pool_plan(cfg, layout)
    reserved = plan.inference_cards if plan.shared and not plan.dynamic else None
    sim = Simulation(layout, seed=cfg.seed, horizon_s=cfg.duration, name=cfg.name, reserved_cards=reserved)
    if cfg.training is not None:
        jobs, hooks, off = build_jobs(cfg, layout, sim.streams)
        quanta: dict[int, float] = {}
        if off is not None:  # their rows are named; the summary reads their schedules
            names = jobs.name.tolist()
            quanta = {int(jobs.job_id[names.index(n)]): q for n, q in off.quantum_s.items()}
            sim.meta["offline_jobs"] = off.meta
        pol = training_policies(cfg.policy.training)
        fm = with_job_checkpoints(failure_model(cfg.failures, layout), cfg, jobs, layout)
        if fm is not None and (fm.active or cfg.failures.checkpoint is not None):
            sim.meta["reliability"] = True   # the reliability.* keys (metrics/reliability.py)
        slow = straggler_model(cfg)
        elastic = elastic_jobs(cfg, jobs, sim.streams)
        if elastic and plan.tenant_cards:
            raise ConfigError("training: elastic jobs are not supported with tenant silos "
                              "(policy.pool.params.tenant_cards)")
        if plan.tenant_cards and slow is not None:
            raise ConfigError("failures.stragglers: not supported with tenant silos (policy.pool.params."
                              "tenant_cards): each silo's engine would draw the same episodes")
        if plan.tenant_cards:  # one training engine per tenant silo (engine/cluster/silos.py)
            if fm is not None and fm.explicit:  # each silo would have a storage pool of its own
                raise ConfigError("failures.checkpoint.storage_bandwidth: not supported with tenant silos "
                                  "(policy.pool tenant_cards): the silos would not share the storage")
            silos, notes = tenant_silos(plan, jobs)
            if cfg.failures is not None and cfg.failures.classes:
                raise ConfigError("failures.classes: not supported with per-tenant silos "
                                  "(policy.pool.params.tenant_cards); use card_mtbf / node_mtbf")
            sim.training = sim.add(TrainingSilos(silos, **pol, failures=fm,
                                                 job_speed=hooks, work_quantum_s=quanta))
            sim.meta["pool_notes"] = notes
        else:
            sim.add_training(jobs, **pol, failures=fm, job_speed=hooks,
                             work_quantum_s=quanta, stragglers=slow, elastic=elastic)
    return sim


CHECKPOINT_BYTES_PER_PARAM = BYTES_PER_PARAM
"""Bytes per parameter of a mixed-precision Adam checkpoint: BF16 weights (2), FP32 master
weights (4) and two FP32 moments (8); gradients are not saved."""


def checkpoint_bytes(cfg: Any, sim: Simulation, per_card_bytes: float) -> Any:
    """``f(job_row) -> bytes`` of each training job's checkpoint: an explicit model job's is its
    parameters x :data:`CHECKPOINT_BYTES_PER_PARAM`; an offline inference job's 0 (its finished
    batches' outputs are already written; the batch in flight is lost, see ``work_quantum_s``);
    any other job's ``per_card_bytes`` x cards."""
    eng = sim.training
    assert not isinstance(eng, TrainingSilos)  # tenant silos are static: no broker evicts their jobs
    by_row: dict[int, float] = {}
    if eng is not None and cfg.training is not None and (cfg.training.jobs or cfg.training.offline_jobs):
        params = {jc.name: model_spec(jc.model).total_params * CHECKPOINT_BYTES_PER_PARAM
                  for jc in cfg.training.jobs if jc.model}
        params.update({jc.name: 0.0 for jc in cfg.training.offline_jobs})
        names = eng.table.name
        if names is not None:
            for r, nm in enumerate(names.tolist()):
                if nm in params:
                    by_row[r] = params[nm]

    def size(i: int) -> float:
        b = by_row.get(i)
        if b is not None:
            return b
        assert eng is not None  # only the training engine's jobs are ever evicted
        return per_card_bytes * eng.num[i] * eng.milli[i] / 1000.0
    return size


class _ModelJobSpeed:
    """Speed hook of an explicit model job: perf-model step time at the reference vs actual cards
    (a :class:`~cluster_sim.perf.base.TrainingStepModel`). On fewer cards than its plan (a shrunk
    elastic job) the plan has fewer data-parallel replicas for the same global batch
    (:func:`.elastic.shrunk_plan`)."""

    def __init__(self, model: Any, plan: Any, topo: Any, jc: Any, ref_step_s: float) -> None:
        self.model, self.plan, self.topo, self.jc, self.ref_step_s = model, plan, topo, jc, ref_step_s
        self._cache: dict[tuple[bytes, float], tuple[float, float]] = {}

    def __call__(self, cards: np.ndarray, share: float) -> tuple[float, float]:
        key = (np.asarray(cards, np.int64).tobytes(), round(float(share), 9))
        out = self._cache.get(key)
        if out is None:
            plan, batch = self.plan, 1.0
            if len(cards) != plan.cards:
                plan, batch = shrunk_plan(plan, len(cards))
            est = estimate_step(self.model, plan, self.topo, np.asarray(cards, np.int64),
                                seq_len=self.jc.seq_len, dtype=self.jc.dtype, scaleout_share=share,
                                check_memory=False)
            out = (self.ref_step_s / est.step_time_s * batch, est.mfu)
            self._cache[key] = out
        return out


def _explicit_jobs(cfg: Any, layout: ClusterLayout) -> tuple[JobTable, dict[str, TrainingStepModel]]:
    specs: list[TrainingJob] = []
    hooks: dict[str, TrainingStepModel] = {}
    topo = layout.topology
    for k, jc in enumerate(cfg.training.jobs):
        where = f"training.jobs[{k}]"
        plan = job_plan(jc, where)[0] if jc.model else None
        duration = jc.duration
        if plan is not None and topo is not None:  # plan is set exactly when jc.model is
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
                checkpoint_interval_s=jc.checkpoint_interval, deferrable=jc.deferrable,
                deadline_s=jc.deadline))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return JobTable.from_jobs(specs), hooks


def _generated_jobs(cfg: Any, layout: ClusterLayout, streams: Streams) -> JobTable:
    g = cfg.training.generator
    params = dict(g.params)
    if g.deferrable_fraction > 0:
        params.update(deferrable_fraction=g.deferrable_fraction, deadline_s=g.deadline)
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
            return generators.industry_mix(
                g.n_jobs, jobs_per_hour=g.jobs_per_hour, horizon_s=cfg.duration if g.n_jobs is None else None,
                rng=streams["workload"], card_types=layout.card_types, arrival=g.arrival,
                arrival_params=ap, **params)
        if g.n_jobs is None or g.jobs_per_hour is None:
            raise ConfigError("training.generator: uniform needs n_jobs and jobs_per_hour")
        return generators.uniform_jobs(g.n_jobs, g.jobs_per_hour / 3600.0, rng=streams["workload"],
                                       card_types=layout.card_types, **params)
    except TypeError as exc:
        raise ConfigError(f"training.generator.params: {exc}") from None


def _trace_jobs(cfg: Any) -> JobTable:
    tr = cfg.training.trace
    fmt = TRAINING_TRACE_KINDS.get(tr.kind)
    if fmt is None:
        raise ConfigError(f"training.trace.kind: unknown trace kind {tr.kind!r}; known: alibaba_openb")
    t: JobTable = FORMATS[fmt].reader(resolve_path(tr.path, cfg.base_dir))
    if tr.max_jobs is not None:
        t = t.take(np.arange(min(tr.max_jobs, len(t))))
    if tr.time_scale != 1.0:
        t = t.replace(submit_s=t.submit_s * tr.time_scale)
    return t


def build_jobs(cfg: Any, layout: ClusterLayout, streams: Streams
               ) -> tuple[JobTable, dict[int, TrainingStepModel], OfflineJobs | None]:
    """The run's jobs (explicit + generator + trace + offline inference, ids renumbered in that
    order), speed hooks, and the offline jobs' build (None without ``training.offline_jobs``)."""
    tc = cfg.training
    off = None
    tables: list[JobTable] = []
    hooks_by_name: dict[str, TrainingStepModel] = {}
    if tc.jobs:
        t, hooks_by_name = _explicit_jobs(cfg, layout)
        tables.append(t)
    if tc.generator is not None:
        tables.append(_generated_jobs(cfg, layout, streams))
    if tc.trace is not None:
        tables.append(_trace_jobs(cfg))
    if tc.offline_jobs:
        off = offline_jobs(cfg, layout)
        tables.append(off.table)
        hooks_by_name.update(off.hooks)
    if not tables:
        return JobTable.empty(layout.card_types), {}, None
    table = tables[0] if len(tables) == 1 and not hooks_by_name else JobTable.concat(tables, renumber=True)
    hooks = {}
    if hooks_by_name:
        names = table.name.tolist()
        for name, fn in hooks_by_name.items():
            hooks[int(table.job_id[names.index(name)])] = fn
    return offpeak_releases(cfg, table), hooks, off


def offpeak_releases(cfg: Any, table: JobTable) -> JobTable:
    """``table`` with the ``policy.training.offpeak`` decision in ``release_s``: each deferrable
    job's :meth:`~cluster_sim.policies.training.offpeak.OffPeak.release_at` under ``energy.tariff``
    (expected duration = ``duration_s``, the run time at reference speed). Unchanged without the
    policy (the schema refuses the policy without a time-of-use tariff)."""
    op = cfg.policy.training.offpeak
    if op is None or not len(table) or not table.deferrable.any():
        return table
    pol = OffPeak(max_usd_per_kwh=op.max_usd_per_kwh)
    release = pol.release_times(table.submit_s, table.duration_s, table.deadline_s, table.deferrable,
                                Tariff.from_windows(cfg.energy.windows_s()))
    return table.replace(release_s=release)


# ---- serving engine ----------------------------------------------------------------------------
def options_from_config(cfg: Any, **overrides: Any) -> ServingOptions:
    """:class:`ServingOptions` from ``cfg.policy.serving.batching``, ``cfg.inference`` (``pue``,
    ``timeline_interval``) and ``cfg.duration``.

    Fields the schema does not have (yet) fall back to the defaults; ``overrides`` win.
    """
    b = cfg.policy.serving.batching
    names = {f for f in ServingOptions.__dataclass_fields__}  # noqa: C416
    kw: dict[str, Any] = {k: getattr(b, k) for k in names if hasattr(b, k)}
    inf = cfg.inference
    for src, dst in (("pue", "pue"), ("timeline_interval", "timeline_interval_s")):
        if inf is not None and getattr(inf, src, None) is not None:
            kw[dst] = getattr(inf, src)
    kw["horizon_s"] = cfg.duration
    kw.update(overrides)
    return ServingOptions(**kw)


def requests_for(svc: Any, index: int, cfg: Any, streams: Streams) -> RequestTable:
    """The request table of ``cfg.inference.services[index]`` (trace replay through the format
    registry, or synthetic)."""
    a = svc.arrivals
    where = f"inference.services[{index}].arrivals"
    horizon = cfg.duration
    if a.kind == "trace":
        table: RequestTable = FORMATS[a.format].reader(str(resolve_path(a.path, cfg.base_dir))).sorted()
        table = table.scaled(time_scale=a.time_scale, rate_scale=a.rate_scale)
        if a.sample is not None:
            kw = {"fraction": a.sample} if a.sample <= 1 else {"n": int(a.sample)}
            table = table.sample(rng=streams[f"sample.{svc.name}"], **kw)
    else:
        if horizon is None and a.max_requests is None:
            raise ConfigError(f"{where}: synthetic arrivals need the experiment duration or max_requests")
        spec: dict[str, Any] = {"kind": a.kind, "rate_per_s": a.rate}
        if a.kind == "gamma":
            spec["cv"] = a.cv
        if a.kind == "diurnal":
            spec["peak_to_trough"] = a.peak_to_trough
            spec["phase_s"] = a.trough_at
        lengths = a.lengths
        if a.prompt_tokens is not None or a.output_tokens is not None:
            if a.prompt_tokens is None or a.output_tokens is None:
                raise ConfigError(f"{where}: give both prompt_tokens and output_tokens for fixed lengths")
            lengths = f"fixed:{a.prompt_tokens}:{a.output_tokens}"
        table = synthetic_requests(arrivals=spec, lengths=lengths, n=a.max_requests, horizon_s=horizon,
                                   rng=streams[f"arrivals.{svc.name}"])
    if horizon is not None:
        table = table.head(horizon)
    if a.max_requests is not None and len(table) > a.max_requests:
        table = table[np.arange(a.max_requests)]
    return table


def _pool(svc: Any, kind: str, p: Any, where: str) -> PoolSpec:
    return PoolSpec(kind, p.replicas, replica_perf(svc, p, where), p.card_type, p.tp, p.ep, slices=p.slices)


def _groups(svc: Any, groups: list[Any], where: str) -> PoolSpec:
    """The colocated pool of a deployment's replica ``groups`` (several card types, one router)."""
    out, heads = [], model_spec(svc.model).heads
    for j, g in enumerate(groups):
        w = f"{where}.groups[{j}]"
        try:
            catalog.accelerator(g.card_type)
        except ClusterSimError as exc:
            raise ConfigError(f"{w}.card_type: {exc}") from None
        if heads % g.tp:   # tensor parallelism splits the attention heads (as `validate` checks)
            raise ConfigError(f"{w}.tp: {g.tp} does not divide the {heads} attention heads of {svc.model}")
        if g.slices != 1:
            raise ConfigError(f"{w}.slices: a replica group takes whole cards (slice a single-type deployment)")
        out.append(ReplicaGroup(g.card_type, g.replicas, replica_perf(svc, g, w), g.tp, g.ep))
    return PoolSpec.of_groups("colocated", out)


def services_from_config(cfg: Any, streams: Streams | None = None) -> list[ServiceSpec]:
    """One :class:`ServiceSpec` per ``cfg.inference.services`` entry.

    Raises
    ------
    ConfigError
        A model that does not fit its cards (with the missing memory), a bad trace path, ...
    """
    streams = streams or Streams(cfg.seed)
    out = []
    services = cfg.inference.services if cfg.inference is not None else []
    for i, s in enumerate(services):
        d = s.deployment
        where = f"inference.services[{i}].deployment"
        if d.mode == "colocated" and d.groups is not None:
            pools: tuple[PoolSpec, ...] = (_groups(s, d.groups, where),)
        elif d.mode == "colocated":
            pools = (_pool(s, "colocated", d, where),)
        else:
            pools = tuple(_pool(s, kind, p, f"{where}.{kind}") for kind, p in (("prefill", d.prefill),
                                                                               ("decode", d.decode)))
        out.append(ServiceSpec(
            name=s.name, requests=requests_for(s, i, cfg, streams), pools=pools,
            slo_ttft_s=s.slo.ttft, slo_tpot_s=s.slo.tpot, slo_e2e_s=s.slo.e2e,
            max_context=model_spec(s.model).max_context, model=s.model, overlong=s.overlong,
            meta={"where": f"inference.services[{i}] {s.name}"}))
    return out


def serving_policies(cfg: Any) -> dict[str, Any]:
    """The serving engine's ``routing`` and ``autoscaling`` policy objects from ``policy.serving``."""
    sp = cfg.policy.serving
    return {"routing": registry.make("routing", sp.routing, "policy.serving.routing"),
            "autoscaling": registry.make("autoscaling", sp.autoscaling, "policy.serving.autoscaling")}
