"""Training memory per card: weights, gradients, optimizer state and activations.

Mixed-precision Adam keeps 16 bytes per parameter (BF16 weights 2 + BF16 grads 2 + FP32
master, momentum and variance 12; DOMAIN.md section 5). Weights split over ``tp * pp``
(experts over ``ep`` as well); ZeRO-1 shards the 12 optimizer bytes over DP, ZeRO-2 also the
gradients, ZeRO-3 also the weights. Activations follow Korthikanti et al.:
``s*b*h*(34 + 5*a*s/h)`` bytes per layer per micro-batch (16-bit), divided by ``tp`` with
sequence parallelism; selective recompute keeps ``34*s*b*h/tp``; full recompute keeps each
layer's input ``2*s*b*h``. Under 1F1B the first stage holds ``pp`` micro-batches in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import GIB
from ..workload.models import ModelSpec
from ..workload.parallelism import ParallelPlan

__all__ = ["WORKSPACE_BYTES", "TrainingMemory", "training_memory"]

WORKSPACE_BYTES = 2.0 * GIB  # CUDA context, NCCL buffers, allocator fragmentation (assumed)


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes per card on the most loaded (first) pipeline stage."""

    weights_bytes: float
    gradients_bytes: float
    optimizer_bytes: float
    activations_bytes: float
    workspace_bytes: float

    @property
    def total_bytes(self) -> float:
        """Sum of all parts."""
        return (self.weights_bytes + self.gradients_bytes + self.optimizer_bytes
                + self.activations_bytes + self.workspace_bytes)

    def as_dict(self) -> dict[str, float]:
        """Parts and total, bytes."""
        return {"weights": self.weights_bytes, "gradients": self.gradients_bytes,
                "optimizer": self.optimizer_bytes, "activations": self.activations_bytes,
                "workspace": self.workspace_bytes, "total": self.total_bytes}


def params_per_card(model: ModelSpec, plan: ParallelPlan) -> float:
    """Parameters held by one card (before ZeRO-3 sharding)."""
    total = model.total_params
    if not model.is_moe:
        return total / (plan.tp * plan.pp)
    expert = (3 if model.gated_ffn else 2) * model.hidden * model.moe_ffn_hidden
    routed = model.moe_layers * model.experts * expert
    dense = total - routed
    return dense / (plan.tp * plan.pp) + routed / (plan.ep * plan.pp)  # experts: EP, no expert-TP


def training_memory(model: ModelSpec, plan: ParallelPlan, seq_len: int,
                    unfused_attention: bool = False) -> TrainingMemory:
    """Per-card memory of the first pipeline stage.

    Parameters
    ----------
    model, plan : ModelSpec, ParallelPlan
    seq_len : int
        Tokens per sequence (divided by ``cp`` under context parallelism).
    unfused_attention : bool
        Keep the ``5*a*s/h`` attention-score activations (no flash attention).
    """
    p = params_per_card(model, plan)
    dp = plan.dp
    weights = 2.0 * p / (dp if plan.zero >= 3 else 1)
    grads = 2.0 * p / (dp if plan.zero >= 2 else 1)
    optim = 12.0 * p / (dp if plan.zero >= 1 else 1)
    s = seq_len / plan.cp
    b = plan.microbatch_size
    h = model.hidden
    t = plan.tp if plan.sequence_parallel else 1
    if plan.recompute == "full":
        per_layer = 2.0 * s * b * h
    elif plan.recompute == "selective":
        per_layer = 34.0 * s * b * h / t
    else:
        attn = 5.0 * model.heads * s / h if unfused_attention else 0.0
        per_layer = s * b * h * (34.0 + attn) / t
    layers_per_stage = model.layers / plan.pp
    in_flight = min(plan.pp, plan.microbatches)
    if plan.virtual_stages > 1:
        in_flight = min(plan.microbatches * plan.virtual_stages,
                        plan.pp + (plan.pp - 1) / plan.virtual_stages)
    acts = per_layer * layers_per_stage * in_flight
    if plan.recompute == "full":  # one layer's full activations live during its recompute
        acts += s * b * h * 34.0 / t
    return TrainingMemory(weights, grads, optim, acts, WORKSPACE_BYTES)
