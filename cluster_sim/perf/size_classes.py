"""Size classes of generated training jobs: a catalog model and a derived plan per job kind.

Generated and trace jobs (``workload/generators.py``, ``workload/traces``) carry a kind, a card
count and a run time, but no parallel plan. The cluster engine's speed model needs three facts
about such a job (docs/engine.md, "Speed"): its MFU at the reference placement, its throughput on
each card type relative to the reference type, and the share ``c`` of its step spent in exposed
communication with the scale-out part ``c_x`` of it. They come from
:func:`cluster_sim.perf.training.estimate_step` on a **size class**: a shipped model per kind
(:data:`SIZE_CLASSES`) under a plan derived from the card count and the scale-up domain
(:func:`class_plan`), on the first cards of the type in topology order (the packed reference
placement the job's ``duration_s`` is quoted for).

Size classes (``workload/data/models.toml``; the mix in ``workload/data/industry_mix.toml``):

* ``finetune``: ``llama3-8b``, a 7-8B dense model: the mix's fine-tunes are < 10B ([002] in the
  mix file), and Llama 3 8B / Qwen2.5 7B are 75% of them.
* ``mid``: ``qwen3-32b``: the mid class is "continued pretraining / full fine-tunes of 13-72B";
  32.8B is that span's geometric middle (sqrt(13 x 72) = 30.6B).
* ``pretrain``: ``llama3-70b``, a 70B-class dense model (the mix's most frequent pretraining model).
* ``trace``: ``qwen2.5-0.5b``: trace pods (Alibaba, Philly, Helios) are median 1 GPU, often a
  fraction of one; a 0.5B model trains on one card of every catalog type.

A class whose model does not fit the cards (memory, ``perf/memory.py``) takes the next model of
its fallback chain (smaller models, each listed in :data:`SIZE_CLASSES`), and the estimate says
so (``ClassEstimate.fallback``; the engine notes it in the run's summary). Nothing fits: None.

Plan (:func:`class_plan`): the smallest tensor-parallel degree (a power of two dividing the heads,
at most one scale-up domain) with which the model fits at ``pp = 1``; if none fits, TP fills the
domain and pipeline stages are added (fewest first); data parallelism takes the rest. ZeRO-1
(Megatron's distributed optimizer), selective recomputation, then full recomputation if nothing
fits. Micro-batches: the class's global batch (:data:`GLOBAL_BATCH_SEQS`) over ``dp`` sequences
per round, at least ``pp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..workload.jobs import KIND_FINETUNE, KIND_MID, KIND_NAMES, KIND_PRETRAIN, KIND_TRACE
from ..workload.models import ModelSpec, model
from ..workload.parallelism import ParallelPlan
from .memory import training_memory
from .training import estimate_step

__all__ = ["GLOBAL_BATCH_SEQS", "SEQ_LEN", "SIZE_CLASSES", "ClassEstimate", "class_estimate", "class_plan"]

SIZE_CLASSES: dict[int, tuple[str, ...]] = {
    KIND_FINETUNE: ("llama3-8b", "megatron-3.6b", "qwen2.5-0.5b"),
    KIND_MID: ("qwen3-32b", "llama2-13b", "llama3-8b", "megatron-3.6b", "qwen2.5-0.5b"),
    KIND_PRETRAIN: ("llama3-70b", "qwen3-32b", "llama2-13b", "llama3-8b", "megatron-3.6b", "qwen2.5-0.5b"),
    KIND_TRACE: ("qwen2.5-0.5b", "opt-125m"),
}
"""Per job kind: the size class's model, then its fallbacks (smaller) for card counts it does not fit."""

SEQ_LEN = 4096
"""Training sequence length of every size class: Llama 2's pretraining and SFT context (Touvron
et al. 2023, sections 2.2 and 3.1) and Llama 3's initial pretraining sequences (Llama Team 2024,
section 3.4.1)."""

GLOBAL_BATCH_SEQS: dict[int, int] = {
    KIND_FINETUNE: 64,     # Llama 2 SFT: batch 64 of 4096-token sequences (Touvron et al. 2023, 3.1)
    KIND_TRACE: 64,        # the same fine-tuning batch
    KIND_MID: 1024,        # 4M tokens: Llama 2 pretraining batch (Touvron et al. 2023, 2.2)
    KIND_PRETRAIN: 1024,   # 4M tokens: Llama 3's initial batch (Llama Team 2024, 3.4.1)
}
"""Global batch (sequences of :data:`SEQ_LEN`) per kind; micro-batches of one sequence."""


@dataclass(frozen=True)
class ClassEstimate:
    """One size class on one reference placement: the perf model's step and the engine's terms.

    ``comm`` is the exposed-communication share of the step (the breakdown's ``*_comm`` and
    ``pp_p2p``), ``scaleout`` the part of it that scales with the scale-out bandwidth: the step
    grows by ``scaleout`` of itself when the job's scale-out bandwidth halves
    (``estimate_step(scaleout_share=0.5)``), which is the engine's ``c_x / share`` term at
    ``share = 1/2``. ``0 <= scaleout <= comm``. ``fallback``: the class's own model did not fit.
    """

    kind: int
    cards: int
    card_type: str
    model: str
    plan: ParallelPlan
    step_time_s: float
    mfu: float
    comm: float
    scaleout: float
    fallback: bool


def _pow2_upto(n: int) -> list[int]:
    out, t = [], 1
    while t <= n:
        out.append(t)
        t *= 2
    return out


def class_plan(spec: ModelSpec, n: int, domain: int, hbm_bytes: float, kind: int) -> ParallelPlan | None:
    """The plan of ``spec`` on ``n`` cards with scale-up domains of ``domain`` cards (module
    docstring), or None when no plan fits ``hbm_bytes`` per card."""
    tps = [t for t in _pow2_upto(min(n, max(domain, 1))) if n % t == 0 and spec.heads % t == 0]
    shapes = [(t, 1) for t in tps]
    top = tps[-1]
    shapes += [(top, p) for p in range(2, n // top + 1) if (n // top) % p == 0 and p <= spec.layers]
    gb = GLOBAL_BATCH_SEQS.get(kind, GLOBAL_BATCH_SEQS[KIND_FINETUNE])
    for recompute in ("selective", "full"):
        for tp, pp in shapes:
            dp = n // (tp * pp)
            m = max(-(-gb // dp), pp)
            plan = ParallelPlan(tp=tp, pp=pp, dp=dp, microbatches=m,
                                recompute=recompute, zero=1)
            if training_memory(spec, plan, SEQ_LEN).total_bytes <= hbm_bytes:
                return plan
    return None


def class_estimate(topology: Any, kind: int, cards: np.ndarray, domain: int,
                   first: int = 0) -> ClassEstimate | None:
    """The size class of ``kind`` on ``cards`` (one type, in rank order) of ``topology``.

    ``domain`` is the scale-up domain size of the cards' type; ``first`` skips the class's first
    models (to compare two types with the same model). None when no model of the class fits (the
    caller falls back and notes it).
    """
    if kind not in SIZE_CLASSES:
        raise ValueError(f"class_estimate: no size class for kind {kind!r} "
                         f"({KIND_NAMES[kind] if 0 <= kind < len(KIND_NAMES) else '?'})")
    cards = np.asarray(cards, dtype=np.int64)
    acc = topology.accelerator(int(cards[0]))
    for k, name in enumerate(SIZE_CLASSES[kind]):
        if k < first:
            continue
        spec = model(name)
        plan = class_plan(spec, cards.size, domain, acc.hbm_bytes, kind)
        if plan is None:
            continue
        est = estimate_step(spec, plan, topology, cards, seq_len=SEQ_LEN, check_memory=False)
        comm = est.comm_fraction
        scaleout = 0.0
        if comm > 0.0 and cards.size > domain:
            half = estimate_step(spec, plan, topology, cards, seq_len=SEQ_LEN, scaleout_share=0.5,
                                 check_memory=False)
            scaleout = min(max(half.step_time_s / est.step_time_s - 1.0, 0.0), comm)
        return ClassEstimate(kind, int(cards.size), acc.name, spec.name, plan, est.step_time_s, est.mfu,
                             comm, scaleout, k > 0)
    return None
