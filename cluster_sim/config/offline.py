"""``training.offline_jobs[*]``: offline (batch) inference jobs, run by the cluster engine.

They sit under ``training`` because the cluster engine runs them (placed, queued, preempted by
``policy.training``, held for cheap hours by ``policy.training.offpeak``, evicted and lent cards
by the pool policies), while their run time comes from the serving perf model
(:mod:`cluster_sim.perf.offline`). Their fields are an inference replica's (model, ``tp``,
``dtype``, request lengths, batch limits), not a training job's (no parallel plan, sequence
length or token budget), so they are a list of their own rather than a ``kind`` of
``training.jobs``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .fields import (
    MAX_BATCH_SEQS,
    MAX_BATCH_TOKENS,
    MAX_CARDS,
    MAX_TOKENS,
    Duration,
    Name,
    PosDuration,
    Strict,
)

__all__ = ["OfflineJobConfig"]

MAX_REQUESTS = 10_000_000_000  # a count, never a table: no memory per request


class OfflineJobConfig(Strict):
    """One offline inference job: ``requests`` requests of ``prompt_tokens`` + ``output_tokens``
    tokens for ``model`` on ``cards`` cards, ``cards / tp`` independent replicas of ``tp`` cards."""

    name: Name
    model: str
    requests: int = Field(ge=1, le=MAX_REQUESTS)
    prompt_tokens: int = Field(ge=1, le=MAX_TOKENS)
    output_tokens: int = Field(ge=1, le=MAX_TOKENS)
    cards: int = Field(ge=1, le=MAX_CARDS)
    tp: int = Field(1, ge=1, le=MAX_CARDS, description="tensor-parallel cards per replica")
    card_type: str | None = None
    allowed_types: list[str] | None = None
    dtype: Literal["bf16", "fp16", "fp8", "int8"] = "bf16"
    kv_dtype: Literal["bf16", "fp16", "fp8", "int8"] | None = Field(
        None, description="KV cache element type (default: dtype)")
    max_batch: int = Field(256, ge=1, le=MAX_BATCH_SEQS, description=(
        "requests per batch at most (default: the serving engine's max_batch_seqs default)"))
    max_batch_tokens: int = Field(8192, ge=1, le=MAX_BATCH_TOKENS, description=(
        "prefill tokens per iteration (default: the serving engine's max_batch_tokens default)"))
    submit: Duration = 0.0
    tenant: Name = "default"
    priority: int = Field(0, ge=-128, le=127)
    preemptible: bool = True
    deferrable: bool = Field(False, description="an off-peak policy (policy.training.offpeak) may hold it")
    deadline: PosDuration | None = Field(None, description="finish by submit + deadline (None = no deadline)")

    @model_validator(mode="after")
    def _replicas(self) -> OfflineJobConfig:
        if self.cards % self.tp:
            raise ValueError(f"cards: {self.cards} is not a multiple of tp {self.tp} "
                             "(the job runs cards / tp replicas)")
        if self.card_type and self.allowed_types and self.card_type not in self.allowed_types:
            raise ValueError(f"card_type: {self.card_type!r} is not in allowed_types {self.allowed_types}")
        return self
