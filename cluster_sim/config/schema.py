"""The experiment file's schema (pydantic, frozen, unknown keys rejected).

Sizes, rates and times are human strings ("80 GiB", "400 Gbps", "1h", "4M") parsed by
:mod:`cluster_sim.units` at load; inside the model they are SI floats. The shape matches
DESIGN.md section 4 "Experiment file" (the `inference:` section in :mod:`.inference`, the shared
field types and limits in :mod:`.fields`). Policies are given as a registry name or as
``{name: ..., params: {...}}``; both normalise to :class:`PolicyRef`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .. import units
from ..errors import CatalogError, ClusterSimError, ConfigError
from ..workload.models import inline_models
from .fields import (
    CV,
    MAX_BATCH_SEQS,
    MAX_BATCH_TOKENS,
    MAX_CARDS,
    MAX_JOBS,
    MAX_JOBS_PER_HOUR,
    MAX_REQUESTS,
    MAX_SEED,
    MAX_TIMELINE_POINTS,
    MAX_TOKENS,
    MIN_CHECKPOINT_INTERVAL_S,
    MIN_MTBF_S,
    Bandwidth,
    Cards,
    Count,
    Duration,
    Name,
    PolicyRef,
    PosDuration,
    Scale,
    Strict,
    no_duplicates,
    policy_ref,
)
from .inference import (
    ArrivalsConfig,
    DeploymentConfig,
    InferenceConfig,
    PoolConfig,
    ServiceConfig,
    SLOConfig,
)
from .offline import OfflineJobConfig
from .policy_check import check_policy, check_scheduler
from .stragglers import StragglersConfig

__all__ = [
    "ArrivalsConfig",
    "BatchingConfig",
    "ClusterConfig",
    "DeploymentConfig",
    "EnergyConfig",
    "ExperimentConfig",
    "FailureClassConfig",
    "FailuresConfig",
    "ServingFailuresConfig",
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
    "StragglersConfig",
    "TariffWindow",
    "TraceConfig",
    "TrainingConfig",
    "TrainingJobConfig",
    "TrainingPolicyConfig",
]

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
    attention_kernel: Literal["flash", "dense"] = "flash"
    microbatch_overhead: Duration = Field(0.0, description="fixed seconds per micro-batch per stage")


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
    elastic: bool = Field(False, description="after a failure, restart on the cards left (docs/faults.md)")
    min_cards: Cards | None = Field(None, description="fewest cards an elastic job runs on (default half)")

    @model_validator(mode="after")
    def _batch(self) -> TrainingJobConfig:
        if self.global_batch is not None and self.global_batch_tokens is not None:
            raise ValueError("give global_batch (sequences) or global_batch_tokens, not both")
        if self.min_cards is not None:
            if not self.elastic:
                raise ValueError("min_cards: applies to elastic jobs; set elastic: true")
            if self.min_cards > self.cards:
                raise ValueError(f"min_cards: {self.min_cards} is more than the job's {self.cards} cards")
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
    elastic_fraction: float = Field(0.0, ge=0.0, le=1.0, description=(
        "share of the jobs (of at least 2 whole cards) that shrink after a failure"))

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


# ---- policies -----------------------------------------------------------------------------
class OffPeakConfig(Strict):
    """Off-peak shifting (错峰) of deferrable jobs under ``energy.tariff``
    (:class:`~cluster_sim.policies.training.offpeak.OffPeak`)."""

    max_usd_per_kwh: float = Field(ge=0.0, le=1e3, description="a window this cheap or cheaper is off-peak")  # 1e3 = MAX_USD_PER_KWH


class TrainingPolicyConfig(Strict):
    """The training scheduling cycle: admit -> order -> place -> preempt (+ backfill)."""

    admission: PolicyRef = policy_ref("accept_all")
    ordering: PolicyRef = policy_ref("fifo")
    placement: PolicyRef = policy_ref("packed")
    preemption: PolicyRef = policy_ref("none")
    backfill: bool | Literal["easy", "greedy"] = Field(False, description="true = EASY backfill")
    scheduler: str | None = None
    offpeak: OffPeakConfig | None = Field(None, description="hold deferrable jobs until cheap hours")
    stragglers: Literal["ignore", "replace"] = Field("ignore", description="response to a detected slow unit")

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

    routing: PolicyRef = policy_ref("round_robin")
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    autoscaling: PolicyRef = policy_ref("fixed")

    @model_validator(mode="after")
    def _known(self) -> ServingPolicyConfig:
        check_policy("routing", self.routing, "policy.serving.routing")
        check_policy("autoscaling", self.autoscaling, "policy.serving.autoscaling")
        return self


class PolicyConfig(Strict):
    """All policy families."""

    training: TrainingPolicyConfig = Field(default_factory=TrainingPolicyConfig)
    serving: ServingPolicyConfig = Field(default_factory=ServingPolicyConfig)
    pool: PolicyRef = policy_ref("separate")

    @model_validator(mode="after")
    def _known(self) -> PolicyConfig:
        check_policy("pool", self.pool, "policy.pool")
        return self


class CheckpointConfig(Strict):
    """``failures.checkpoint``: interval, cost and storage of training checkpoints
    (docs/faults_checkpoint.md). ``cost`` overrides the cost computed from each job's model and
    plan; ``storage_bandwidth`` makes checkpoints explicit events sharing it; ``async`` needs
    ``host_copy_bandwidth`` (device-to-host bytes/s per card: the stall is the copy)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

    interval: PosDuration = Field(3600.0, ge=MIN_CHECKPOINT_INTERVAL_S)
    cost: Duration | None = None
    storage_bandwidth: Bandwidth | None = Field(None, gt=0)
    node_write_bandwidth: Bandwidth | None = Field(None, gt=0)
    async_: bool = Field(False, alias="async")
    host_copy_bandwidth: Bandwidth | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _async_needs_copy(self) -> CheckpointConfig:
        if self.async_ and self.host_copy_bandwidth is None:
            raise ValueError("host_copy_bandwidth: required with async: true (the stall is the copy "
                             "of each rank's shard to host memory)")
        return self


class ServingFailuresConfig(Strict):
    """Serving replica failures (``failures.serving``; engine/serving/faults.py, docs/faults_serving.md).

    Present = replicas fail: at ``replica_mtbf`` each, else at ``cards / card_mtbf + nodes /
    node_mtbf`` of the section above. ``model_load: auto`` = weight bytes per card /
    ``load_gbyte_per_s_per_card`` + ``startup``.
    """

    replica_mtbf: PosDuration | None = None
    on_failure: Literal["requeue", "drop"] = "requeue"
    model_load: Literal["auto"] | Duration = "auto"
    load_gbyte_per_s_per_card: float = Field(6.25, gt=0, le=1e4,
                                              description="50 GB/s per 8-card node (docs/pool.md) / 8")
    startup: Duration = 30.0

    @field_validator("model_load", mode="before")
    @classmethod
    def _load(cls, v: Any) -> Any:
        if v == "auto":
            return v
        try:
            s = units.parse_duration(v)
        except (ValueError, TypeError, ClusterSimError) as exc:
            raise ValueError(f"a duration >= 0 or auto, got {v!r:.40} ({exc})") from None
        if not s >= 0:
            raise ValueError(f"a duration >= 0 or auto, got {v!r:.40}")
        return s


MAX_FAILURE_CLASSES = 64
MAX_RATE_PER_1000_NODE_DAYS = 1e5
MAX_TECHNICIANS = 1_000_000


class FailureClassConfig(Strict):
    """One failure class (docs/faults.md): its unit, time to failure and repair time."""

    name: Name
    unit: Literal["card", "node", "link", "switch"]
    mtbf: PosDuration | None = Field(None, description="mean time to failure of one unit")
    rate_per_1000_node_days: float | None = Field(None, gt=0, le=MAX_RATE_PER_1000_NODE_DAYS)
    distribution: Literal["exponential", "weibull"] = "exponential"
    shape: float | None = Field(None, gt=0, le=100.0, description="Weibull shape k")
    repair: PosDuration

    @model_validator(mode="after")
    def _one_rate(self) -> FailureClassConfig:
        if (self.mtbf is None) == (self.rate_per_1000_node_days is None):
            raise ValueError("mtbf, rate_per_1000_node_days: give exactly one of them")
        if self.distribution == "weibull" and self.shape is None:
            raise ValueError("shape: a weibull class needs its shape k > 0")
        if self.distribution == "exponential" and self.shape is not None:
            raise ValueError("shape: only a weibull class has a shape")
        return self


class FailuresConfig(Strict):
    """Failures and restarts (``classes``, spares, technicians, detection: docs/faults.md)."""

    card_mtbf: PosDuration | None = Field(None, ge=MIN_MTBF_S)
    node_mtbf: PosDuration | None = Field(None, ge=MIN_MTBF_S)
    restart_delay: Literal["auto"] | Duration = 600.0
    checkpoint_cost: Duration = 60.0
    checkpoint_interval: PosDuration | None = Field(None, ge=MIN_CHECKPOINT_INTERVAL_S,
                                                    description="None = the engine default (1 h)")
    stragglers: StragglersConfig | None = Field(None, description="fail-slow nodes or cards")
    checkpoint: CheckpointConfig | None = None
    serving: ServingFailuresConfig | None = None
    classes: list[FailureClassConfig] = Field(default_factory=list, max_length=MAX_FAILURE_CLASSES)
    spare_nodes: int = Field(0, ge=0, le=MAX_CARDS)
    swap_time: Duration = 600.0
    technicians: int | None = Field(None, ge=1, le=MAX_TECHNICIANS, description="None = unlimited")
    detection: Duration = 0.0
    restart_base: Duration = 300.0
    init_per_1k_ranks: Duration = 30.0

    @model_validator(mode="after")
    def _one_checkpoint_form(self) -> FailuresConfig:
        if self.checkpoint is not None:
            flat = sorted({"checkpoint_interval", "checkpoint_cost"} & self.model_fields_set)
            if flat:
                raise ValueError(f"{flat[0]}: give it as checkpoint.{flat[0].split('_')[1]} "
                                 "(not both the flat field and the checkpoint section)")
        return self

    @model_validator(mode="after")
    def _serving_rate(self) -> FailuresConfig:
        s = self.serving
        if s is not None and s.replica_mtbf is None and self.card_mtbf is None and self.node_mtbf is None:
            raise ConfigError("failures.serving: give replica_mtbf, or card_mtbf / node_mtbf in failures")
        return self

    @model_validator(mode="after")
    def _classes(self) -> FailuresConfig:
        if self.classes and (self.card_mtbf is not None or self.node_mtbf is not None):
            raise ValueError("classes: card_mtbf / node_mtbf are the exponential classes 'card' / 'node'; "
                             "with classes, write them as classes")
        seen: dict[str, int] = {}
        for i, c in enumerate(self.classes):
            if c.name in seen:
                raise ValueError(f"classes[{i}].name: duplicate name {c.name!r} (also classes[{seen[c.name]}])")
            seen[c.name] = i
        return self


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
            no_duplicates([j.name for j in tr.jobs], "training.jobs")
            no_duplicates([j.name for j in tr.offline_jobs], "training.offline_jobs")
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
