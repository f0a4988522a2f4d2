"""``training.offline_jobs`` -> cluster-engine jobs whose run time is the serving perf model's.

Each offline job becomes one :class:`~cluster_sim.workload.jobs.JobTable` row of kind
``offline_inference`` (``duration_s`` = :func:`~cluster_sim.perf.offline.offline_schedule` on its
reference card type), a speed hook (:class:`OfflineJobSpeed`: the same closed form on the card
types it was actually given) and a work quantum (one batch: what an eviction loses at most).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from ..engine.cluster.state import ClusterLayout
from ..errors import ClusterSimError, ConfigError
from ..perf.inference import ReplicaPerf
from ..perf.offline import OfflineSchedule, offline_schedule
from ..workload.jobs import KIND_NAMES, KIND_OFFLINE, JobTable, TrainingJob
from ..workload.models import model as model_spec

__all__ = ["OfflineJobSpeed", "OfflineJobs", "offline_jobs"]


class OfflineJobSpeed:
    """Speed hook of an offline job (a :class:`~cluster_sim.perf.base.TrainingStepModel`).

    The job's ``cards`` are ``replicas`` consecutive groups of ``tp``; a group runs at its
    slowest card type's pace (its duration ``D_t``, the closed form on type ``t``). Replicas
    share the requests, so the job's speed relative to the reference is ``D_ref * mean(1 / D_r)``
    (``D_ref / D_t`` on one type). Replicas do not talk to each other: ``share`` is ignored.
    MFU is not a training quantity here (NaN).
    """

    def __init__(self, ref_s: float, duration_by_type: np.ndarray, card_type: np.ndarray, tp: int) -> None:
        self.ref_s, self.tp = ref_s, tp
        self.duration_by_type = duration_by_type
        self.card_type = card_type

    def __call__(self, cards: Any, share: float) -> tuple[float, float]:
        d = self.duration_by_type[self.card_type[np.asarray(cards, np.int64)]]
        per_replica = d.reshape(-1, self.tp).max(axis=1)
        return float(self.ref_s * np.mean(1.0 / per_replica)), float("nan")


class OfflineJobs:
    """The offline jobs of one config: ``table`` (their rows), ``hooks``, ``quantum_s`` (by name)
    and ``meta`` (by name: the reference schedule as numbers, for the summary)."""

    def __init__(self) -> None:
        self.specs: list[TrainingJob] = []
        self.hooks: dict[str, OfflineJobSpeed] = {}
        self.quantum_s: dict[str, float] = {}
        self.meta: dict[str, dict[str, Any]] = {}

    @property
    def table(self) -> JobTable:
        return JobTable.from_jobs(self.specs)


def _schedule(jc: Any, where: str, ctype: str) -> OfflineSchedule:
    try:
        perf = ReplicaPerf(jc.model, ctype, tp=jc.tp, dtype=jc.dtype, kv_dtype=jc.kv_dtype)
    except ClusterSimError as exc:
        raise ConfigError(f"{where}.tp: {jc.model} does not fit {jc.tp} {ctype} card(s) per replica: {exc}") from None
    try:
        return offline_schedule(perf, requests=jc.requests, prompt=jc.prompt_tokens, output=jc.output_tokens,
                                replicas=jc.cards // jc.tp, max_batch_seqs=jc.max_batch,
                                max_batch_tokens=jc.max_batch_tokens)
    except ConfigError as exc:
        raise ConfigError(f"{where}.prompt_tokens: on {jc.tp} {ctype} card(s) per replica, {exc}") from None


def offline_jobs(cfg: Any, layout: ClusterLayout) -> OfflineJobs:
    """Rows, hooks, quanta and summary facts of ``cfg.training.offline_jobs`` on ``layout``.

    Raises
    ------
    ConfigError
        ``training.offline_jobs[k].<field>: ...``: a card type the cluster lacks, a model that does
        not fit ``tp`` cards of a type the job may run on, requests longer than the model's context
        or than a replica's KV cache.
    """
    out = OfflineJobs()
    counts = layout.capacity_by_type()
    card_type = np.asarray(layout.card_type, np.int64)
    for k, jc in enumerate(cfg.training.offline_jobs):
        where = f"training.offline_jobs[{k}]"
        try:
            max_ctx = model_spec(jc.model).max_context
        except ClusterSimError as exc:
            raise ConfigError(f"{where}.model: {exc}") from None
        if jc.prompt_tokens + jc.output_tokens > max_ctx:
            raise ConfigError(f"{where}.output_tokens: prompt_tokens + output_tokens = "
                              f"{jc.prompt_tokens + jc.output_tokens:,} exceeds {jc.model}'s context of {max_ctx:,}")
        types = list(jc.allowed_types or ([jc.card_type] if jc.card_type else []))
        field = "allowed_types" if jc.allowed_types else "card_type"
        for t in types:
            if t not in counts:
                raise ConfigError(f"{where}.{field}: {t!r} is not in the cluster; it has: {', '.join(sorted(counts))}")
        ref_type = jc.card_type or (types[0] if types else max(sorted(counts), key=lambda t: counts[t]))
        dur = np.full(len(layout.card_types), np.inf)
        ref = None
        for t in types or sorted(counts):
            s = _schedule(jc, where, t)
            dur[layout.card_types.index(t)] = s.duration_s
            if t == ref_type:
                ref = s
        assert ref is not None  # ref_type is one of the types just scheduled
        out.specs.append(TrainingJob(
            name=jc.name, model=jc.model, cards=jc.cards, card_type=jc.card_type, allowed_types=tuple(types),
            tokens=float(jc.requests * (jc.prompt_tokens + jc.output_tokens)), duration_s=ref.duration_s,
            submit_s=jc.submit, tenant=jc.tenant, priority=jc.priority, preemptible=jc.preemptible,
            kind=KIND_NAMES[KIND_OFFLINE], deferrable=jc.deferrable, deadline_s=jc.deadline))
        out.hooks[jc.name] = OfflineJobSpeed(ref.duration_s, dur, card_type, jc.tp)
        out.quantum_s[jc.name] = ref.batch_s
        out.meta[jc.name] = {**asdict(ref), "reference_type": ref_type, "cards": jc.cards,
                             "prompt_tokens": jc.prompt_tokens, "output_tokens": jc.output_tokens}
    return out
