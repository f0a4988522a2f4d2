"""The experiment file's schema (pydantic, frozen, unknown keys rejected).

Sizes, rates and times are human strings ("80 GiB", "400 Gbps", "1h", "4M") parsed by
:mod:`cluster_sim.units` at load; inside the model they are SI floats. The shape matches
DESIGN.md section 4 "Experiment file". Policies are given as a registry name or as
``{name: ..., params: {...}}``; both normalise to :class:`PolicyRef`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .. import units

__all__ = [
    "ArrivalsConfig",
    "BatchingConfig",
    "ClusterConfig",
    "DeploymentConfig",
    "ExperimentConfig",
    "FailuresConfig",
    "GeneratorConfig",
    "InferenceConfig",
    "ParallelConfig",
    "PolicyConfig",
    "PolicyRef",
    "PoolConfig",
    "ServiceConfig",
    "ScalingConfig",
    "ServingPolicyConfig",
    "SLOConfig",
    "TraceConfig",
    "TrainingConfig",
    "TrainingJobConfig",
    "TrainingPolicyConfig",
]


def _unit(parse: Any) -> Any:
    def convert(v: Any) -> Any:
        return None if v is None else parse(v)

    return BeforeValidator(convert)


Duration = Annotated[float, _unit(units.parse_duration)]
Count = Annotated[float, _unit(units.parse_count)]
Bandwidth = Annotated[float, _unit(units.parse_bandwidth)]
Power = Annotated[float, _unit(units.parse_power)]


class Strict(BaseModel):
    """Base: frozen, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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

    topology: str | dict[str, Any]


# ---- training -----------------------------------------------------------------------------
class ParallelConfig(Strict):
    """Parallel plan of a training job (see :class:`~cluster_sim.workload.parallelism.ParallelPlan`).

    ``dp`` defaults to ``cards / (tp * pp * cp)``; ``microbatches`` to what the global batch needs.
    """

    tp: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)
    dp: int | None = Field(None, ge=1)
    ep: int = Field(1, ge=1)
    cp: int = Field(1, ge=1)
    microbatches: int | None = Field(None, ge=1)
    microbatch_size: int = Field(1, ge=1)
    virtual_stages: int = Field(1, ge=1)
    recompute: Literal["none", "selective", "full"] = "none"
    zero: Literal[0, 1, 2, 3] = 1
    sequence_parallel: bool = True
    dp_overlap: float = Field(0.8, ge=0.0, le=1.0)


class TrainingJobConfig(Strict):
    """One explicit training job."""

    name: str
    model: str
    cards: int = Field(ge=1)
    card_type: str | None = None
    allowed_types: list[str] | None = None
    parallel: ParallelConfig = Field(default_factory=ParallelConfig)
    seq_len: int = Field(2048, ge=1)
    global_batch_tokens: Count | None = None
    global_batch: int | None = Field(None, ge=1, description="sequences per step")
    tokens: Count | None = None
    duration: Duration | None = None
    submit: Duration = 0.0
    tenant: str = "default"
    priority: int = 0
    preemptible: bool = True
    checkpoint_interval: Duration | None = None
    dtype: Literal["bf16", "fp16", "fp8"] = "bf16"

    @model_validator(mode="after")
    def _batch(self) -> TrainingJobConfig:
        if self.global_batch is not None and self.global_batch_tokens is not None:
            raise ValueError("give global_batch (sequences) or global_batch_tokens, not both")
        return self


class GeneratorConfig(Strict):
    """Synthetic training jobs."""

    kind: Literal["industry_mix", "uniform"] = "industry_mix"
    jobs_per_hour: float | None = Field(None, gt=0)
    n_jobs: int | None = Field(None, ge=1)
    arrival: Literal["poisson", "gamma", "diurnal"] = "poisson"
    cv: float = Field(1.0, gt=0)
    params: dict[str, Any] = Field(default_factory=dict)


class TraceConfig(Strict):
    """Training jobs replayed from a cluster trace."""

    kind: str
    path: str
    nodes_path: str | None = None
    time_scale: float = Field(1.0, gt=0)
    max_jobs: int | None = Field(None, ge=1)


class TrainingConfig(Strict):
    """Training workload: explicit jobs and/or a generator and/or a trace."""

    jobs: list[TrainingJobConfig] = Field(default_factory=list)
    generator: GeneratorConfig | None = None
    trace: TraceConfig | None = None


# ---- inference ----------------------------------------------------------------------------
class SLOConfig(Strict):
    """Latency objectives; unset ones are not checked."""

    ttft: Duration | None = None
    tpot: Duration | None = None
    e2e: Duration | None = None


class PoolConfig(Strict):
    """A pool of identical replicas (one side of a PD-separated deployment)."""

    replicas: int = Field(ge=1)
    card_type: str
    tp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)


class DeploymentConfig(Strict):
    """Colocated replicas, or disaggregated prefill and decode pools (PD分离)."""

    mode: Literal["colocated", "disaggregated"] = "colocated"
    replicas: int | None = Field(None, ge=1)
    card_type: str | None = None
    tp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    prefill: PoolConfig | None = None
    decode: PoolConfig | None = None

    @model_validator(mode="after")
    def _shape(self) -> DeploymentConfig:
        if self.mode == "colocated" and (self.replicas is None or self.card_type is None):
            raise ValueError("colocated deployment needs replicas and card_type")
        if self.mode == "disaggregated" and (self.prefill is None or self.decode is None):
            raise ValueError("disaggregated deployment needs prefill and decode pools")
        return self


class ArrivalsConfig(Strict):
    """Request arrivals: a synthetic process with fitted lengths, or a trace replay."""

    kind: Literal["poisson", "gamma", "diurnal", "trace"] = "poisson"
    rate: float | None = Field(None, gt=0, description="requests per second")
    cv: float = Field(1.0, gt=0)
    peak_to_trough: float = Field(3.0, ge=1)
    lengths: str = "azure_conv"
    prompt_tokens: int | None = Field(None, ge=1)
    output_tokens: int | None = Field(None, ge=1)
    format: Literal["azure_llm", "mooncake"] | None = None
    path: str | None = None
    rate_scale: float = Field(1.0, gt=0)
    time_scale: float = Field(1.0, gt=0)
    sample: float | None = Field(None, gt=0)
    max_requests: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> ArrivalsConfig:
        if self.kind == "trace" and (self.format is None or self.path is None):
            raise ValueError("trace arrivals need format and path")
        if self.kind != "trace" and self.rate is None:
            raise ValueError(f"{self.kind} arrivals need a rate (requests per second)")
        return self


class ServiceConfig(Strict):
    """One inference service: a model, its SLOs, its deployment and its arrivals."""

    name: str
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
    pue: float = Field(1.2, ge=1.0, description="facility power / IT power, for energy metrics")
    timeline_interval: Duration | None = None


# ---- policies -----------------------------------------------------------------------------
class TrainingPolicyConfig(Strict):
    """The training scheduling cycle: admit -> order -> place -> preempt (+ backfill)."""

    admission: PolicyRef = _ref("accept_all")
    ordering: PolicyRef = _ref("fifo")
    placement: PolicyRef = _ref("packed")
    preemption: PolicyRef = _ref("none")
    backfill: bool | Literal["easy", "greedy"] = Field(False, description="true = EASY backfill")
    scheduler: str | None = None


class BatchingConfig(Strict):
    """Continuous batching knobs (vLLM-like)."""

    max_batch_tokens: int = Field(8192, ge=1)
    max_batch_seqs: int = Field(256, ge=1)
    chunked_prefill: bool = False
    chunk_tokens: int = Field(512, ge=1)
    on_kv_full: Literal["wait", "preempt"] = "wait"
    kv_watermark: float = Field(0.01, ge=0.0, lt=1.0, description="KV share kept free at admission")
    prefix_cache: bool = True
    prefix_cache_blocks: int | None = Field(None, ge=0, description="per replica; None = what KV allows")


class ServingPolicyConfig(Strict):
    """Serving policies."""

    routing: PolicyRef = _ref("round_robin")
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    autoscaling: PolicyRef = _ref("fixed")


class PolicyConfig(Strict):
    """All policy families."""

    training: TrainingPolicyConfig = Field(default_factory=TrainingPolicyConfig)
    serving: ServingPolicyConfig = Field(default_factory=ServingPolicyConfig)
    pool: PolicyRef = _ref("shared_pool")


class FailuresConfig(Strict):
    """Failures and restarts."""

    card_mtbf: Duration | None = None
    node_mtbf: Duration | None = None
    restart_delay: Duration = 600.0
    checkpoint_cost: Duration = 60.0
    checkpoint_interval: Duration | None = Field(None, description="None = the engine default (1 h)")


class ScalingConfig(Strict):
    """Scaling curve of one training job: linear speedup and MFU vs card count, per topology."""

    job: str | int = 0
    cards: list[Annotated[int, Field(ge=1)]] = Field(min_length=1)
    topologies: list[str | dict[str, Any]] = Field(default_factory=list, description="empty = cluster.topology")
    mode: Literal["weak", "strong"] = "weak"


class ExperimentConfig(Strict):
    """A whole experiment. Every section is optional except ``cluster``."""

    name: str = "experiment"
    description: str = ""
    seed: int = 0
    duration: Duration | None = None
    cluster: ClusterConfig
    training: TrainingConfig | None = None
    inference: InferenceConfig | None = None
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    failures: FailuresConfig | None = None
    scaling: ScalingConfig | None = None
    base_dir: str = Field(".", description="directory relative paths resolve against (set by the loader)")
