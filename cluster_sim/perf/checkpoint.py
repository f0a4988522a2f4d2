"""Checkpoint size and write time of a training job (issue #17 item 3).

What a checkpoint saves (mixed-precision Adam, DOMAIN.md section 5 memory formula): the BF16
weights (2 bytes per parameter) and the FP32 master weights, momentum and variance (12 bytes per
parameter) of the whole model, i.e. :data:`BYTES_PER_PARAM` = 14 bytes per parameter. The BF16
gradients (the other 2 of the 16 bytes/param held in memory) are not saved: they are recomputed
by the next step. Activations and the data-loader position are negligible and not counted.

Who writes. Each distinct shard is written once, in parallel, by the ranks that hold it: without
ZeRO a data-parallel replica holds the whole state, split over ``tp * pp`` ranks (experts over
``ep``), so ``tp * pp * ep`` ranks write; with ZeRO (any stage) the optimizer state is sharded over
the data-parallel group too and every rank holds a distinct shard, so ``tp * pp * dp`` ranks write.

Write time (one job alone): ``bytes / min(storage bandwidth, writer nodes x per-node write
bandwidth)`` (either bound may be absent = unlimited); when several jobs write at once the
storage bandwidth is shared max-min among them (the cluster engine, ``engine/cluster/checkpoints.py``).

An asynchronous (in-memory) checkpoint stalls the job only for the copy of each rank's shard to
host memory (``bytes per writer / host-copy bandwidth``); the persist to storage then runs in the
background and the next checkpoint cannot start before it ends.

>>> from cluster_sim.workload.models import model
>>> from cluster_sim.workload.parallelism import ParallelPlan
>>> ck = checkpoint_plan(model("gpt3-175b").total_params, ParallelPlan(tp=8, pp=8, dp=4, zero=0),
...                      cards_per_node=8)
>>> round(ck.bytes / 1e12, 2), ck.writers, ck.writer_nodes
(2.45, 64, 8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BYTES_PER_PARAM", "OPTIMIZER_BYTES_PER_PARAM", "WEIGHT_BYTES_PER_PARAM", "CheckpointPlan",
           "checkpoint_plan", "host_copy_s", "write_time_s"]

WEIGHT_BYTES_PER_PARAM = 2.0
"""BF16 weights (DOMAIN.md section 5)."""
OPTIMIZER_BYTES_PER_PARAM = 12.0
"""FP32 master weights, momentum and variance (ZeRO, Rajbhandari et al., SC'20, section 3.1: K = 12)."""
BYTES_PER_PARAM = WEIGHT_BYTES_PER_PARAM + OPTIMIZER_BYTES_PER_PARAM


@dataclass(frozen=True)
class CheckpointPlan:
    """One job's checkpoint: total ``bytes``, the ``writers`` (ranks holding distinct shards) and
    the ``writer_nodes`` they sit on."""

    bytes: float
    writers: int
    writer_nodes: int

    @property
    def bytes_per_writer(self) -> float:
        """Bytes each writing rank saves (and, asynchronously, copies to host memory)."""
        return self.bytes / self.writers


def checkpoint_plan(total_params: float, plan: Any, cards_per_node: int) -> CheckpointPlan:
    """The checkpoint of a model of ``total_params`` parameters under a parallel ``plan``
    (``tp``, ``pp``, ``dp``, ``ep``, ``zero``) on nodes of ``cards_per_node`` cards; the writers
    are packed on as few nodes as the job's ranks allow (tp inside a node, as placed)."""
    if not total_params > 0:
        raise ValueError(f"total_params must be > 0, got {total_params!r}")
    if cards_per_node < 1:
        raise ValueError(f"cards_per_node must be >= 1, got {cards_per_node!r}")
    ranks = plan.tp * plan.pp * plan.dp * getattr(plan, "cp", 1)
    writers = plan.tp * plan.pp * (plan.dp if plan.zero >= 1 else max(plan.ep, 1))
    writers = max(1, min(writers, ranks))
    nodes = min(math.ceil(writers / cards_per_node), math.ceil(ranks / cards_per_node))
    return CheckpointPlan(float(total_params) * BYTES_PER_PARAM, int(writers), int(nodes))


def write_time_s(nbytes: float, *, writer_nodes: int, node_write_bandwidth: float | None = None,
                 storage_bandwidth: float | None = None) -> float:
    """Seconds to write ``nbytes`` alone: ``bytes / min(storage, writer_nodes x node write)``
    (bytes/s; None = that bound unlimited; both None -> 0)."""
    caps = [b for b in (storage_bandwidth,
                        None if node_write_bandwidth is None else writer_nodes * node_write_bandwidth)
            if b is not None]
    for b in caps:
        if not b > 0:
            raise ValueError(f"bandwidth must be > 0, got {b!r}")
    return nbytes / min(caps) if caps else 0.0


def host_copy_s(bytes_per_writer: float, host_copy_bandwidth: float) -> float:
    """The stall of an asynchronous checkpoint: each rank copies its shard to host memory
    (device-to-host bandwidth per card, bytes/s)."""
    if not host_copy_bandwidth > 0:
        raise ValueError(f"host_copy_bandwidth must be > 0, got {host_copy_bandwidth!r}")
    return bytes_per_writer / host_copy_bandwidth
