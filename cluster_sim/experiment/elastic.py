"""Elastic training jobs from the config (issue #17 item 2; the engine side is
``engine/cluster/elastic.py``): which jobs may shrink after a failure, to how few cards, in which
steps, and the parallel plan of a model job on fewer cards.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..rng import Streams
from ..workload.jobs import KIND_OFFLINE, KIND_TRACE, JobTable
from ..workload.parallelism import ParallelPlan

__all__ = ["elastic_jobs", "shrunk_plan"]


def shrunk_plan(plan: ParallelPlan, cards: int) -> tuple[ParallelPlan, float]:
    """``plan`` on ``cards`` (a multiple of ``tp x pp x cp``): fewer data-parallel replicas, each
    running more micro-batches so the global batch stays (rounded up to whole micro-batches).
    Returns the plan and ``new global batch / old global batch`` (1 when the replicas divide it)."""
    unit = plan.tp * plan.pp * plan.cp
    dp = cards // unit
    if dp < 1 or dp * unit != cards:
        raise ValueError(f"shrunk_plan: {cards} cards is not a multiple of tp*pp*cp = {unit}")
    m = math.ceil(plan.microbatches * plan.dp / dp)
    new = dataclasses.replace(plan, dp=dp, microbatches=m)
    return new, dp * m / (plan.dp * plan.microbatches)


def elastic_jobs(cfg: Any, jobs: JobTable, streams: Streams) -> dict[int, tuple[int, int]]:
    """``{job_id: (min_cards, granularity)}`` of the elastic jobs: explicit jobs with
    ``elastic: true`` (granularity ``tp x pp x cp``; ``min_cards`` default half the cards) and,
    with ``training.generator.elastic_fraction``, each eligible generated job (whole cards, at
    least 2 of them, not a trace or offline job) with that probability, drawn from its own
    stream ``"elastic"`` (granularity 1, ``min_cards`` half the cards).

    Raises
    ------
    ConfigError
        ``training.jobs[k].elastic`` when the job has no size to shrink to (its granularity
        leaves no multiple in ``[min_cards, cards)``).
    """
    tc = cfg.training
    out: dict[int, tuple[int, int]] = {}
    if tc is None:
        return out
    names = jobs.name.tolist() if jobs.name is not None else []
    row_of = {nm: r for r, nm in enumerate(names)}
    for k, jc in enumerate(tc.jobs):
        if not jc.elastic:
            continue
        where = f"training.jobs[{k}]"
        p = jc.parallel
        g = p.tp * p.pp * p.cp
        lo = jc.min_cards if jc.min_cards is not None else max(1, jc.cards // 2)
        biggest = (jc.cards - 1) // g * g   # the largest size below its cards
        if biggest < max(lo, 1):
            raise ConfigError(f"{where}.elastic: job {jc.name!r} cannot shrink: its {jc.cards} cards in "
                              f"steps of tp*pp*cp = {g} leave no size >= min_cards = {lo}")
        out[int(jobs.job_id[row_of[jc.name]])] = (lo, g)
    gen = tc.generator
    if gen is not None and gen.elastic_fraction > 0:
        explicit = set(row_of[jc.name] for jc in tc.jobs) if tc.jobs else set()
        n = len(jobs)
        draw = streams["elastic"].random(n)
        ok = ((jobs.num_cards >= 2) & (jobs.card_milli >= 1000) & (jobs.kind != KIND_TRACE)
              & (jobs.kind != KIND_OFFLINE) & (draw < gen.elastic_fraction))
        for r in np.flatnonzero(ok).tolist():
            if r not in explicit:
                out[int(jobs.job_id[r])] = (max(1, int(jobs.num_cards[r]) // 2), 1)
    return out
