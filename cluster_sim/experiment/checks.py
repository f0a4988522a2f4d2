"""``check(cfg)``: validate an experiment without running it (``cluster-sim validate``)."""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..config import ExperimentConfig, resolve_path, user_scope
from ..errors import ClusterSimError, ConfigError
from ..policies import registry
from ..workload.models import model
from .build import build_simulation, pool_plan, services_from_config, training_policies
from .cluster import Cluster
from .drivers import check_min_replicas
from .run import scaling_curves, wants_cluster_engine
from .training_jobs import ScalingSpec, estimate_jobs

__all__ = ["check"]


def _check_services(cfg: ExperimentConfig, topology: Any) -> list[str]:
    lines: list[str] = []
    by_type = topology.cards_by_type()
    need: dict[str, int] = {}
    for i, svc in enumerate(cfg.inference.services if cfg.inference else []):
        where = f"inference.services[{i}]"
        try:
            spec = model(svc.model)
        except ClusterSimError as exc:
            raise type(exc)(f"{where}.model: {exc}") from None
        d = svc.deployment
        base = f"{where}.deployment"
        pools = [(w[len(base):], p.card_type, p.replicas, p.tp) for w, p in d.replica_pools(base)]
        for suffix, card_type, replicas, tp in pools:
            try:
                name = catalog.accelerator(card_type).name
            except ClusterSimError as exc:
                raise type(exc)(f"{where}.deployment{suffix}.card_type: {exc}") from None
            if name not in by_type:
                raise ConfigError(f"{where}.deployment{suffix}.card_type: {name!r} is not in topology "
                                  f"{topology.name!r}; it has: {', '.join(sorted(by_type))}")
            if spec.heads % tp:
                raise ConfigError(f"{where}.deployment{suffix}.tp: {tp} does not divide the {spec.heads} "
                                  f"attention heads of {spec.name}")
            need[name] = need.get(name, 0) + replicas * tp
        a = svc.arrivals
        if a.kind == "trace" and a.path:
            resolve_path(a.path, cfg.base_dir)
        lines.append(f"{where} {svc.name}: {spec.name}, {d.mode}, arrivals {a.kind}")
    for name, n in sorted(need.items()):
        if n > len(by_type[name]):
            raise ConfigError(f"inference.services: the deployments need {n} {name} cards; topology "
                              f"{topology.name!r} has {len(by_type[name])}")
    return lines


def _check_policies(cfg: ExperimentConfig) -> list[str]:
    tp = cfg.policy.training
    pol = training_policies(tp)  # what the engine runs: a scheduler preset fills the stages left unset
    stages = [f"{s}={pol[s].name}" for s in ("admission", "ordering", "placement", "preemption")]
    preset = f"scheduler={tp.scheduler}, " if tp.scheduler else ""
    lines = [f"policy.training: {preset}{', '.join(stages)}, backfill={pol['backfill'] or 'none'}"]
    sv = cfg.policy.serving
    for family in ("routing", "autoscaling"):
        registry.make(family, getattr(sv, family), where=f"policy.serving.{family}")
    return [*lines, f"policy.serving: routing={sv.routing.name}, autoscaling={sv.autoscaling.name}"]


def _check_pool(cfg: ExperimentConfig, cluster: Cluster) -> str:
    """The pool policy's line: its partition, checked against the cluster and the deployments."""
    name = cfg.policy.pool.name
    if name == "separate":
        registry.make("pool", cfg.policy.pool, where="policy.pool")
        return "policy.pool: separate (no card sharing: training and serving simulated separately)"
    plan = pool_plan(cfg, cluster.layout)
    if plan.dynamic:
        pol = registry.make("pool", cfg.policy.pool)
        check_min_replicas(cfg, pol)
        verb = ("reclaim cards from preemptible training" if pol.reclaims
                else "wait for free cards")
        return (f"policy.pool: {name}: no card set aside; serving replica slots may use {plan.inference_cards.size:,} "
                f"cards, lend them to training while off, and at a scale-up {verb}")
    part = ", ".join(f"{n:,} {t}" for t, n in sorted(plan.inference_by_type.items())) or "no cards"
    rest = cluster.n_cards - int(plan.inference_cards.size)
    line = f"policy.pool: {name}: inference partition {part}, training on the other {rest:,} cards"
    if plan.tenant_cards:
        silos = ", ".join(f"{t} {c.size:,}" for t, c in plan.tenant_cards.items())
        left = 0 if plan.rest_cards is None else int(plan.rest_cards.size)
        line += f"; tenant silos {silos}, {left:,} cards for the other tenants"
    return line


def check(cfg: ExperimentConfig) -> list[str]:
    """Validate an experiment without running it; one line per thing checked.

    Loads the topology (connectivity included), every training job's model, plan and memory
    fit, the scaling request, inference services (models, card types, card counts, trace
    files) and policy names. Raises the first :class:`ClusterSimError`, path-qualified.
    """
    with user_scope(cfg):  # the experiment's own models and cards (models:, catalog:)
        return _check(cfg)


def _check(cfg: ExperimentConfig) -> list[str]:
    cluster = Cluster.load(cfg)
    topology = cluster.topology
    types = ", ".join(f"{v:,} {k}" for k, v in cluster.cards_by_type.items())
    kind = "" if topology is not None else f"node inventory ({cluster.inventory['builder']}), "
    lines = [f"cluster.topology: {cluster.name}: {kind}{cluster.n_cards:,} cards ({types})"]
    for e in estimate_jobs(cfg, topology) if topology is not None else ():
        est, p = e.estimate, e.estimate.plan
        lines.append(f"{e.where} {e.name}: {est.model} on {est.cards:,} {'+'.join(est.card_types)}, "
                     f"tp={p.tp} pp={p.pp} dp={p.dp} ep={p.ep} cp={p.cp} m={p.microbatches}; "
                     f"{est.memory.total_bytes / 2**30:.1f} of {est.memory_capacity_bytes / 2**30:.1f} GiB per card")
    tr = cfg.training
    if tr is not None and tr.trace is not None:
        resolve_path(tr.trace.path, cfg.base_dir)
    if wants_cluster_engine(cfg)[0]:
        sim = build_simulation(cfg, layout=cluster.layout)  # builds the job table (generator, trace) and the policies; no run
        parts = [f"{len(tr.jobs)} explicit job{'s' if len(tr.jobs) > 1 else ''}"] if tr and tr.jobs else []
        parts += [f"generator {tr.generator.kind}"] if tr and tr.generator else []
        parts += [f"trace {tr.trace.kind} {tr.trace.path}"] if tr and tr.trace else []
        n_off = len(tr.offline_jobs) if tr else 0
        parts += [f"{n_off} offline inference job{'s' if n_off > 1 else ''}"] if n_off else []
        lines.append(f"training: cluster engine built ({', '.join(parts)})")
        for k, (name, m) in enumerate(sim.meta.get("offline_jobs", {}).items()):
            lines.append(f"training.offline_jobs[{k}] {name}: {m['requests']:,} requests on {m['replicas']} "
                         f"{m['reference_type']} replica{'s' if m['replicas'] > 1 else ''}, batch {m['batch']} "
                         f"({m['batch_s']:.1f} s), {m['duration_s']:,.0f} s at reference speed")
    spec = ScalingSpec.from_config(getattr(cfg, "scaling", None))
    if spec is not None:
        curves, _ = scaling_curves(cfg, spec, topology)
        lines.append(f"scaling: {len(spec.cards)} card counts on {', '.join(curves)} ({spec.mode})")
    if cfg.inference is not None and cfg.inference.services:
        lines += _check_services(cfg, cluster.require_topology("inference.services"))
        specs = services_from_config(cfg)  # models fit their cards, arrivals and traces load
        lines.append(f"inference: serving engine ready ({sum(len(s.requests) for s in specs):,} requests)")
    lines += _check_policies(cfg)
    lines.append(_check_pool(cfg, cluster))
    return lines
