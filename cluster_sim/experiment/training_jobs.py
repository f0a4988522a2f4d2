"""Explicit training jobs of an experiment -> step-time estimates and scaling curves.

A :class:`~cluster_sim.config.schema.TrainingJobConfig` plus a topology becomes a model, a
:class:`~cluster_sim.workload.parallelism.ParallelPlan` and a set of cards, then one call of
:func:`cluster_sim.perf.training.estimate_step`. Defaults (DESIGN.md 4):

* ``dp`` = cards / (tp * pp * cp), which must divide;
* micro-batches from ``global_batch`` (sequences) or ``global_batch_tokens`` when given
  (rounded to whole micro-batches, with a note), else ``8 * pp`` (1 without pipelining; the
  cluster engine uses the same default);
* cards: the first ``cards`` of ``card_type`` in topology order (packed by domain and leaf).

Every error names the job's config path, e.g.
``training.jobs[1].model: unknown model 'gpt5'; known: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import catalog
from ..config.plans import BATCH_TOLERANCE, DEFAULT_MICROBATCHES_PER_STAGE, job_plan, requalify
from ..config.schema import ExperimentConfig, TrainingJobConfig
from ..errors import ClusterSimError, ConfigError
from ..perf.training import ScalingPoint, TrainingEstimate, estimate_step, pick_cards, scaling_curve
from ..units import GIB
from ..workload.models import ModelSpec, model

__all__ = [
    "BATCH_TOLERANCE",
    "DEFAULT_MICROBATCHES_PER_STAGE",
    "JobEstimate",
    "ScalingSpec",
    "estimate_job",
    "estimate_jobs",
    "job_plan",
    "scaling_frame",
    "scaling_for_job",
]

@dataclass(frozen=True)
class JobEstimate:
    """The step-time estimate of one explicit training job, with days to train its tokens."""

    name: str
    where: str
    estimate: TrainingEstimate
    tokens: float | None = None
    days_to_train: float | None = None
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The ``cluster-sim train --json`` record (DESIGN.md 4) plus plan, cards and memory."""
        e = self.estimate
        return {
            "step_time_s": e.step_time_s, "breakdown": e.breakdown.as_dict(),
            "tokens_per_s": e.tokens_per_s, "tflops_per_card": e.tflops_per_card, "mfu": e.mfu,
            "days_to_train": self.days_to_train,
            "model": e.model, "cards": e.cards, "card_types": list(e.card_types),
            "plan": {k: getattr(e.plan, k) for k in ("tp", "pp", "dp", "ep", "cp", "microbatches",
                                                     "microbatch_size", "virtual_stages", "recompute", "zero")},
            "seq_len": e.seq_len, "global_batch": e.global_batch, "tokens": self.tokens,
            "memory_per_card_gib": {k: v / GIB for k, v in e.memory.as_dict().items()},
            "memory_capacity_gib": e.memory_capacity_bytes / GIB,
            "notes": [*self.notes, *e.notes],
        }


def _job_model(job: TrainingJobConfig, where: str) -> ModelSpec:
    try:
        return model(job.model)
    except ClusterSimError as exc:
        raise type(exc)(f"{where}.model: {exc}") from None


def _card_type(job: TrainingJobConfig, topology: Any, where: str) -> str | None:
    """The card type the job runs on (``None``: the first cards of any type)."""
    if job.card_type is not None:
        wanted, label = [job.card_type], f"{where}.card_type"
    elif job.allowed_types:
        wanted, label = list(job.allowed_types), f"{where}.allowed_types"
    else:
        return None
    by_type = topology.cards_by_type()
    names = []
    for t in wanted:
        try:
            names.append(catalog.accelerator(t).name)
        except ClusterSimError as exc:
            raise type(exc)(f"{label}: {exc}") from None
    for name in names:
        if name in by_type and len(by_type[name]) >= job.cards:
            return name
    have = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_type.items()))
    raise ConfigError(f"{label}: the job needs {job.cards} cards of {' or '.join(names)}; "
                      f"topology {topology.name!r} has {have}")


def estimate_job(job: TrainingJobConfig, topology: Any, where: str = "training.jobs[0]") -> JobEstimate:
    """Step time, MFU and days to train of one explicit job on ``topology``."""
    spec = _job_model(job, where)
    plan, notes = job_plan(job, where)
    card_type = _card_type(job, topology, where)
    if card_type is None and job.cards > topology.n_cards:
        raise ConfigError(f"{where}.cards: the job needs {job.cards} cards; topology {topology.name!r} "
                          f"has {topology.n_cards}")
    try:
        cards = pick_cards(topology, job.cards, card_type)
        est = estimate_step(spec, plan, topology, cards, seq_len=job.seq_len, dtype=job.dtype)
    except ClusterSimError as exc:
        raise requalify(exc, where) from None
    days = est.days_to_train(job.tokens) if job.tokens else None
    return JobEstimate(name=job.name, where=where, estimate=est, tokens=job.tokens, days_to_train=days,
                       notes=notes)


def estimate_jobs(cfg: ExperimentConfig, topology: Any) -> tuple[JobEstimate, ...]:
    """Estimates of every explicit job in ``cfg.training.jobs`` (names must be unique)."""
    jobs = cfg.training.jobs if cfg.training is not None else []
    seen: dict[str, int] = {}
    for i, job in enumerate(jobs):
        if job.name in seen:
            raise ConfigError(f"training.jobs[{i}].name: duplicate job name {job.name!r} "
                              f"(also training.jobs[{seen[job.name]}])")
        seen[job.name] = i
    return tuple(estimate_job(job, topology, f"training.jobs[{i}]") for i, job in enumerate(jobs))


# ---- scaling ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScalingSpec:
    """A scaling curve request: one job of the experiment at several card counts and topologies.

    Parameters
    ----------
    cards : sequence of int
        Card counts; each a multiple of the job's tp*pp*cp. The smallest is ``N0``.
    topologies : sequence of str or mapping
        Topology files or inline specs to compare; empty = the experiment's own topology.
    mode : str
        'weak' (micro-batches per rank fixed, the global batch grows) or 'strong'.
    job : str or int
        Name or index of the job in ``training.jobs``.
    """

    cards: tuple[int, ...]
    topologies: tuple[str | Mapping[str, Any], ...] = ()
    mode: str = "weak"
    job: str | int = 0

    @classmethod
    def from_config(cls, section: Any) -> ScalingSpec | None:
        """From the experiment's ``scaling`` section (an object or a dict), or ``None``."""
        if section is None:
            return None
        get = section.get if isinstance(section, Mapping) else lambda k, d=None: getattr(section, k, d)
        return cls(cards=tuple(int(c) for c in get("cards", ())),
                   topologies=tuple(get("topologies", ()) or ()), mode=str(get("mode", "weak")),
                   job=get("job", 0))

    def pick(self, cfg: ExperimentConfig) -> tuple[int, TrainingJobConfig]:
        """The (index, job) the curve is for."""
        jobs = cfg.training.jobs if cfg.training is not None else []
        if not jobs:
            raise ConfigError("scaling: needs a training job (training.jobs is empty)")
        if isinstance(self.job, int):
            if not 0 <= self.job < len(jobs):
                raise ConfigError(f"scaling.job: no training.jobs[{self.job}] (there are {len(jobs)})")
            return self.job, jobs[self.job]
        for i, j in enumerate(jobs):
            if j.name == self.job:
                return i, j
        raise ConfigError(f"scaling.job: no training job named {self.job!r}; have: "
                          f"{', '.join(j.name for j in jobs)}")


def scaling_for_job(
    job: TrainingJobConfig,
    topology: Any,
    card_counts: Sequence[int],
    *,
    mode: str = "weak",
    where: str = "training.jobs[0]",
) -> tuple[list[ScalingPoint], tuple[str, ...]]:
    """Scaling curve of ``job``'s plan (dp grows with the cards) on one topology, plus notes.

    Counts above the topology's size are dropped with a note; none left is an error.
    """
    spec = _job_model(job, where)
    plan, _ = job_plan(job, where)
    card_type = _card_type(job.model_copy(update={"cards": 1}), topology, where)
    avail = len(topology.cards_by_type()[card_type]) if card_type else topology.n_cards
    counts = sorted({int(c) for c in card_counts})
    if not counts or counts[0] < 1:
        raise ConfigError("scaling.cards: give positive card counts, e.g. 8,64,512")
    kept = [c for c in counts if c <= avail]
    notes = []
    if len(kept) < len(counts):
        notes.append(f"scaling on {topology.name}: dropped {[c for c in counts if c > avail]} "
                     f"(the topology has {avail} {card_type or 'cards'})")
    if not kept:
        raise ConfigError(f"scaling.cards: every count exceeds the {avail} cards of topology {topology.name!r}")
    try:
        points = scaling_curve(spec, plan, topology, kept, mode=mode, card_type=card_type,
                               seq_len=job.seq_len, dtype=job.dtype)
    except ClusterSimError as exc:
        raise type(exc)(f"scaling ({job.name} on {topology.name}): {exc}") from None
    return points, tuple(notes)


def scaling_frame(points: Sequence[ScalingPoint]) -> pd.DataFrame:
    """Scaling points as a DataFrame (``cards, dp, step_time_s, tokens_per_s, mfu, speedup,
    linear_speedup, ...``), one row per card count."""
    return pd.DataFrame([p.as_dict() for p in points])

