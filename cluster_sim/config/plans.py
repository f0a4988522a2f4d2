"""A training job's parallel plan from its config: ``dp`` and micro-batches filled in, strictly.

One implementation for the experiment layer (estimates, ``cluster-sim train``) and the cluster
engine (explicit model jobs), so the two never derive different plans from one file.
"""

from __future__ import annotations

from ..errors import ClusterSimError, ConfigError
from ..units import fmt_count
from ..workload.parallelism import ParallelPlan
from .schema import TrainingJobConfig

__all__ = ["BATCH_TOLERANCE", "DEFAULT_MICROBATCHES_PER_STAGE", "job_plan", "requalify"]

DEFAULT_MICROBATCHES_PER_STAGE = 8
"""Micro-batches per pipeline stage when no global batch is given (bubble (p-1)/(m+p-1) < 11%)."""

BATCH_TOLERANCE = 0.10
"""Largest relative gap between a requested global batch and explicit micro-batches ("4M" tokens
vs 512 x 8192 = 4.19M is fine, with a note; a larger gap is a contradiction)."""


def requalify(exc: ClusterSimError, where: str) -> ClusterSimError:
    """The same error class with ``where`` prefixed (``parallel.tp: ...`` -> ``<where>.parallel.tp: ...``)."""
    msg = str(exc)
    if msg.startswith("training.") or msg.startswith(where):
        return exc
    sep = "." if msg.startswith("parallel") else ": "
    return type(exc)(f"{where}{sep}{msg}")



def job_plan(job: TrainingJobConfig, where: str = "training.jobs[0]") -> tuple[ParallelPlan, tuple[str, ...]]:
    """The job's :class:`ParallelPlan` with ``dp`` and micro-batches filled in, plus notes.

    Raises
    ------
    ConfigError
        When tp*pp*cp does not divide the cards, an explicit ``dp`` does not match them, or
        the global batch does not fit the plan.
    """
    p = job.parallel
    unit = p.tp * p.pp * p.cp
    if p.dp is None:
        if job.cards % unit:
            raise ConfigError(f"{where}.parallel: tp*pp*cp = {unit} does not divide the job's {job.cards} cards")
        dp = job.cards // unit
    else:
        dp = p.dp
        if dp * unit != job.cards:
            raise ConfigError(f"{where}.parallel: tp*pp*dp*cp = {p.tp}*{p.pp}*{dp}*{p.cp} = {dp * unit} "
                              f"does not match the job's {job.cards} cards")
    notes: list[str] = []
    per = dp * p.microbatch_size  # sequences per micro-batch round
    if job.global_batch is not None:
        seqs, field_name = float(job.global_batch), "global_batch"
        asked = f"{job.global_batch} sequences"
    elif job.global_batch_tokens is not None:
        seqs, field_name = job.global_batch_tokens / job.seq_len, "global_batch_tokens"
        asked = f"{fmt_count(job.global_batch_tokens)} tokens"
    else:
        seqs, field_name, asked = None, "", ""
    if p.microbatches is not None:
        m = p.microbatches
        if seqs is not None and abs(m * per - seqs) > BATCH_TOLERANCE * seqs:
            raise ConfigError(
                f"{where}.parallel.microbatches: {m} micro-batches x dp={dp} x microbatch_size="
                f"{p.microbatch_size} = {m * per} sequences contradicts {field_name} = {asked} "
                f"({seqs:.6g} sequences of {job.seq_len})")
    elif seqs is not None:
        m = int(round(seqs / per))
        if m < 1:
            raise ConfigError(f"{where}.{field_name}: {asked} = {seqs:.6g} sequences is less than one "
                              f"micro-batch per data-parallel rank (dp={dp} x microbatch_size={p.microbatch_size})")
    else:
        m = 1 if p.pp == 1 else DEFAULT_MICROBATCHES_PER_STAGE * p.pp
        notes.append(f"{where}: no global batch given; using {m} micro-batches per step "
                     f"({m * per} sequences)")
    if seqs is not None and abs(m * per - seqs) > 1e-9 * seqs:
        notes.append(f"{where}: global batch is {m * per} sequences = {fmt_count(m * per * job.seq_len)} "
                     f"tokens ({m} micro-batches x dp={dp} x {p.microbatch_size}); {field_name} asked {asked}")
    try:
        plan = ParallelPlan(tp=p.tp, pp=p.pp, dp=dp, ep=p.ep, cp=p.cp, microbatches=m,
                            microbatch_size=p.microbatch_size, virtual_stages=p.virtual_stages,
                            recompute=p.recompute, zero=p.zero, sequence_parallel=p.sequence_parallel,
                            dp_overlap=p.dp_overlap, tp_overlap=p.tp_overlap,
                            pp_overlap=p.pp_overlap, ep_overlap=p.ep_overlap,
                            attention_kernel=p.attention_kernel,
                            microbatch_overhead_s=p.microbatch_overhead)
    except ClusterSimError as exc:
        raise requalify(exc, where) from None
    return plan, tuple(notes)
