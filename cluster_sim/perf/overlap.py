"""Communication hidden behind compute, and the ZeRO / FSDP data-parallel traffic.

One rule for every overlap (tensor-parallel comm-GEMM overlap, overlapped pipeline sends,
expert-parallel all-to-all behind another micro-batch, ZeRO gathers behind layer compute)::

    hidden   = min(fraction * comm, window)     # window: the compute it can hide behind
    exposed  = comm - hidden
    slowdown = COMM_SM_SHARE * hidden           # compute loses the SMs communication takes

so a step with full overlap (``fraction = 1``) and ample compute costs
``max(compute, comm) + COMM_SM_SHARE * min(compute, comm)``, and ``fraction = 0`` leaves the
communication fully exposed (the sum). The data-parallel gradient all-reduce keeps its older
rule (``perf/training.py``, no SM term) so shipped defaults are unchanged.

ZeRO / FSDP (Rajbhandari et al., SC'20, section 5; PyTorch FSDP, Zhao et al., VLDB'23) over the
data-parallel group, per card with ``P`` parameter bytes held (16-bit) and ``g`` gradient bytes:

* stages 0 and 1 (Megatron's distributed optimizer): one gradient all-reduce per step (the
  reduce-scatter + parameter all-gather have the same volume), timed in ``perf/training.py``;
* stage 2 (FSDP ``SHARD_GRAD_OP``): gradients are kept sharded, so each micro-batch's backward
  reduce-scatters its gradients (``m`` reduce-scatters of ``g``), and the updated parameters are
  all-gathered once per step;
* stage 3 (FSDP ``FULL_SHARD``): each layer's parameters are all-gathered before its forward
  and again before its backward, and its gradients reduce-scattered after the backward, every
  micro-batch: ``m * layers * (2 AG(P / layers) + RS(g / layers))``; no step-level sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..network import collectives as coll
from ..topology.levels import CommLevel

__all__ = ["COMM_SM_SHARE", "Overlap", "ZeroTraffic", "hide", "zero_traffic"]

#: Share of a GPU's SMs that communication kernels take while overlapping compute: DeepSeek-V3
#: Technical Report (2024), section 3.2.2: 20 of the H800's 132 SMs drive the overlapped
#: all-to-all at full IB and NVLink bandwidth. Used for every card (an assumption off H800).
COMM_SM_SHARE = 20.0 / 132.0


@dataclass(frozen=True)
class Overlap:
    """One communication against the compute it overlaps: seconds hidden, exposed, lost."""

    comm_s: float
    hidden_s: float
    exposed_s: float
    slowdown_s: float


def hide(comm_s: float, fraction: float, window_s: float,
         sm_share: float | None = None) -> Overlap:
    """Hide ``fraction`` of ``comm_s`` behind at most ``window_s`` seconds of compute.

    ``sm_share`` defaults to :data:`COMM_SM_SHARE` (read at call time).

    >>> o = hide(2.0, 1.0, 5.0, sm_share=0.0)     # ample compute: nothing exposed
    >>> o.exposed_s, 5.0 + o.exposed_s + o.slowdown_s   # step = max(compute, comm)
    (0.0, 5.0)
    >>> hide(2.0, 0.0, 5.0).exposed_s             # no overlap: the sum
    2.0
    """
    for name, v in (("comm_s", comm_s), ("window_s", window_s)):
        if not v >= 0.0:
            raise ValueError(f"{name} must be >= 0, got {v!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"overlap fraction must be within [0, 1], got {fraction!r}")
    if sm_share is None:
        sm_share = COMM_SM_SHARE
    if not 0.0 <= sm_share < 1.0:
        raise ValueError(f"sm_share must be within [0, 1), got {sm_share!r}")
    hidden = min(fraction * comm_s, window_s)
    return Overlap(comm_s, hidden, comm_s - hidden, sm_share * hidden)


@dataclass(frozen=True)
class ZeroTraffic:
    """ZeRO stage 2/3 data-parallel communication of one card (seconds, unoverlapped).

    ``fwd_mb`` and ``bwd_mb`` happen in every micro-batch's forward and backward pass;
    ``step`` once per step outside them.
    """

    fwd_mb: float = 0.0
    bwd_mb: float = 0.0
    step: float = 0.0


def zero_traffic(zero: int, param_bytes: float, grad_bytes: float, layers: float,
                 levels: tuple[CommLevel, ...]) -> ZeroTraffic:
    """Per-micro-batch and per-step ZeRO-2/3 traffic over the data-parallel ``levels``.

    ``param_bytes`` and ``grad_bytes`` are what one card holds before sharding (its pipeline
    stage's tensor-parallel shard); ``layers`` the layers of its stage, the granularity of the
    stage-3 gathers. Stages 0 and 1 return zeros (the caller times their one all-reduce).
    """
    if zero == 2:
        return ZeroTraffic(bwd_mb=coll.reduce_scatter(grad_bytes, levels).time_s,
                           step=coll.all_gather(param_bytes, levels).time_s)
    if zero == 3:
        ag = coll.all_gather(param_bytes / layers, levels).time_s
        rs = coll.reduce_scatter(grad_bytes / layers, levels).time_s
        return ZeroTraffic(fwd_mb=layers * ag, bwd_mb=layers * (ag + rs))
    return ZeroTraffic()
