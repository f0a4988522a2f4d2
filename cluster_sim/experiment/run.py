"""``simulate(cfg) -> Result``: the one entry point for notebooks, the CLI and sweeps (DESIGN.md 4).

Lifecycle (STYLE 13): build (topology, models, plans) -> run (estimates, scaling curves, the
cluster and serving engines when the experiment has work for them) -> collect (one flat
summary dict and DataFrames).

>>> import cluster_sim as cs
>>> res = cs.simulate(cs.load_config("workloads/train_llama3_70b.yaml"))  # from the repo root
>>> round(res.summary["training.mfu"], 3)
0.512
>>> type(res.plot.breakdown()).__name__
'Figure'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .. import catalog
from ..config import ExperimentConfig, load_config, user_scope
from ..metrics.serving import priced_serving_keys
from ..metrics.serving_faults import fault_events, fault_series
from ..metrics.summary import priced_training_keys
from ..metrics.tariff import Tariff
from ..metrics.trace_export import chrome_trace
from ..report import fault_plots, plots
from .build import pool_plan
from .cluster import Cluster, load_cluster
from .drivers import run_pooled, run_serving, run_training
from .progress import PhaseTicks
from .result_html import result_html
from .store import save_run
from .training_jobs import JobEstimate, ScalingSpec, estimate_jobs, scaling_for_job, scaling_frame

__all__ = ["HEADLINE_KEYS", "PlotAccessor", "Result", "load_cluster", "scaling_curves", "simulate",
           "wants_cluster_engine"]

HEADLINE_KEYS = (
    "training.mfu", "training.linear_speedup", "training.step_time_s", "training.tokens_per_s",
    "training.days_to_train", "training.jobs.mfu", "training.cluster_mfu", "training.jct_s.p50",
    "training.jct_s.p99", "training.queueing_s.p50", "training.queueing_s.p99", "inference.ttft_s.p50",
    "inference.ttft_s.p99", "inference.tpot_s.p50", "inference.tpot_s.p99", "inference.e2e_s.p50",
    "inference.e2e_s.p99", "inference.slo_attainment", "inference.goodput_rps",
    "inference.tokens_per_s_per_card", "inference.utilization.busy", "utilization.allocated",
    "utilization.busy", "fragmentation.unallocated_cards", "energy_kwh", "cost_usd", "cost.installed_usd",
    "stragglers.lost_card_hours", "stragglers.replacements",
    "sim.events", "sim.wall_s",
)
"""Summary keys DESIGN.md 4 promises (when the experiment measures them), in display order: the
perf model's estimate of the explicit job(s) (``training.mfu`` ... ``training.days_to_train``),
then what the cluster and serving engines measured; ``summary["sources"]`` says which is which."""

log = logging.getLogger(__name__)

Progress = Callable[[float, float], None]
"""``progress(done, total)``: called as each phase of :func:`simulate` completes. An object that
also has a ``tick(done, total, events)`` method gets updates within the engine phases too, by
simulated time (``done`` fractional; ``events``: engine events so far, all phases)."""


# ---- result ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Result:
    """Everything one run produced.

    Attributes
    ----------
    config : ExperimentConfig
        The validated configuration the run used.
    summary : dict
        Flat headline metrics, dotted keys with units in the names (DESIGN.md 4).
    estimates : tuple of JobEstimate
        Step-time estimates of the explicit training jobs.
    scaling : dict label -> DataFrame
        Scaling curves (one per topology) when the experiment asks for one.
    jobs : DataFrame
        One row per training job of the cluster engine (JCT, queueing, MFU, ...); empty when not run.
    requests : DataFrame
        One row per inference request of the serving engine (TTFT, TPOT, E2E, ...); empty when not run.
    timeline : DataFrame
        Cluster levels per time bin, wide: ``time_s``, ``time_end_s``, ``allocated_cards``,
        ``busy_cards``, ``available_cards``, ``queued_jobs``, ... (time-averaged over the bin).
    serving_timeline : DataFrame
        Serving levels per time bin and replica, long: ``time_s``, ``width_s``, ``service``,
        ``pool``, ``replica``, ``batch_size``, ``queue_len``, ``kv_occupancy``, ``busy_fraction``.
    tables : dict name -> DataFrame
        Further engine tables (``segments``, ``replicas``, ``services``), saved as ``<name>.parquet``.
    trace : dict or None
        Perfetto / Chrome trace events from the engine, when it provides them.
    topology : dict
        ``Topology.summary()`` of the cluster.
    notes : tuple of str
        Modelling notes and warnings.
    """

    config: ExperimentConfig
    summary: dict[str, Any]
    estimates: tuple[JobEstimate, ...] = ()
    scaling: dict[str, pd.DataFrame] = field(default_factory=dict)
    jobs: pd.DataFrame = field(default_factory=pd.DataFrame)
    requests: pd.DataFrame = field(default_factory=pd.DataFrame)
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    serving_timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    trace: dict[str, Any] | None = None
    topology: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        head = {k: self.summary[k] for k in HEADLINE_KEYS if k in self.summary}
        return (f"Result(name={self.config.name!r}, jobs={len(self.jobs)}, requests={len(self.requests)}, "
                f"estimates={len(self.estimates)}, scaling={list(self.scaling)}, summary={head})")

    def _repr_html_(self) -> str:
        """A notebook cell ending with a Result shows this: KPIs and the main figures (:mod:`.result_html`)."""
        return result_html(self)

    @property
    def plot(self) -> PlotAccessor:
        """Figures of this run: ``res.plot.breakdown()``, ``.scaling()``, ``.utilization()``, ..."""
        return PlotAccessor(self)

    def breakdown_table(self) -> pd.DataFrame:
        """Step-time breakdown of every explicit job: seconds per component plus the total."""
        rows = []
        for e in self.estimates:
            row: dict[str, Any] = {"job": e.name, **e.estimate.breakdown.as_dict(), "step_time_s": e.estimate.step_time_s}
            rows.append(row)
        return pd.DataFrame(rows).fillna(0.0) if rows else pd.DataFrame()

    def save(self, out_dir: str | Path) -> Path:
        """Write the run directory atomically (see :func:`cluster_sim.experiment.store.save_run`)."""
        return save_run(self, out_dir)


class PlotAccessor:
    """Figures of one :class:`Result`; each method returns a matplotlib ``Figure``."""

    def __init__(self, result: Result) -> None:
        self._r = result

    def breakdown(self) -> Figure:
        """Step-time breakdown of the explicit training jobs (stacked bars, MFU labels)."""
        est = self._r.estimates
        return plots.breakdown({e.name: e.estimate.breakdown for e in est},
                               mfu={e.name: e.estimate.mfu for e in est},
                               title=f"{self._r.config.name}: step time breakdown")

    def scaling(self) -> Figure:
        """Linear speedup and MFU against cards, one line per topology."""
        spec = ScalingSpec.from_config(getattr(self._r.config, "scaling", None))
        return plots.scaling(self._r.scaling, mode=spec.mode if spec else "weak",
                             title=f"{self._r.config.name}: scaling")

    def utilization(self) -> Figure:
        """Allocated and busy share of the cluster's available cards over simulated time."""
        return plots.utilization(self._r.timeline, levels=("allocated_cards", "busy_cards"),
                                 capacity="available_cards", title=f"{self._r.config.name}: cluster utilization")

    def queue_length(self) -> Figure:
        """Training jobs waiting over simulated time."""
        return plots.queue_length(self._r.timeline, column="queued_jobs")

    def jct_cdf(self, by: str | None = "kind") -> Figure:
        """CDF of job completion times, one line per ``by`` column value (default: job kind)."""
        return plots.jct_cdf(self._r.jobs, by=by)

    def latency_cdf(self, by: str | None = "service") -> Figure:
        """TTFT / TPOT / end-to-end latency CDFs (one line per service) with the SLO of a single service."""
        services = self._r.config.inference.services if self._r.config.inference else []
        slo = services[0].slo.model_dump() if len(services) == 1 else None
        return plots.latency_cdf(self._r.requests, slo=slo, by=by)

    def kv_occupancy(self) -> Figure:
        """KV-cache occupancy over simulated time, averaged over the replicas of each pool."""
        tl = self._r.serving_timeline
        if len(tl) and "pool" in tl.columns:
            wide = (tl.groupby(["time_s", "pool"], observed=True)["kv_occupancy"].mean()
                    .unstack("pool").add_prefix("kv_occupancy.").reset_index())
            return plots.kv_occupancy(wide)
        return plots.kv_occupancy(tl)

    def pool_day(self) -> Figure:
        """Cards by ledger state over the run (stacked), the inference load, the broker's reclaims
        and lends (dynamic pool policies) and the tariff (with an ``energy:`` section)."""
        r = self._r
        energy = r.config.energy
        req = r.requests if len(r.requests) and "arrival_s" in r.requests.columns else None
        return plots.pool_day(r.tables.get("pool_timeline", pd.DataFrame()),
                              events=r.tables.get("pool_events"), requests=req, tariff=energy.windows_s() if energy is not None else None,
                              title=f"{r.config.name}: one card pool over the day")

    def serving_faults(self) -> Figure:
        """SLO attainment and goodput per arrival bin through serving replica failures."""
        r = self._r
        return fault_plots.serving_faults(r.tables.get("serving_faults", pd.DataFrame()),
                                          events=r.tables.get("serving_fault_events"),
                                          title=f"{r.config.name}: serving through replica failures")

    def available(self) -> list[str]:
        """Names of the figures this run has data for."""
        r, tl, stl = self._r, self._r.timeline, self._r.serving_timeline
        have = []
        if r.estimates:
            have.append("breakdown")
        if r.scaling:
            have.append("scaling")
        if len(tl) and {"time_s", "allocated_cards", "available_cards"} <= set(tl.columns):
            have.append("utilization")
        if len(tl) and "queued_jobs" in tl.columns:
            have.append("queue_length")
        if len(r.jobs) and "jct_s" in r.jobs.columns and r.jobs["jct_s"].notna().any():
            have.append("jct_cdf")
        if len(r.requests) and {"ttft_s", "tpot_s", "e2e_s"} & set(r.requests.columns):
            have.append("latency_cdf")
        if len(stl) and "kv_occupancy" in stl.columns:
            have.append("kv_occupancy")
        if len(r.tables.get("pool_timeline", ())):
            have.append("pool_day")
        if len(r.tables.get("serving_faults", ())):
            have.append("serving_faults")
        return have

    def all(self) -> dict[str, Figure]:
        """Every available figure by name."""
        return {name: getattr(self, name)() for name in self.available()}


# ---- simulate --------------------------------------------------------------------------------
def _estimate_summary(estimates: Sequence[JobEstimate]) -> dict[str, Any]:
    """The perf model's keys: ``training.mfu`` (model-FLOP-weighted over the explicit jobs),
    ``training.tokens_per_s`` (summed), the single job's step time, TFLOP/s and days to train,
    and every job's own ``training.job.<name>.*``. The cluster engine's MFU over the jobs it
    scheduled is ``training.jobs.mfu`` (``metrics.summary``), never these."""
    out: dict[str, Any] = {}
    if not estimates:
        return out
    model_tflops = sum(e.estimate.tflops_per_card * e.estimate.cards for e in estimates)
    peak_tflops = sum(e.estimate.tflops_per_card * e.estimate.cards / e.estimate.mfu for e in estimates)
    out["training.mfu"] = model_tflops / peak_tflops
    out["training.tokens_per_s"] = sum(e.estimate.tokens_per_s for e in estimates)
    if len(estimates) == 1:
        e = estimates[0]
        out["training.step_time_s"] = e.estimate.step_time_s
        out["training.tflops_per_card"] = e.estimate.tflops_per_card
        if e.days_to_train is not None:
            out["training.days_to_train"] = e.days_to_train
    for e in estimates:
        k, est = f"training.job.{e.name}", e.estimate
        out[f"{k}.cards"] = est.cards
        out[f"{k}.step_time_s"] = est.step_time_s
        out[f"{k}.mfu"] = est.mfu
        out[f"{k}.tflops_per_card"] = est.tflops_per_card
        out[f"{k}.tokens_per_s"] = est.tokens_per_s
        out[f"{k}.comm_fraction"] = est.comm_fraction
        out[f"{k}.memory_per_card_gib"] = est.memory.total_bytes / 2**30
        if e.days_to_train is not None:
            out[f"{k}.days_to_train"] = e.days_to_train
            if len(est.card_types) == 1:  # rented cost: card-hours x list price (DOMAIN.md 2)
                price = catalog.accelerator(est.card_types[0]).price_usd_per_hour
                out[f"{k}.cost_usd"] = e.days_to_train * 24.0 * est.cards * price
    return out


def scaling_curves(cfg: ExperimentConfig, spec: ScalingSpec, topology: Any = None
                   ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Scaling curves of ``spec.job`` on each of ``spec.topologies`` (default: the experiment's).

    Returns ``({topology name: DataFrame}, notes)``; frames come from :func:`scaling_frame`.
    """
    idx, job = spec.pick(cfg)
    topos: list[tuple[str, Any]] = []
    if spec.topologies:
        for i, t in enumerate(spec.topologies):
            topo = load_cluster(t, cfg.base_dir, where=f"scaling.topologies[{i}]")
            topos.append((topo.name, topo))
    else:
        topology = topology if topology is not None else load_cluster(cfg.cluster.topology, cfg.base_dir)
        topos.append((topology.name, topology))
    curves: dict[str, pd.DataFrame] = {}
    notes: list[str] = []
    for label, topo in topos:
        if label in curves:
            label = f"{label} ({len(curves)})"
        points, n = scaling_for_job(job, topo, spec.cards, mode=spec.mode, where=f"training.jobs[{idx}]")
        curves[label] = scaling_frame(points)
        notes.extend(n)
    return curves, notes


def _scaling_summary(curves: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, (label, df) in enumerate(curves.items()):
        last = df.iloc[-1]
        if i == 0:
            out["training.linear_speedup"] = float(last["linear_speedup"])
            out["scaling.cards_min"] = int(df["cards"].iloc[0])
            out["scaling.cards_max"] = int(last["cards"])
        out[f"scaling.{label}.linear_speedup"] = float(last["linear_speedup"])
        out[f"scaling.{label}.mfu"] = float(last["mfu"])
    return out


def _speedup_note(curves: Mapping[str, pd.DataFrame], spec: ScalingSpec,
                  estimates: Sequence[JobEstimate]) -> str:
    """Say at which card count ``training.linear_speedup`` is, when the job's own numbers are not."""
    label, df = next(iter(curves.items()))
    n0, n = int(df["cards"].iloc[0]), int(df["cards"].iloc[-1])
    own = [e for e in estimates if int(e.estimate.cards) != n]
    tail = ""
    if len(own) == 1:
        tail = f", not at {own[0].name}'s {own[0].estimate.cards:,} cards"
    elif own:
        tail = f", not at the jobs' own card counts ({', '.join(f'{e.name}: {e.estimate.cards:,}' for e in own)})"
    return (f"training.linear_speedup is at {n:,} cards (scaling curve from N0 = {n0:,}, {spec.mode}, "
            f"on {label}){tail}")


def wants_cluster_engine(cfg: ExperimentConfig) -> tuple[bool, str | None]:
    """Whether the cluster engine has work, and a note when jobs are only estimated.

    It runs for a generator, a trace, offline inference jobs, or explicit jobs that all have
    ``tokens`` or ``duration``: one such job is a cluster of one job (queueing, failures and
    restarts apply to it as to any).
    """
    tr = cfg.training
    if tr is None:
        return False, None
    if tr.generator is not None or tr.trace is not None or tr.offline_jobs:
        return True, None
    if not tr.jobs:
        return False, None
    untimed = [f"training.jobs[{i}]" for i, j in enumerate(tr.jobs) if j.tokens is None and j.duration is None]
    if not untimed:
        return True, None
    if len(tr.jobs) > 1:
        return False, ("training.jobs: several jobs without tokens or duration were estimated, not "
                       "scheduled (give each job tokens or duration to run the cluster engine)")
    if cfg.failures is not None:
        return False, (f"failures: not simulated: {untimed[0]} has no tokens or duration, so it was only "
                       "estimated (give it tokens or duration to run it through the cluster engine)")
    return False, None


# both engines report these: add them up
_SUMMED = ("energy_kwh", "energy.it_kwh", "cost_usd", "cost.energy_usd", "sim.events")


def _key_group(key: str) -> str:
    """The group a summary key is attributed by in ``summary["sources"]``: ``training.<x>`` keys
    alone or as ``training.<x>.*``, every other dotted key as ``<first part>.*``."""
    parts = key.split(".")
    if len(parts) == 1 or (parts[0] == "training" and len(parts) == 2):
        return key
    return f"{'.'.join(parts[:2])}.*" if parts[0] == "training" else f"{parts[0]}.*"


def _merge_summary(summary: dict[str, Any], engine: Mapping[str, Any], source: str) -> None:
    """Merge one producer's keys (``source``: estimate, scaling curves, cluster engine, serving
    engine) and record it in ``summary["sources"]`` (key group -> producers, e.g.
    ``{"training.mfu": "estimate", "utilization.*": "cluster engine", "cost_usd": "cluster engine
    + serving engine"}``). Later values win, except None over a value; :data:`_SUMMED` keys add up."""
    sources: dict[str, str] = summary.pop("sources", {})
    for k, v in engine.items():
        if v is None and summary.get(k) is not None:
            continue
        if k in _SUMMED and isinstance(summary.get(k), (int, float)) and isinstance(v, (int, float)):
            summary[k] = summary[k] + v
        else:
            summary[k] = v
        g = _key_group(k)
        have = sources.get(g)
        if have is None:
            sources[g] = source
        elif source not in have.split(" + "):
            sources[g] = f"{have} + {source}"
    if sources:
        summary["sources"] = sources  # kept last


def _progress(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(float(done), float(total))
    log.info("phase %d of %d done", done, total)


def simulate(cfg: ExperimentConfig | Mapping[str, Any] | str | Path, *,
             scaling: ScalingSpec | Mapping[str, Any] | None = None,
             progress: Progress | None = None) -> Result:
    """Run one experiment and return its :class:`Result`.

    Runs what the experiment asks for: step-time estimates of ``training.jobs``; the scaling
    curves of a ``scaling`` section; the cluster engine (:func:`cluster_sim.experiment.drivers.run_training`)
    for a training generator or trace, or explicit jobs that all have tokens or duration (a single
    job too: one job is a cluster of one, so ``failures`` apply to it); the serving engine
    (:func:`cluster_sim.experiment.drivers.run_serving`) for ``inference.services``. Under the
    default pool policy ``separate`` the training and serving engines run as separate simulations
    on the same topology, loaded once; under a sharing one (``static_partition``) they run in one
    simulation on one card ledger (:func:`cluster_sim.experiment.drivers.run_pooled`), and the
    ``pool.*`` keys (card-hours and utilization per card state, whole cluster) come from the ledger.

    Parameters
    ----------
    cfg : ExperimentConfig, mapping or path
        A validated config (from :func:`cluster_sim.load_config`), or anything ``load_config`` takes.
    scaling : ScalingSpec or mapping, optional
        A scaling curve to compute; default: the experiment's ``scaling`` section, if any.
    progress : callable(done, total), optional
        Called as each phase (estimates, cluster engine, serving engine) completes; one with a
        ``tick(done, total, events)`` method also as simulated time advances in the engines.

    Raises
    ------
    ClusterSimError
        A bad topology, model, plan or policy, with the config path of the field at fault.
    """
    t0 = time.perf_counter()
    if not isinstance(cfg, ExperimentConfig):
        cfg = load_config(cfg)
    with user_scope(cfg):  # the experiment's own models and cards (models:, catalog:), this run only
        return _simulate(cfg, scaling, progress, t0)


def _simulate(cfg: ExperimentConfig, scaling: ScalingSpec | Mapping[str, Any] | None,
              progress: Progress | None, t0: float) -> Result:
    wants_cluster, skip_note = wants_cluster_engine(cfg)
    wants_serving = cfg.inference is not None and bool(cfg.inference.services)
    phases = 1 + int(wants_cluster) + int(wants_serving)
    _progress(progress, 0, phases)
    ticks = PhaseTicks(progress, phases)

    cluster = Cluster.load(cfg)
    topology = cluster.topology
    plan = None  # a sharing pool policy's partition, checked before anything runs
    if (wants_cluster or wants_serving) and cfg.policy.pool.name != "separate":
        plan = pool_plan(cfg, cluster.layout)
    notes: list[str] = []
    estimates: tuple[JobEstimate, ...] = ()
    if topology is not None:
        estimates = estimate_jobs(cfg, topology)
        notes += [n for e in estimates for n in (*e.notes, *(f"{e.where}: {x}" for x in e.estimate.notes))]
    elif cfg.training is not None and cfg.training.jobs:
        notes.append(f"training.jobs: no step-time estimates on a node inventory (builder "
                     f"{cluster.inventory['builder']}); the cluster engine runs the jobs by their duration")
    if skip_note:
        notes.append(skip_note)
    spec = scaling if isinstance(scaling, ScalingSpec) else ScalingSpec.from_config(
        scaling if scaling is not None else getattr(cfg, "scaling", None))
    curves: dict[str, pd.DataFrame] = {}
    if spec is not None:
        curves, more = scaling_curves(cfg, spec, topology)  # no topology: load_cluster says why
        notes += more
        notes.append(_speedup_note(curves, spec, estimates))
    if wants_serving:
        cluster.require_topology("inference.services")
    summary: dict[str, Any] = {"experiment": cfg.name, "seed": cfg.seed, "cluster.topology": cluster.name,
                               "cluster.cards": cluster.n_cards}
    _merge_summary(summary, _estimate_summary(estimates), "estimate")
    _merge_summary(summary, _scaling_summary(curves), "scaling curves")
    done = 1
    _progress(progress, done, phases)

    jobs = requests = timeline = serving_timeline = pd.DataFrame()
    tables: dict[str, pd.DataFrame] = {}
    trace = None
    pooled = None
    if plan is not None:
        pooled = run_pooled(cfg, cluster=cluster, training=wants_cluster, serving=wants_serving, plan=plan,
                            tick=ticks.phase(done, phases - done))   # one simulation: both phases
    if wants_cluster:
        tres = pooled.training if pooled is not None else run_training(cfg, layout=cluster.layout,
                                                                        tick=ticks.phase(done))
        assert tres is not None  # run_pooled runs the training engine when asked to
        if cfg.energy is not None:  # energy priced per timeline bin by the tariff
            tres.summary.update(priced_training_keys(tres, Tariff.from_windows(cfg.energy.windows_s())))
        _merge_summary(summary, tres.summary, "cluster engine")
        jobs, timeline = tres.jobs, tres.timeline
        tables["segments"] = tres.segments
        notes += tres.notes   # card types the catalog lacks, missing prices (cluster engine)
        done += 1
        _progress(progress, done, phases)
    if wants_serving:
        sres = (pooled.serving if pooled is not None
                else run_serving(cfg, topology=topology, tick=ticks.phase(done)))
        assert sres is not None  # run_pooled runs the serving engine when asked to
        if cfg.energy is not None:  # priced at the run's mean power: the note says so
            priced, note = priced_serving_keys(sres.run, Tariff.from_windows(cfg.energy.windows_s()))
            sres.summary.update(priced)
            if pooled is None or pooled.summary.get("pool.energy_usd") is None:   # else the ledger's price
                notes += [note] if note else []
        _merge_summary(summary, sres.summary, "serving engine")
        requests, serving_timeline = sres.requests, sres.timeline
        tables.update(replicas=sres.replicas, services=sres.services)
        if "faults" in sres.run.info:   # failures.serving: the per-minute dip and the failure times
            tables.update(serving_faults=fault_series(sres.run), serving_fault_events=fault_events(sres.run))
        notes += sres.notes   # rejections by reason, truncations, missing prices (serving engine)
        done += 1
        _progress(progress, done, phases)
    if pooled is not None:
        _merge_summary(summary, pooled.summary, "pool ledger")
        tables.update(pooled.tables)
        if pooled.record.pool.get("broker") is not None:
            notes.append(f"policy.pool {cfg.policy.pool.name}: one simulation on one card ledger; serving "
                         f"replica slots hold their cards only while on and lend them to training "
                         f"otherwise (utilization.* is over the cards training could use, pool.* over "
                         f"the whole cluster)")
        else:
            part = ", ".join(f"{n:,} {t}" for t, n in sorted(pooled.inference_by_type.items())) or "no cards"
            rest = cluster.n_cards - sum(pooled.inference_by_type.values())
            notes.append(f"policy.pool {cfg.policy.pool.name}: one simulation on one card ledger; inference "
                         f"partition {part}, training on the other {rest:,} cards (utilization.* and "
                         f"energy.installed_kwh are over the training cards, pool.* over the whole cluster)")
        if pooled.summary.get("pool.energy_usd") is not None:   # the ledger's energy priced where drawn
            summary["cost.energy_usd"] = pooled.summary["pool.energy_usd"]
            summary.setdefault("sources", {})["cost.energy_usd"] = "pool ledger"
            notes.append("cost.energy_usd is the pool ledger's energy_kwh priced by the tariff per bin "
                         "(held cards per 5-minute ledger bin, busy cards per engine timeline bin)")
        for k in ("cost_usd", "energy_kwh"):   # what the cluster held and drew, whichever engine held it
            if pooled.summary.get(f"pool.{k}") is not None:
                summary[k] = pooled.summary[f"pool.{k}"]
                summary.setdefault("sources", {})[k] = "pool ledger"
                summary["sources"] = summary.pop("sources")  # kept last
        notes.append("cost_usd and energy_kwh are the pool ledger's: card-hours held by either engine "
                     "(an idle silo's cards included) at list price, held cards' energy at busy or idle power")
        if pooled.record.wall_s > 0:  # one clock: the events of both engines over the one run's wall time
            summary["sim.events_per_s"] = summary["sim.events"] / pooled.record.wall_s
    elif wants_cluster and wants_serving:
        notes.append("training and serving were simulated separately on the same topology (no card sharing)")
    if wants_cluster or wants_serving:   # post-processing of the recorded frames only
        trace = chrome_trace(tables.get("segments", pd.DataFrame()), timeline, jobs=jobs, requests=requests,
                             serving_timeline=serving_timeline, replicas=tables.get("replicas"))
    summary["sim.wall_s"] = time.perf_counter() - t0
    return Result(config=cfg, summary=summary, estimates=estimates, scaling=curves, jobs=jobs, requests=requests,
                  timeline=timeline, serving_timeline=serving_timeline, tables=tables, trace=trace,
                  topology=cluster.summary(), notes=tuple(notes))
