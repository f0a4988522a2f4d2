"""The ``failures.checkpoint`` section on a :class:`~cluster_sim.engine.cluster.failures.FailureModel`, with each
explicit model job's checkpoint (size from the model and plan, ``perf/checkpoint.py``; write
time over the storage and its writer nodes' bandwidth; the host copy of an asynchronous one).

The flat ``failures.checkpoint_interval`` / ``checkpoint_cost`` give the same model as before
(no per-job sizes); the ``failures.checkpoint`` section (docs/faults_checkpoint.md) adds them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..config.plans import job_plan
from ..engine.cluster.failures import FailureModel, JobCheckpoint
from ..engine.cluster.layout import ClusterLayout
from ..perf.checkpoint import checkpoint_plan, host_copy_s, write_time_s
from ..workload.jobs import JobTable
from ..workload.models import model as model_spec

__all__ = ["with_checkpoint_section", "with_job_checkpoints"]


def with_checkpoint_section(fm: FailureModel, ck: Any) -> FailureModel:
    """``fm`` (built from the flat ``failures`` fields) with a ``failures.checkpoint`` section's
    interval, cost override, storage bandwidth and async flag (``ck`` None: ``fm`` unchanged)."""
    if ck is None:
        return fm
    return replace(fm, checkpoint_interval_s=ck.interval,
                   checkpoint_cost_s=fm.checkpoint_cost_s if ck.cost is None else ck.cost,
                   cost_explicit=ck.cost is not None, storage_bandwidth_Bps=ck.storage_bandwidth,
                   async_checkpoint=ck.async_)


def with_job_checkpoints(fm: FailureModel | None, cfg: Any, jobs: JobTable, layout: ClusterLayout
                         ) -> FailureModel | None:
    """``fm`` with the checkpoint of every explicit model job (``failures.checkpoint`` only)."""
    if fm is None or cfg.failures is None or cfg.failures.checkpoint is None or not cfg.training.jobs:
        return fm
    ck = cfg.failures.checkpoint
    per_node = int(np.bincount(np.asarray(layout.card_node)).max())
    ids = dict(zip(jobs.name.tolist(), jobs.job_id.tolist(), strict=True)) if jobs.name is not None else {}
    out: dict[int, JobCheckpoint] = {}
    for k, jc in enumerate(cfg.training.jobs):
        if not jc.model or jc.name not in ids:
            continue
        plan = job_plan(jc, f"training.jobs[{k}]")[0]
        cp = checkpoint_plan(model_spec(jc.model).total_params, plan, per_node)
        cap = math.inf if ck.node_write_bandwidth is None else cp.writer_nodes * ck.node_write_bandwidth
        alone = write_time_s(cp.bytes, writer_nodes=cp.writer_nodes, node_write_bandwidth=ck.node_write_bandwidth,
                             storage_bandwidth=ck.storage_bandwidth)
        copy = host_copy_s(cp.bytes_per_writer, ck.host_copy_bandwidth) if ck.async_ else 0.0
        if not ck.async_ and ck.storage_bandwidth is None and ck.node_write_bandwidth is None:
            alone = fm.checkpoint_cost_s   # nothing to compute a write time from
        out[int(ids[jc.name])] = JobCheckpoint(cp.bytes, cap, copy, copy if ck.async_ else alone)
    return replace(fm, jobs=out)
