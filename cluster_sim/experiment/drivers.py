"""The run drivers: build an engine run (:mod:`.build`), run it, summarise it (``cluster_sim.metrics``).

:func:`run_training` (the cluster engine on training jobs), :func:`run_serving` (the serving
engine on ``inference.services``), :func:`run_pooled` (both in ONE simulation on one card
ledger, under a sharing pool policy such as ``static_partition``) and :func:`compare` (one
training summary row per value of a config field). They sit in the experiment layer because they need the config (to build) and the
metrics (to summarise), and ``engine`` sees neither. ``cluster_sim.experiment.simulate`` calls
the first two.

>>> from cluster_sim.experiment.drivers import run_training
>>> from cluster_sim.workload.generators import uniform_jobs
>>> jobs = uniform_jobs(200, rate_per_s=0.5, mean_duration_s=10.0, rng=1)
>>> res = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs, seed=1)
>>> res.summary["training.jobs.finished"], res.summary["utilization.allocated"] < 1
(200, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import ExperimentConfig, load_config, resolve_path
from ..engine.cluster.failures import FailureModel
from ..engine.cluster.state import ClusterLayout, layout_from_node_groups, layout_from_topology
from ..engine.pool.broker import CardBroker
from ..engine.pool.ledger import STATES
from ..engine.serving.engine import ServingEngine
from ..engine.serving.specs import ServingOptions
from ..engine.simulation import RunRecord, Simulation, Tick
from ..errors import ConfigError
from ..metrics import DEFAULT_PUE, TrainingResult, result_from_record
from ..metrics.costs import card_it_joules, facility_kwh, held_cost_usd
from ..metrics.pool import demand_served, hourly, hourly_keys, priced_pool_energy_usd
from ..metrics.serving import ServingResult, summarize
from ..metrics.tariff import Tariff
from ..policies import registry
from ..policies.pool.partition import PoolPlan
from ..rng import Streams
from ..topology import load_topology
from .build import (
    build_layout,
    build_simulation,
    checkpoint_bytes,
    options_from_config,
    pool_plan,
    services_from_config,
    serving_policies,
)
from .serving_faults import replica_faults
from .tenants import tenant_keys

__all__ = ["PooledRun", "check_min_replicas", "compare", "pool_summary", "run_pooled", "run_serving", "run_training"]


def _layout(cluster: Any, base_dir: str) -> ClusterLayout:
    if isinstance(cluster, ClusterLayout):
        return cluster
    if hasattr(cluster, "card_type_idx"):
        return layout_from_topology(cluster)
    if isinstance(cluster, (list, tuple)):
        return layout_from_node_groups([tuple(g) for g in cluster])
    return build_layout(cluster, base_dir)


def _policy(family: str, ref: Any) -> Any:
    if isinstance(ref, str) or hasattr(ref, "params"):
        return registry.make(family, ref)
    return ref


def run_training(cfg: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None, *,
                 overrides: Mapping[str, Any] | None = None, until: float | None = None,
                 simulation: Simulation | None = None, cluster: Any = None, jobs: Any = None,
                 admission: Any = "accept_all", ordering: Any = "fifo", placement: Any = "packed",
                 preemption: Any = "none", backfill: bool = False, failures: FailureModel | None = None,
                 seed: int = 0, horizon_s: float | None = None, base_dir: str = ".",
                 pue: float | None = None, layout: ClusterLayout | None = None, tick: Tick | None = None,
                 **kwargs: Any) -> TrainingResult:
    """Run the cluster engine on training jobs and collect frames and the summary.

    Give either an experiment (``cfg``: path, mapping or ExperimentConfig, plus ``overrides``;
    ``layout``: the cluster layout of its ``cluster.topology`` when the caller already has it),
    a built :class:`~cluster_sim.engine.simulation.Simulation`, or the pieces: ``cluster`` (a
    ClusterLayout, a Topology, a topology path / builder dict, or node groups
    ``[(card_type, cards_per_node, nodes), ...]``), ``jobs`` (a JobTable), the four policies (registry
    names, PolicyRefs or objects), ``backfill``, ``failures``, ``seed`` and ``horizon_s``. Extra
    keyword arguments go to :class:`Simulation` (``timeline_step_s``, ``throughput``...) or, for
    ``backfill_depth``, ``preempt_overhead_s``, ``max_segments``, to the training engine.
    ``pue`` (facility / IT power) scales the energy; default: the experiment's ``inference.pue``,
    else :data:`~cluster_sim.metrics.costs.DEFAULT_PUE` (1.2). ``tick(fraction, events)`` gets the
    run's progress in simulated time (:meth:`~cluster_sim.engine.simulation.Simulation.run`).
    """
    if simulation is not None:
        sim = simulation
    elif cfg is not None:
        if not isinstance(cfg, ExperimentConfig) or overrides:
            # only the fields the user set: defaults stay defaults, so scheduler presets still apply
            src = cfg.model_dump(exclude_unset=True) if isinstance(cfg, ExperimentConfig) else cfg
            cfg = load_config(src, overrides)
            layout = None  # the config may name another cluster now
        sim = build_simulation(cfg, layout=layout)
        if pue is None and cfg.inference is not None:
            pue = cfg.inference.pue
    else:
        if cluster is None or jobs is None:
            raise TypeError("run_training: give cfg, simulation, or cluster and jobs")
        eng_keys = ("backfill_depth", "preempt_overhead_s", "max_segments", "job_speed", "stragglers")
        eng_kw = {k: kwargs.pop(k) for k in eng_keys if k in kwargs}
        sim = Simulation(_layout(cluster, base_dir), seed=seed, horizon_s=horizon_s, **kwargs)
        sim.add_training(jobs, admission=_policy("admission", admission), ordering=_policy("ordering", ordering),
                         placement=_policy("placement", placement), preemption=_policy("preemption", preemption),
                         backfill=backfill, failures=failures, **eng_kw)
    sim.run(until, tick=tick)
    return result_from_record(sim.collect(), DEFAULT_PUE if pue is None else pue)


def compare(cfg: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str], factor: str,
            values: Sequence[Any], *, seeds: Sequence[int] | None = None,
            overrides: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run ``cfg`` once per value of the dotted ``factor`` (and per seed); one summary row each.

    >>> compare("workloads/placement_oversubscribed.yaml", "policy.training.placement",
    ...         ["spread", "topology_aware"])   # doctest: +SKIP
    """
    base = cfg if isinstance(cfg, ExperimentConfig) else load_config(cfg, overrides)
    rows = []
    for v in values:
        for sd in (seeds if seeds is not None else [base.seed]):
            res = run_training(base, overrides={factor: v, "seed": sd})
            rows.append({factor: v if isinstance(v, str) else repr(v), "seed": sd, **res.summary})
    return pd.DataFrame(rows)


def _topology(cfg: Any) -> Any:
    spec = cfg.cluster.topology
    if isinstance(spec, str):
        return load_topology(resolve_path(spec, cfg.base_dir))
    return load_topology(dict(spec), base_dir=cfg.base_dir)


def run_serving(cfg: Any, topology: Any = None, *, tick: Tick | None = None, **options: Any) -> ServingResult:
    """Simulate ``cfg.inference`` under ``cfg.policy.serving`` and summarise.

    Parameters
    ----------
    cfg : ExperimentConfig
        The experiment (services, arrivals, batching, routing, autoscaling, duration, seed).
    topology : Topology, optional
        Cards and links to place replicas on; default: ``cfg.cluster.topology``. ``False`` runs
        on virtual cards (non-blocking NIC fabric), ignoring the config's topology.
    **options
        :class:`~cluster_sim.engine.serving.specs.ServingOptions` fields overriding the config
        (e.g. ``timeline_interval_s``, ``pue``, ``prefix_cache_blocks``).
    tick : callable(fraction, events), optional
        The run's progress in simulated time (:meth:`~cluster_sim.engine.serving.engine.ServingEngine.run`).

    Raises
    ------
    ConfigError
        A model that does not fit its cards, unknown policy names, bad arrivals.
    PlacementError
        The topology lacks the cards a pool needs.
    """
    streams = Streams(cfg.seed)
    services = services_from_config(cfg, streams)
    opts: ServingOptions = options_from_config(cfg, **options)
    topo = None if topology is False else (topology if topology is not None else _topology(cfg))
    engine = ServingEngine(services, **serving_policies(cfg), options=opts, topology=topo,
                           faults=replica_faults(cfg, streams))
    run = engine.run(tick=tick)
    return ServingResult(run.requests, run.timeline, run.replicas, run.services, summarize(run), run)


def pool_summary(pool: Mapping[str, Any], record: RunRecord | None = None,
                 serving: ServingResult | None = None, pue: float = DEFAULT_PUE) -> dict[str, Any]:
    """The ``pool.*`` keys of a run on one card ledger (``pool``: a run record's ``pool``).

    * ``pool.card_hours.<state>``, ``pool.utilization.<state>``: card-seconds in each ledger
      state / (cards x run time), over the whole cluster;
    * ``pool.utilization.allocated``: held by either engine (training, serving or moving);
      ``pool.utilization.busy``: doing work (training jobs' busy cards from their progress
      rates, serving replicas' cards while a batch runs), with ``record`` and ``serving``; on a
      cluster of several card types also ``pool.utilization.{allocated,busy}.<type>`` over each
      type's cards;
    * with a card broker (a dynamic pool policy): ``pool.claims``, ``pool.reclaimed_slots``,
      ``pool.evictions``, ``pool.model_loads``, ``pool.lends``, ``pool.refused_scale_ups``,
      ``pool.checkpoint_card_hours`` (training cards writing checkpoints for a reclaim) and
      ``pool.lost_work_card_hours`` (work since the last checkpoint, redone later);
    * ``pool.cost_usd``: card-hours held by either engine x list price, per card type (a silo's
      cards cost while idle, lent cards cost once); ``pool.energy_kwh``: held cards at busy
      power while busy, at idle power otherwise, times ``pue`` (with ``record``);
    * ``pool.utilization.demand_served``, ``training.demand_served``, ``inference.demand_served``
      (with ``record``; :func:`~cluster_sim.metrics.pool.demand_served`): busy minus the work
      evictions threw away, and the share of each demand that was met;
    * ``training.goodput`` (with ``record``): useful training card-seconds / card-seconds
      training held (ledger ``training`` plus its checkpoint writes); not useful: restart
      stalls, work lost to evictions, checkpoint writes.
    """
    cs, n, t = pool["card_seconds"], int(pool["n_cards"]), float(pool["t_end_s"])
    cap = n * t
    out: dict[str, Any] = {"pool.cards": n}
    for s in STATES:
        out[f"pool.card_hours.{s}"] = cs[s] / 3600.0
    for s in STATES:
        out[f"pool.utilization.{s}"] = cs[s] / cap if cap > 0 else None
    held = cs["training"] + cs["serving"] + cs["moving"]
    out["pool.utilization.allocated"] = held / cap if cap > 0 else None
    broker = pool.get("broker")
    if broker is not None:
        for k in ("claims", "reclaimed_slots", "evictions", "model_loads", "lends", "refused_scale_ups"):
            out[f"pool.{k}"] = int(broker[k])
        out["pool.checkpoint_card_hours"] = broker["checkpoint_card_s"] / 3600.0
        out["pool.lost_work_card_hours"] = broker["lost_work_card_s"] / 3600.0
    if record is not None:
        types = list(pool["card_types"])
        names = list(record.level_names)
        busy_k = {ty: float(record.level_integral[names.index(f"busy_cards.{ty}")]) if f"busy_cards.{ty}" in names
                  else 0.0 for ty in types}
        if serving is not None and len(serving.replicas):
            r = serving.replicas
            sb = (r["busy_prefill_s"] + r["busy_decode_s"] + r["busy_mixed_s"]) * r["cards"]
            for ty, v in zip(r["card_type"].tolist(), sb.tolist(), strict=True):
                if ty in busy_k:
                    busy_k[ty] += float(v)
        busy = sum(busy_k.values())
        out["pool.utilization.busy"] = busy / cap if cap > 0 else None
        out.update(demand_served(record.jobs or None, t, busy, cap,
                                 serving.requests if serving is not None else None))
        by_type = pool["card_seconds_by_type"]
        held_k = [by_type["training"][ty] + by_type["serving"][ty] + by_type["moving"][ty] for ty in types]
        if len(types) > 1:   # per card type, over that type's cards
            for ty, h, n_t in zip(types, held_k, pool["capacity_by_type"], strict=True):
                cap_t = float(n_t) * t
                out[f"pool.utilization.allocated.{ty}"] = h / cap_t if cap_t > 0 else None
                out[f"pool.utilization.busy.{ty}"] = busy_k[ty] / cap_t if cap_t > 0 else None
        meta = record.meta
        if "type_price_usd_per_hour" in meta:
            out["pool.cost_usd"] = held_cost_usd(held_k, meta["type_price_usd_per_hour"])
            it_j = card_it_joules([min(busy_k[ty], h) for ty, h in zip(types, held_k, strict=True)], held_k,
                                  meta["type_tdp_w"], meta["type_idle_w"])
            out["pool.energy_kwh"] = facility_kwh(it_j, pue)
        jobs = record.jobs
        if "stall_card_s" in jobs and len(jobs["stall_card_s"]):
            ckpt = float(broker["checkpoint_card_s"]) if broker is not None else 0.0
            spent = cs["training"] + ckpt
            waste = float(jobs["stall_card_s"].sum()) + float(jobs["lost_card_s"].sum()) + ckpt
            out["training.goodput"] = (spent - waste) / spent if spent > 0 else None
            out["training.lost_card_hours"] = waste / 3600.0
    return out


def check_min_replicas(cfg: ExperimentConfig, policy: Any) -> None:
    """A dynamic pool policy's ``min_replicas`` must fit every pool of every service.

    Raises
    ------
    ConfigError
        ``policy.pool.params.min_replicas: ...`` naming the deployment that has fewer replicas.
    """
    need = int(getattr(policy, "min_replicas", 1))
    for i, svc in enumerate(cfg.inference.services if cfg.inference is not None else []):
        d = svc.deployment
        pools: list[tuple[str, int | None]]
        if d.mode == "colocated" and d.groups is not None:   # one router over every group's replicas
            pools = [("", sum(g.replicas for g in d.groups))]
        elif d.mode == "colocated":
            pools = [("", d.replicas)]
        else:
            pools = [(f".{k}", p.replicas) for k, p in (("prefill", d.prefill), ("decode", d.decode)) if p is not None]
        for suffix, n in pools:
            if n is not None and need > n:
                raise ConfigError(f"policy.pool.params.min_replicas: {need} replicas must always serve, but "
                                  f"inference.services[{i}].deployment{suffix} has only {n}")


@dataclass(frozen=True, eq=False)
class PooledRun:
    """What :func:`run_pooled` returns: each engine's result (None when it had no work), the
    shared simulation's record (``record.pool`` is the card ledger), the pool summary keys and
    the inference partition's size per card type; ``tables``: ``pool_timeline`` (mean cards per
    ledger state per 5-minute bin of a day's run), ``pool_hourly`` (the share of cards per state
    per hour of the day, :func:`~cluster_sim.metrics.pool.hourly`) and, under a dynamic policy, ``pool_events``
    (``time_s``, ``kind`` reclaim / load / lend, ``cards``)."""

    training: TrainingResult | None
    serving: ServingResult | None
    record: RunRecord
    summary: dict[str, Any]
    inference_by_type: dict[str, int]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def run_pooled(cfg: ExperimentConfig, *, cluster: Any = None, training: bool = True,
               serving: bool = True, plan: PoolPlan | None = None, tick: Tick | None = None) -> PooledRun:
    """Run training and serving in ONE :class:`Simulation` on one card ledger (a sharing pool
    policy, ``cfg.policy.pool``): replicas on the inference partition's cards (marked ``serving``),
    training jobs on the rest (``cluster``: the experiment's loaded
    :class:`~cluster_sim.experiment.cluster.Cluster`, else loaded here; ``plan``: its
    :func:`~cluster_sim.experiment.build.pool_plan` when the caller has it; ``tick``: progress
    in simulated time, :meth:`~cluster_sim.engine.simulation.Simulation.run`).

    Raises
    ------
    ConfigError
        The pool policy does not share cards (``separate``), or its partition does not fit the
        cluster or the deployments (:func:`~cluster_sim.experiment.build.pool_plan`).
    """
    if cluster is None:
        from .cluster import Cluster

        cluster = Cluster.load(cfg)
    layout = cluster.layout
    if plan is None:
        plan = pool_plan(cfg, layout)
    if not plan.shared:
        raise ConfigError(f"policy.pool: {cfg.policy.pool.name!r} does not share cards; use run_training "
                          "and run_serving")
    if training and cfg.training is not None:
        sim = build_simulation(cfg, layout=layout, plan=plan)
    else:
        sim = Simulation(layout, seed=cfg.seed, horizon_s=cfg.duration, name=cfg.name,
                         reserved_cards=None if plan.dynamic else plan.inference_cards)
    horizon = cfg.duration
    sim.ledger.enable_timeline(horizon / 288.0 if horizon else 300.0)   # 5-minute bins over a day
    broker = None
    if plan.dynamic:
        pol = registry.make("pool", cfg.policy.pool, where="policy.pool")
        check_min_replicas(cfg, pol)
        broker = sim.add(CardBroker(pol, checkpoint_bytes(cfg, sim, pol.checkpoint_gbyte_per_card * 1e9)))
    engine = None
    if serving and cfg.inference is not None and cfg.inference.services:
        topo = cluster.require_topology("inference.services")
        streams = Streams(cfg.seed)
        services = services_from_config(cfg, streams)
        engine = sim.add(ServingEngine(services, **serving_policies(cfg), options=options_from_config(cfg),
                                       topology=topo, cards=plan.inference_cards, broker=broker,
                                       faults=replica_faults(cfg, streams)))
    sim.run(tick=tick)
    if broker is not None and getattr(broker.policy, "tenant_cards", None):
        sim.meta["pool_notes"] = [f"policy.pool.params.tenant_cards: {cfg.policy.pool.name} is one pool "
                                  f"for every tenant; the silo sizes are not used"]
    rec = sim.collect()
    if broker is not None:
        rec.pool["broker"] = broker.record()
    tl = sim.ledger.timeline(rec.t_end_s)
    tables = {"pool_timeline": pd.DataFrame(tl, columns=["time_s", "time_end_s", *STATES])}
    tables["pool_hourly"] = hourly(tables["pool_timeline"], int(rec.pool["n_cards"]))
    if broker is not None:
        tables["pool_events"] = pd.DataFrame(broker.events, columns=["time_s", "kind", "cards"])
    pue = cfg.inference.pue if cfg.inference is not None else None
    tres = result_from_record(rec, DEFAULT_PUE if pue is None else pue) if sim.training is not None else None
    if tres is not None:  # the installed cluster is every card, the inference partition's too
        price = dict(zip(rec.card_types, rec.meta.get("type_price_usd_per_hour", ()), strict=False))
        extra = sum(n * float(price.get(t, 0.0)) for t, n in plan.inference_by_type.items()) * rec.t_end_s / 3600.0
        if tres.summary.get("cost.installed_usd") is not None:
            tres.summary["cost.installed_usd"] += extra
    sres = None
    if engine is not None:
        run = engine.result
        assert run is not None  # finalize() sets it
        sres = ServingResult(run.requests, run.timeline, run.replicas, run.services, summarize(run), run)
    summary = pool_summary(rec.pool, rec, sres, DEFAULT_PUE if pue is None else pue)
    summary.update(hourly_keys(tables["pool_hourly"]))
    if cfg.energy is not None and "type_tdp_w" in rec.meta:   # the ledger's energy priced where drawn
        summary["pool.energy_usd"] = priced_pool_energy_usd(
            sim.ledger.timeline_by_type(rec.t_end_s), rec.card_types, rec.meta["type_tdp_w"],
            rec.meta["type_idle_w"], DEFAULT_PUE if pue is None else pue,
            Tariff.from_windows(cfg.energy.windows_s()), training=tres.timeline if tres is not None else None,
            serving=sres.timeline if sres is not None else None, replicas=sres.replicas if sres is not None else None)
    if tres is not None:  # per-tenant JCT, queueing and (with silos) silo utilization
        summary.update(tenant_keys(tres.jobs, rec.meta))
    return PooledRun(tres, sres, rec, summary, dict(plan.inference_by_type), tables)
