"""The experiment file's schema (pydantic, frozen, unknown keys rejected).

Sizes, rates and times are human strings ("80 GiB", "400 Gbps", "1h", "4M") parsed by
:mod:`cluster_sim.units` at load; inside the model they are SI floats. The shape matches
DESIGN.md section 4 "Experiment file". Policies are given as a registry name or as
``{name: ..., params: {...}}``; both normalise to :class:`PolicyRef`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .. import units
from ..errors import CatalogError, ConfigError
from ..workload.models import inline_models
from .offline import OfflineJobConfig
from .policy_check import check_policy, check_scheduler

__all__ = [
    "ArrivalsConfig",
    "BatchingConfig",
    "ClusterConfig",
    "DeploymentConfig",
    "EnergyConfig",
    "ExperimentConfig",
    "FailuresConfig",
    "GeneratorConfig",
    "InferenceConfig",
    "OfflineJobConfig",
    "OffPeakConfig",
    "ParallelConfig",
    "PolicyConfig",
    "PolicyRef",
    "PoolConfig",
    "ServiceConfig",
    "ScalingConfig",
    "ServingPolicyConfig",
    "SLOConfig",
    "TariffWindow",
    "TraceConfig",
    "TrainingConfig",
    "TrainingJobConfig",
    "TrainingPolicyConfig",
]

# Limits: anything beyond them is refused at load with the limit in the message (a run that
# large would exhaust memory or never finish; raise a limit here if a study really needs it).
MAX_CARDS = 1_000_000  # per topology, job or deployment
MAX_DURATION_S = 10 * units.YEAR
MAX_SEED = 2**63 - 1
MAX_JOBS = 10_000_000  # training jobs per experiment (explicit + generated + trace)
MAX_JOBS_PER_HOUR = 1_000_000.0
MAX_REQUESTS = 10_000_000  # requests per service
MAX_REQUEST_RATE = 100_000.0  # requests per second per service
MAX_TOKENS = 10_000_000  # tokens of one sequence (prompt, output, seq_len)
MAX_BATCH_SEQS = 65_536
MAX_BATCH_TOKENS = 16 * 2**20
MIN_MTBF_S = units.HOUR  # per card or node; below this failures would dominate every event
MIN_CHECKPOINT_INTERVAL_S = units.MINUTE
MIN_TIMELINE_INTERVAL_S = 1e-3
MAX_TIMELINE_POINTS = 1_000_000
CV_RANGE = (0.01, 100.0)  # coefficient of variation of arrival gaps
SCALE_RANGE = (1e-6, 1e6)  # time_scale, rate_scale


def _unit(parse: Any) -> Any:
    def convert(v: Any) -> Any:
        return None if v is None else parse(v)

    return BeforeValidator(convert)


Duration = Annotated[float, _unit(units.parse_duration), Field(ge=0, le=MAX_DURATION_S)]
PosDuration = Annotated[float, _unit(units.parse_duration), Field(gt=0, le=MAX_DURATION_S)]
Count = Annotated[float, _unit(units.parse_count), Field(gt=0, le=1e18)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Scale = Annotated[float, Field(ge=SCALE_RANGE[0], le=SCALE_RANGE[1])]
CV = Annotated[float, Field(ge=CV_RANGE[0], le=CV_RANGE[1])]
Cards = Annotated[int, Field(ge=1, le=MAX_CARDS)]
Bandwidth = Annotated[float, _unit(units.parse_bandwidth)]
Power = Annotated[float, _unit(units.parse_power)]


class Strict(BaseModel):
    """Base: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PolicyRef(Strict):
    """A policy by registry name plus its constructor keyword parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v


def _ref(name: str) -> Any:
    return Field(default_factory=lambda: PolicyRef(name=name))


# ---- cluster ------------------------------------------------------------------------------
class ClusterConfig(Strict):
    """The cluster: a topology file path, or an inline builder spec ``{builder: fat_tree, ...}``."""

    topology: Annotated[str, Field(min_length=1, max_length=4096)] | dict[str, Any]


# ---- training -----------------------------------------------------------------------------
class ParallelConfig(Strict):
    """Parallel plan of a training job (see :class:`~cluster_sim.workload.parallelism.ParallelPlan`).

    ``dp`` defaults to ``cards / (tp * pp * cp)``; ``microbatches`` to what the global batch needs.
    """

    tp: Cards = 1
    pp: Cards = 1
    dp: Cards | None = None
    ep: Cards = 1
    cp: Cards = 1
    microbatches: int | None = Field(None, ge=1, le=MAX_CARDS)
    microbatch_size: int = Field(1, ge=1, le=MAX_BATCH_SEQS)
    virtual_stages: Cards = 1
    recompute: Literal["none", "selective", "full"] = "none"
    zero: Literal[0, 1, 2, 3] = 1
    sequence_parallel: bool = True
    dp_overlap: float = Field(0.8, ge=0.0, le=1.0)
    tp_overlap: float = Field(0.0, ge=0.0, le=1.0)
    pp_overlap: float = Field(0.0, ge=0.0, le=1.0)
    ep_overlap: float = Field(0.0, ge=0.0, le=1.0)


class TrainingJobConfig(Strict):
    """One explicit training job."""

    name: Name
    model: str
    cards: Cards
    card_type: str | None = None
    allowed_types: list[str] | None = None
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    seq_len: int = Field(2048, ge=1, le=MAX_TOKENS)
    global_batch_tokens: Count | None = None
    global_batch: int | None = Field(None, ge=1, le=10**9, description="sequences per step")
    tokens: Count | None = None
    duration: PosDuration | None = None
    submit: Duration = 0.0
    tenant: Name = "default"
    priority: int = Field(0, ge=-128, le=127)
    preemptible: bool = True
    checkpoint_interval: PosDuration | None = Field(None, ge=MIN_CHECKPOINT_INTERVAL_S)
    dtype: Literal["bf16", "fp16", "fp8"] = "bf16"
    deferrable: bool = Field(False, description="an off-peak policy (policy.training.offpeak) may hold it")
    deadline: PosDuration | None = Field(None, description="finish by submit + deadline (None = no deadline)")

    @model_validator(mode="after")
    def _batch(self) -> TrainingJobConfig:
        if self.global_batch is not None and self.global_batch_tokens is not None:
            raise ValueError("give global_batch (sequences) or global_batch_tokens, not both")
        return self


class GeneratorConfig(Strict):
    """Synthetic training jobs."""

    kind: Literal["industry_mix", "uniform"] = "industry_mix"
    jobs_per_hour: float | None = Field(None, gt=0, le=MAX_JOBS_PER_HOUR)
    n_jobs: int | None = Field(None, ge=1, le=MAX_JOBS)
    arrival: Literal["poisson", "gamma", "diurnal"] = "poisson"
    cv: CV = 1.0
    params: dict[str, Any] = Field(default_factory=dict)
    deferrable_fraction: float = Field(0.0, ge=0.0, le=1.0, description=(
        "share of the jobs (industry_mix: of the fine-tunes) an off-peak policy may hold"))
    deadline: PosDuration | None = Field(None, description="of the deferrable jobs, after submit (None = none)")

    @model_validator(mode="after")
    def _classes(self) -> GeneratorConfig:
        keep = self.params.get("classes")
        if keep is not None and (not isinstance(keep, list) or not keep
                                 or not all(isinstance(c, str) and c for c in keep)):
            raise ValueError(f"params.classes: expected a non-empty list of class names, got {keep!r:.60}")
        if self.deadline is not None and self.deferrable_fraction == 0:
            raise ValueError("deadline: applies to deferrable jobs; set deferrable_fraction > 0")
        return self


class TraceConfig(Strict):
    """Training jobs replayed from a cluster trace."""

    kind: str
    path: str
    nodes_path: str | None = None
    time_scale: Scale = 1.0
    max_jobs: int | None = Field(None, ge=1, le=MAX_JOBS)


class TrainingConfig(Strict):
    """Cluster-engine workload: explicit jobs and/or a generator and/or a trace, and offline
    inference jobs (:mod:`.offline`)."""

    jobs: list[TrainingJobConfig] = Field(default_factory=list)
    offline_jobs: list[OfflineJobConfig] = Field(default_factory=list)
    generator: GeneratorConfig | None = None
    trace: TraceConfig | None = None


# ---- inference ----------------------------------------------------------------------------
class SLOConfig(Strict):
    """Latency objectives; unset ones are not checked."""

    ttft: PosDuration | None = None
    tpot: PosDuration | None = None
    e2e: PosDuration | None = None


SLICES_DOC = ("replicas per card (MIG-like slices, tp = ep = 1): each gets 1/slices of the card's compute, "
              "HBM bandwidth and HBM; at most cluster_sim.perf.slices.MAX_SLICES per card type")
INTERFERENCE_DOC = ("fractional slowdown of a sliced replica's compute and memory time (co-resident slices "
                    "assumed always busy); default 0: MIG isolation, no measured figure (docs/pool.md)")


class PoolConfig(Strict):
    """A pool of identical replicas (one side of a PD-separated deployment)."""

    replicas: Cards
    card_type: str
    tp: Cards = 1
    ep: Cards = 1
    slices: int = Field(1, ge=1, le=64, description=SLICES_DOC)
    interference: float = Field(0.0, ge=0, le=10, description=INTERFERENCE_DOC)


class DeploymentConfig(Strict):
    """Colocated replicas, or disaggregated prefill and decode pools (PD分离).

    Colocated replicas are of one card type (``replicas``, ``card_type``, ``tp``, ``ep``), or of
    several under the service's one router (``groups``: one replica group per card type, 一云多芯;
    replicas are numbered group by group and the autoscaler starts them in that order)."""

    mode: Literal["colocated", "disaggregated"] = "colocated"
    replicas: Cards | None = None
    card_type: str | None = None
    tp: Cards = 1
    ep: Cards = 1
    slices: int = Field(1, ge=1, le=64, description=SLICES_DOC)
    interference: float = Field(0.0, ge=0, le=10, description=INTERFERENCE_DOC)
    prefill: PoolConfig | None = None
    decode: PoolConfig | None = None
    groups: list[PoolConfig] | None = Field(
        None, description="colocated: replica groups of different card types under one router "
        "(instead of replicas and card_type)")

    @model_validator(mode="after")
    def _shape(self) -> DeploymentConfig:
        if self.groups is not None:
            if self.mode != "colocated":
                raise ValueError("groups: only a colocated deployment has replica groups")
            if not self.groups:
                raise ValueError("groups: must not be empty (one group per card type)")
            if self.replicas is not None or self.card_type is not None:
                raise ValueError("groups: give either groups or replicas and card_type, not both")
            if self.slices != 1:
                raise ValueError("slices: a deployment of replica groups takes whole cards (slice a single-type one)")
            return self
        if self.mode == "colocated" and (self.replicas is None or self.card_type is None):
            raise ValueError("colocated deployment needs replicas and card_type (or groups)")
        if self.mode == "disaggregated" and (self.prefill is None or self.decode is None):
            raise ValueError("disaggregated deployment needs prefill and decode pools")
        return self

    def replica_pools(self, where: str) -> list[tuple[str, Any]]:
        """``(where, pool)`` for each replica group: the colocated deployment itself, each of its
        ``groups`` (``<where>.groups[i]``), or the prefill and decode pools (``<where>.prefill``)."""
        if self.mode != "colocated":
            return [(f"{where}.prefill", self.prefill), (f"{where}.decode", self.decode)]
        if self.groups is not None:
            return [(f"{where}.groups[{j}]", g) for j, g in enumerate(self.groups)]
        return [(where, self)]


class ArrivalsConfig(Strict):
    """Request arrivals: a synthetic process with fitted lengths, or a trace replay."""

    kind: Literal["poisson", "gamma", "diurnal", "trace"] = "poisson"
    rate: float | None = Field(None, gt=0, le=MAX_REQUEST_RATE, description="requests per second")
    cv: CV = 1.0
    peak_to_trough: float = Field(3.0, ge=1, le=1e6)
    trough_at: Duration = Field(0.0, le=86400.0, description="diurnal: time of day of the trough (the peak is 12 h later)")
    lengths: str = "azure_conv"
    prompt_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    output_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    format: Literal["azure_llm", "mooncake"] | None = None
    path: str | None = None
    rate_scale: Scale = 1.0
    time_scale: Scale = 1.0
    sample: float | None = Field(None, gt=0, le=MAX_REQUESTS)
    max_requests: int | None = Field(None, ge=1, le=MAX_REQUESTS)

    @model_validator(mode="after")
    def _shape(self) -> ArrivalsConfig:
        if self.kind == "trace" and (self.format is None or self.path is None):
            raise ValueError("trace arrivals need format and path")
        if self.kind != "trace" and self.rate is None:
            raise ValueError(f"{self.kind} arrivals need a rate (requests per second)")
        return self


class ServiceConfig(Strict):
    """One inference service: a model, its SLOs, its deployment and its arrivals."""

    name: Name
    model: str
    slo: SLOConfig = Field(default_factory=SLOConfig)
    deployment: DeploymentConfig
    arrivals: ArrivalsConfig
    dtype: Literal["bf16", "fp16", "fp8", "int8"] = "bf16"
    overlong: Literal["reject", "truncate"] = Field(
        "reject", description="a request longer than the model's context: reject it, or truncate its prompt "
        "(keeping the last tokens) so prompt + output fits")


class InferenceConfig(Strict):
    """Inference services."""

    services: list[ServiceConfig] = Field(default_factory=list)
    pue: float = Field(1.2, ge=1.0, le=10.0, description="facility power / IT power, for energy metrics")
    timeline_interval: PosDuration | None = Field(None, ge=MIN_TIMELINE_INTERVAL_S)

    @model_validator(mode="after")
    def _unique(self) -> InferenceConfig:
        _no_duplicates([s.name for s in self.services], "inference.services")
        return self


# ---- policies -----------------------------------------------------------------------------
class OffPeakConfig(Strict):
    """Off-peak shifting (错峰) of deferrable jobs under ``energy.tariff``
    (:class:`~cluster_sim.policies.training.offpeak.OffPeak`)."""

    max_usd_per_kwh: float = Field(ge=0.0, le=1e3, description="a window this cheap or cheaper is off-peak")  # 1e3 = MAX_USD_PER_KWH


class TrainingPolicyConfig(Strict):
    """The training scheduling cycle: admit -> order -> place -> preempt (+ backfill)."""

    admission: PolicyRef = _ref("accept_all")
    ordering: PolicyRef = _ref("fifo")
    placement: PolicyRef = _ref("packed")
    preemption: PolicyRef = _ref("none")
    backfill: bool | Literal["easy", "greedy"] = Field(False, description="true = EASY backfill")
    scheduler: str | None = None
    offpeak: OffPeakConfig | None = Field(None, description="hold deferrable jobs until cheap hours")

    @model_validator(mode="after")
    def _known(self) -> TrainingPolicyConfig:
        for stage in ("admission", "ordering", "placement", "preemption"):
            check_policy(stage, getattr(self, stage), f"policy.training.{stage}")
        check_scheduler(self.scheduler)
        return self


class BatchingConfig(Strict):
    """Continuous batching knobs (vLLM-like)."""

    max_batch_tokens: int = Field(8192, ge=1, le=MAX_BATCH_TOKENS)
    max_batch_seqs: int = Field(256, ge=1, le=MAX_BATCH_SEQS)
    chunked_prefill: bool = False
    chunk_tokens: int = Field(512, ge=1, le=MAX_BATCH_TOKENS)
    on_kv_full: Literal["wait", "preempt"] = "wait"
    kv_watermark: float = Field(0.01, ge=0.0, lt=1.0, description="KV share kept free at admission")
    prefix_cache: bool = True
    prefix_cache_blocks: int | None = Field(None, ge=0, le=10**9, description="per replica; None = what KV allows")


class ServingPolicyConfig(Strict):
    """Serving policies."""

    routing: PolicyRef = _ref("round_robin")
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    autoscaling: PolicyRef = _ref("fixed")

    @model_validator(mode="after")
    def _known(self) -> ServingPolicyConfig:
        check_policy("routing", self.routing, "policy.serving.routing")
        check_policy("autoscaling", self.autoscaling, "policy.serving.autoscaling")
        return self


class PolicyConfig(Strict):
    """All policy families."""

    training: TrainingPolicyConfig = Field(default_factory=TrainingPolicyConfig)
    serving: ServingPolicyConfig = Field(default_factory=ServingPolicyConfig)
    pool: PolicyRef = _ref("separate")

    @model_validator(mode="after")
    def _known(self) -> PolicyConfig:
        check_policy("pool", self.pool, "policy.pool")
        return self


class FailuresConfig(Strict):
    """Failures and restarts."""

    card_mtbf: PosDuration | None = Field(None, ge=MIN_MTBF_S)
    node_mtbf: PosDuration | None = Field(None, ge=MIN_MTBF_S)
    restart_delay: Duration = 600.0
    checkpoint_cost: Duration = 60.0
    checkpoint_interval: PosDuration | None = Field(None, ge=MIN_CHECKPOINT_INTERVAL_S,
                                                    description="None = the engine default (1 h)")


class ScalingConfig(Strict):
    """Scaling curve of one training job: linear speedup and MFU vs card count, per topology."""

    job: str | int = 0
    cards: list[Cards] = Field(min_length=1, max_length=256)
    topologies: list[str | dict[str, Any]] = Field(default_factory=list, description="empty = cluster.topology")
    mode: Literal["weak", "strong"] = "weak"


# ---- energy -------------------------------------------------------------------------------
MAX_USD_PER_KWH = 1e3
MAX_TARIFF_WINDOWS = 1000


def _hours(s: float) -> str:
    return f"{s / units.HOUR:g}h"


class TariffWindow(Strict):
    """One time-of-use window of the day, ``[from, to)`` in local clock time (0h-24h)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    start: Duration = Field(alias="from")
    end: Duration = Field(alias="to")
    usd_per_kwh: float = Field(ge=0.0, le=MAX_USD_PER_KWH)

    @model_validator(mode="after")
    def _order(self) -> TariffWindow:
        if self.end > units.DAY:
            raise ValueError(f"to: {_hours(self.end)} is past 24h (the tariff repeats every day)")
        if not self.start < self.end:
            raise ValueError(f"from {_hours(self.start)} is not before to {_hours(self.end)}")
        return self


class EnergyConfig(Strict):
    """The electricity price: a flat ``usd_per_kwh`` or a daily time-of-use ``tariff`` whose
    windows cover ``[0h, 24h)`` exactly once (``t = 0`` of the run is midnight)."""

    usd_per_kwh: float | None = Field(None, ge=0.0, le=MAX_USD_PER_KWH)
    tariff: list[TariffWindow] | None = Field(None, min_length=1, max_length=MAX_TARIFF_WINDOWS)

    @field_validator("tariff")
    @classmethod
    def _tiles_the_day(cls, v: list[TariffWindow] | None) -> list[TariffWindow] | None:
        if v is None:
            return v
        t = 0.0
        for w in sorted(v, key=lambda w: (w.start, w.end)):
            if w.start > t:
                raise ValueError(f"{_hours(t)}-{_hours(w.start)} is not covered")
            if w.start < t:
                raise ValueError(f"{_hours(w.start)}-{_hours(min(t, w.end))} is covered twice")
            t = w.end
        if t < units.DAY:
            raise ValueError(f"{_hours(t)}-24h is not covered")
        return v

    @model_validator(mode="after")
    def _one(self) -> EnergyConfig:
        if (self.usd_per_kwh is None) == (self.tariff is None):
            raise ValueError("give usd_per_kwh (a flat price) or tariff (time-of-use windows), exactly one")
        return self

    def windows_s(self) -> tuple[tuple[float, float, float], ...]:
        """``(start_s, end_s, usd_per_kwh)`` windows tiling the day (a flat price is one window)."""
        if self.tariff is None:
            return ((0.0, float(units.DAY), float(self.usd_per_kwh or 0.0)),)
        return tuple(sorted((w.start, w.end, w.usd_per_kwh) for w in self.tariff))


class ExperimentConfig(Strict):
    """A whole experiment. Every section is optional except ``cluster``."""

    name: Name = "experiment"
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    duration: PosDuration | None = None
    cluster: ClusterConfig
    training: TrainingConfig | None = None
    inference: InferenceConfig | None = None
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    failures: FailuresConfig | None = None
    scaling: ScalingConfig | None = None
    energy: EnergyConfig | None = Field(None, description="electricity price (flat or time-of-use) for cost.energy_usd")
    models: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="inline model architectures (ModelSpec fields) by name")
    catalog: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        default_factory=list, description="user catalog TOML files of cards, systems and fabrics")
    base_dir: str = Field(".", description="directory relative paths resolve against (set by the loader)")

    @field_validator("catalog", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _limits(self) -> ExperimentConfig:
        """Cross-field sizes: generated jobs, requests and timeline points stay under the limits."""
        try:
            inline_models(self.models, "models")  # same checks as the shipped models.toml
        except CatalogError as exc:
            raise ConfigError(str(exc)) from None
        hours = None if self.duration is None else self.duration / units.HOUR
        _check_offpeak(self.policy.training.offpeak, self.energy)
        tr = self.training
        if tr is not None:
            _no_duplicates([j.name for j in tr.jobs], "training.jobs")
            _no_duplicates([j.name for j in tr.offline_jobs], "training.offline_jobs")
            clash = sorted({j.name for j in tr.jobs} & {j.name for j in tr.offline_jobs})
            if clash:
                i = [j.name for j in tr.offline_jobs].index(clash[0])
                raise ConfigError(f"training.offline_jobs[{i}].name: {clash[0]!r} is also a training.jobs name")
            g = tr.generator
            if g is not None and g.n_jobs is None and g.jobs_per_hour is not None and hours is not None \
                    and g.jobs_per_hour * hours > MAX_JOBS:
                raise ConfigError(f"training.generator.jobs_per_hour: {g.jobs_per_hour:g} jobs per hour for "
                                  f"{hours:g} h is {g.jobs_per_hour * hours:.3g} jobs; the limit is {MAX_JOBS:,}")
        inf = self.inference
        if inf is not None and self.duration is not None:
            for i, s in enumerate(inf.services):
                a = s.arrivals
                if a.kind != "trace" and a.rate is not None and a.max_requests is None \
                        and a.rate * self.duration > MAX_REQUESTS:
                    raise ConfigError(f"inference.services[{i}].arrivals.rate: {a.rate:g} requests/s for "
                                      f"{self.duration:g} s is {a.rate * self.duration:.3g} requests; the limit "
                                      f"is {MAX_REQUESTS:,} (set max_requests or a shorter duration)")
            if inf.timeline_interval is not None and self.duration / inf.timeline_interval > MAX_TIMELINE_POINTS:
                raise ConfigError(f"inference.timeline_interval: {inf.timeline_interval:g} s over {self.duration:g} s "
                                  f"is more than {MAX_TIMELINE_POINTS:,} timeline points")
        return self


def _check_offpeak(op: OffPeakConfig | None, energy: EnergyConfig | None) -> None:
    """``policy.training.offpeak`` needs a time-of-use ``energy.tariff`` with a window that cheap."""
    if op is None:
        return
    where = "policy.training.offpeak"
    if energy is None or energy.tariff is None:
        raise ConfigError(f"{where}: needs a time-of-use energy.tariff to shift work to cheap hours "
                          f"({'a flat energy.usd_per_kwh has none' if energy is not None else 'no energy section'})")
    cheapest = min(w.usd_per_kwh for w in energy.tariff)
    if op.max_usd_per_kwh < cheapest:
        raise ConfigError(f"{where}.max_usd_per_kwh: {op.max_usd_per_kwh:g} is below every energy.tariff "
                          f"window (the cheapest is {cheapest:g} USD/kWh): no job could ever be released")


def _no_duplicates(names: list[str], where: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ConfigError(f"{where}[{i}].name: duplicate name {name!r} (also {where}[{seen[name]}])")
        seen[name] = i
