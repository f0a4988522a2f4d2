"""What the serving engine runs: services, pools and options.

:class:`ServiceSpec` (a model's requests, SLOs and one pool — colocated — or two — prefill and
decode), :class:`PoolSpec` (replicas of one card type and parallel plan with their perf model,
or several :class:`ReplicaGroup` of different card types under the pool's one router) and
:class:`ServingOptions` (batching and recording knobs) are plain frozen dataclasses, so
tests and notebooks can build an engine without a config file;
``cluster_sim.experiment.build.services_from_config`` and ``options_from_config`` map an
experiment config onto them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ...errors import ConfigError
from ...perf.base import ReplicaPerfModel
from ...workload.requests import RequestTable

__all__ = ["PoolSpec", "ReplicaGroup", "ServiceSpec", "ServingOptions", "nan_if_none", "saturated_rate"]


@dataclass(frozen=True)
class ServingOptions:
    """Engine knobs (batching from ``policy.serving.batching``; the rest have documented defaults).

    Parameters
    ----------
    max_batch_tokens : int
        Prefill tokens per iteration (the first admitted prompt always fits).
    max_batch_seqs : int
        Requests per batch (prefilling + decoding).
    chunked_prefill : bool
        Sarathi/vLLM chunked prefill in colocated replicas: ``chunk_tokens`` per iteration.
    chunk_tokens : int
        Token budget of a chunked-prefill iteration (decodes count one each).
    on_kv_full : str
        ``wait``: reserve ``prompt + output`` KV at admission, new requests wait for room;
        ``preempt``: reserve as tokens are generated, preempt the newest request and recompute
        it later when the batch's growth fills the KV.
    kv_watermark : float
        Fraction of KV kept free at admission in ``preempt`` mode (vLLM: 0.01).
    prefix_cache : bool
        Model a prefix cache on replicas that prefill, for requests with block hashes.
    prefix_cache_blocks : int, optional
        Blocks per replica's cache; default ``kv_capacity_tokens // block_tokens``.
    horizon_s : float, optional
        Stop at this simulated time (requests not done are ``unfinished``); ``None`` drains.
    timeline_interval_s : float, optional
        Bin width of the time-weighted timeline; default span / 200.
    pue : float
        Facility power / IT power for energy (DOMAIN 3.4: 1.1-1.25; default 1.2).
    kv_latency_s : float
        Per-transfer latency without a topology (RDMA, a few microseconds).
    recent_requests : int
        Finished requests in the window the latency-driven autoscaler reads.
    """

    max_batch_tokens: int = 8192
    max_batch_seqs: int = 256
    chunked_prefill: bool = False
    chunk_tokens: int = 512
    on_kv_full: str = "wait"
    kv_watermark: float = 0.01
    prefix_cache: bool = True
    prefix_cache_blocks: int | None = None
    horizon_s: float | None = None
    timeline_interval_s: float | None = None
    pue: float = 1.2
    kv_latency_s: float = 5e-6
    recent_requests: int = 256

    def __post_init__(self) -> None:
        if self.on_kv_full not in ("wait", "preempt"):
            raise ConfigError(f"policy.serving.batching.on_kv_full: 'wait' or 'preempt', got {self.on_kv_full!r}")
        for name in ("max_batch_tokens", "max_batch_seqs", "chunk_tokens", "recent_requests"):
            if getattr(self, name) < 1:
                raise ConfigError(f"policy.serving.batching.{name}: must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.kv_watermark < 1.0:
            raise ConfigError(f"serving option kv_watermark: must be in [0, 1), got {self.kv_watermark!r}")

    @property
    def upfront(self) -> bool:
        """True when KV is reserved for the whole output at admission (``on_kv_full: wait``)."""
        return self.on_kv_full == "wait"


@dataclass(frozen=True)
class ReplicaGroup:
    """Replicas of one card type and parallel plan inside a multi-type pool (一云多芯).

    Parameters
    ----------
    card_type : str
        Catalog accelerator name (placement, cost, per-type metrics).
    replicas : int
        Replicas of this group.
    perf : ReplicaPerfModel
        Cost model of one replica of this group.
    tp, ep : int
        Parallel plan.
    """

    card_type: str
    replicas: int
    perf: ReplicaPerfModel
    tp: int = 1
    ep: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(f"replica group {self.card_type!r}: replicas must be >= 1, got {self.replicas}")

    @property
    def cards_per_replica(self) -> int:
        """Cards of one replica."""
        return int(getattr(self.perf, "cards", self.tp * self.ep))


@dataclass(frozen=True)
class PoolSpec:
    """Replicas of one pool.

    Parameters
    ----------
    kind : str
        ``colocated``, ``prefill`` or ``decode``.
    replicas : int
        Replicas provisioned (the autoscaling ceiling).
    perf : ReplicaPerfModel
        Cost model of one replica (:class:`~cluster_sim.perf.base.ReplicaPerfModel`:
        ``kv_capacity_tokens``, ``prefill_time_s``, ...).
    card_type : str
        Catalog accelerator name (placement, cost).
    tp, ep : int
        Parallel plan; a replica has ``perf.cards`` cards.
    replica_perfs : tuple, optional
        A perf model per replica (e.g. with placement-specific communication levels).
    slices : int
        Replicas per card (MIG-like slices; one-card replicas only): replica ``i`` is on card
        ``i // slices`` of the pool's ``replicas / slices`` cards (a multiple: a partitioned
        card has exactly ``slices`` replicas) and holds ``1 / slices`` of it (:mod:`cluster_sim.perf.slices` is its perf model).
    groups : tuple of ReplicaGroup, optional
        Several card types under this pool's one router (build with :meth:`of_groups`):
        replicas are numbered group by group in this order, which is also the autoscaling
        order (scale-up starts the lowest-numbered off replica, scale-down stops the
        highest-numbered one). Empty: every replica is ``card_type`` with ``perf``.
    """

    kind: str
    replicas: int
    perf: ReplicaPerfModel
    card_type: str = ""
    tp: int = 1
    ep: int = 1
    replica_perfs: tuple[ReplicaPerfModel, ...] | None = None
    slices: int = 1
    groups: tuple[ReplicaGroup, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("colocated", "prefill", "decode"):
            raise ConfigError(f"pool kind must be colocated, prefill or decode, got {self.kind!r}")
        if self.replicas < 1:
            raise ConfigError(f"{self.kind} pool: replicas must be >= 1, got {self.replicas}")
        if self.slices < 1 or (self.slices > 1 and self.cards_per_replica != 1) or self.replicas % self.slices:
            raise ConfigError(f"{self.kind} pool: slices must be >= 1, only for one-card replicas and divide "
                              f"the replicas, got slices={self.slices} with {self.replicas} replicas of "
                              f"{self.cards_per_replica} cards")
        if self.groups and self.slices != 1:
            raise ConfigError(f"{self.kind} pool: slices apply to a single-type pool, not to replica groups")
        if self.groups and sum(g.replicas for g in self.groups) != self.replicas:
            raise ConfigError(f"{self.kind} pool: replicas ({self.replicas}) must be the groups' sum "
                              f"({sum(g.replicas for g in self.groups)})")

    @classmethod
    def of_groups(cls, kind: str, groups: tuple[ReplicaGroup, ...] | list[ReplicaGroup]) -> PoolSpec:
        """A pool of several replica groups (the first group's type and plan stand for the pool
        where one value is needed)."""
        groups = tuple(groups)
        if not groups:
            raise ConfigError(f"{kind} pool: groups must not be empty")
        g0 = groups[0]
        return cls(kind, sum(g.replicas for g in groups), g0.perf, g0.card_type, g0.tp, g0.ep, groups=groups)

    @property
    def cards_per_replica(self) -> int:
        """Cards of one replica (of the first group in a multi-type pool)."""
        return int(getattr(self.perf, "cards", self.tp * self.ep))

    @property
    def cards(self) -> int:
        """Cards of the whole pool: ``replicas / slices x cards_per_replica`` (summed over the
        groups of a multi-type pool)."""
        if self.groups:
            return sum(g.replicas * g.cards_per_replica for g in self.groups)
        return self.replicas // self.slices * self.cards_per_replica

    @property
    def card_share(self) -> float | int:
        """Cards one replica holds: ``cards_per_replica``, or ``1 / slices`` of one."""
        return self.cards_per_replica if self.slices == 1 else 1.0 / self.slices

    def layout(self) -> tuple[ReplicaGroup, ...]:
        """The pool as replica groups (one group for a single-type pool)."""
        return self.groups or (ReplicaGroup(self.card_type, self.replicas, self.perf, self.tp, self.ep),)

    def group_of(self, i: int) -> ReplicaGroup:
        """The group replica ``i`` belongs to."""
        for g in self.groups:
            if i < g.replicas:
                return g
            i -= g.replicas
        return self.layout()[0]

    def perf_of(self, i: int) -> ReplicaPerfModel:
        """Perf model of replica ``i``."""
        if self.replica_perfs is not None:
            return self.replica_perfs[i]
        return self.group_of(i).perf if self.groups else self.perf


@dataclass(frozen=True)
class ServiceSpec:
    """One inference service: its requests, SLOs and pools (one colocated, or prefill + decode).

    ``overlong``: what to do with a request longer than ``max_context`` — ``reject`` (default)
    or ``truncate`` its prompt to fit (:mod:`cluster_sim.engine.serving.admission`).
    ``meta["where"]`` names the service in notes (``inference.services[0] chat``).
    """

    name: str
    requests: RequestTable
    pools: tuple[PoolSpec, ...]
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None
    slo_e2e_s: float | None = None
    max_context: int | None = None
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)
    overlong: str = "reject"

    def __post_init__(self) -> None:
        kinds = tuple(p.kind for p in self.pools)
        if kinds not in (("colocated",), ("prefill", "decode")):
            raise ConfigError(f"service {self.name!r}: pools must be (colocated,) or (prefill, decode), got {kinds}")
        if self.overlong not in ("reject", "truncate"):
            raise ConfigError(f"service {self.name!r}: overlong must be 'reject' or 'truncate', got {self.overlong!r}")
        if self.max_context is not None and self.max_context < 1:
            raise ConfigError(f"service {self.name!r}: max_context must be >= 1, got {self.max_context!r}")

    @property
    def disaggregated(self) -> bool:
        """True for PD-separated services."""
        return len(self.pools) == 2


def saturated_rate(perf: Any, prompt_tokens: float, output_tokens: float, max_batch_seqs: int) -> float:
    """Requests per second one replica serves at saturation, from its perf model: a full batch
    of ``b`` requests of the mean lengths (``b`` = ``max_batch_seqs``, or fewer when the KV cache
    holds fewer whole requests) is prefilled one prompt at a time, then decoded together for
    ``output_tokens`` iterations; the rate is ``b`` over that time. The routers' speed of a
    replica in a pool of unequal replicas (:class:`~cluster_sim.engine.serving.pools.ServingPool`).
    """
    p = max(int(round(prompt_tokens)), 1)
    o = max(int(round(output_tokens)), 1)
    b = max(1, min(int(max_batch_seqs), int(perf.kv_capacity_tokens) // (p + o)))
    t = b * float(perf.prefill_time_s(p)) + float(perf.decode_stretch_s(b, float(b * p), o))
    return b / t if t > 0 else math.inf


def nan_if_none(x: float | None) -> float:
    """``x`` or NaN."""
    return math.nan if x is None else float(x)
