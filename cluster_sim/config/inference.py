"""``inference:``: services, their SLOs, deployments (colocated replicas, one or several card
types, MIG-like slices; or PD-separated prefill and decode pools) and request arrivals."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from .fields import (
    CV,
    MAX_REQUEST_RATE,
    MAX_REQUESTS,
    MAX_TOKENS,
    MIN_TIMELINE_INTERVAL_S,
    Cards,
    Duration,
    Name,
    PosDuration,
    Scale,
    Strict,
    no_duplicates,
)

__all__ = ["ArrivalsConfig", "DeploymentConfig", "InferenceConfig", "PoolConfig", "SLOConfig", "ServiceConfig"]


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
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = Field(
        None, description="KV cache element type (default: dtype); fp8 halves a bf16 cache's bytes per token")
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
        no_duplicates([s.name for s in self.services], "inference.services")
        return self
