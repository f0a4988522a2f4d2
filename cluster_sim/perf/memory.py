"""Training memory per card: weights, gradients, optimizer state and activations.

Mixed-precision Adam keeps 16 bytes per parameter: BF16 weights 2 + BF16 gradients 2 + FP32
master weights, momentum and variance 12 (ZeRO, Rajbhandari et al., SC'20, section 3.1:
``2 + 2 + K`` with ``K = 12``; DOMAIN.md section 5).

Where the parameters live. Dense parameters (attention, dense FFNs, shared experts, routers,
embeddings) are split over ``tp * pp``; routed experts over ``ep * pp`` (each card holds
``experts / ep`` whole experts: no expert-TP). ZeRO stage ``k`` then shards a state over the
ranks that hold a *replica of the same shard*:

* dense states over the data-parallel degree ``dp``;
* expert states over the expert data-parallel degree ``dp_expert = dp * tp * cp / ep``, the
  number of copies of each expert shard (Megatron-Core MoE, "MoE parallel folding":
  ``ETP * EP * EDP = TP * CP * DP`` for the expert layers, here with ``ETP = 1``; DeepSpeed-MoE,
  Rajbhandari et al., ICML'22: ZeRO over the expert-data-parallel group). Dividing expert
  states by ``dp`` as well would count each shard's memory ``ep / (tp * cp)`` times too small.

Per card, with ``D`` dense and ``E`` expert parameters held (before ZeRO)::

    shard_k(D, E) = D / dp + E / dp_expert   if zero >= k   else   D + E
    weights = 2 * shard_3,   gradients = 2 * shard_2,   optimizer = 12 * shard_1

Activations follow Korthikanti et al.: ``s*b*h*(34 + 5*a*s/h)`` bytes per layer per
micro-batch (16-bit), divided by ``tp`` with sequence parallelism; selective recompute keeps
``34*s*b*h/tp``; full recompute keeps each layer's input ``2*s*b*h``. Under 1F1B the first
stage holds ``pp`` micro-batches in flight (interleaved: ``pp + (pp - 1) / v``).

>>> from cluster_sim.workload.models import model
>>> mem = training_memory(model("qwen3-235b-a22b"), ParallelPlan(dp=8, ep=8, zero=3,
...                       recompute="full"), seq_len=4096)
>>> mem.total_bytes / GIB > 400        # expert states are not sharded: dp_expert = 8*1*1/8 = 1
True
"""

from __future__ import annotations

from dataclasses import dataclass

from ..units import GIB
from ..workload.models import ModelSpec
from ..workload.parallelism import ParallelPlan

__all__ = ["WORKSPACE_BYTES", "TrainingMemory", "expert_data_parallel", "param_split",
           "params_per_card", "sharded_params", "training_memory"]

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


def param_split(model: ModelSpec, plan: ParallelPlan) -> tuple[float, float]:
    """(dense, routed-expert) parameters held by one card before ZeRO sharding."""
    total = model.total_params
    if not model.is_moe:
        return total / (plan.tp * plan.pp), 0.0
    expert = (3 if model.gated_ffn else 2) * model.hidden * model.moe_ffn_hidden
    routed = model.moe_layers * model.experts * expert
    return (total - routed) / (plan.tp * plan.pp), routed / (plan.ep * plan.pp)


def params_per_card(model: ModelSpec, plan: ParallelPlan) -> float:
    """Parameters held by one card (before ZeRO sharding)."""
    dense, expert = param_split(model, plan)
    return dense + expert


def expert_data_parallel(plan: ParallelPlan) -> int:
    """Replicas of each expert shard: ``dp * tp * cp / ep`` (Megatron-Core's EDP with ETP 1)."""
    return plan.dp * plan.tp * plan.cp // plan.ep


def sharded_params(model: ModelSpec, plan: ParallelPlan, stage: int) -> float:
    """Parameters per card of a state that ZeRO shards from ``stage`` on (1 optimizer, 2
    gradients, 3 weights): dense over ``dp``, experts over :func:`expert_data_parallel`."""
    dense, expert = param_split(model, plan)
    if plan.zero < stage:
        return dense + expert
    return dense / plan.dp + expert / expert_data_parallel(plan)


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
    weights = 2.0 * sharded_params(model, plan, 3)
    grads = 2.0 * sharded_params(model, plan, 2)
    optim = 12.0 * sharded_params(model, plan, 1)
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
    in_flight: float = min(plan.pp, plan.microbatches)
    if plan.virtual_stages > 1:
        in_flight = min(plan.microbatches * plan.virtual_stages,
                        plan.pp + (plan.pp - 1) / plan.virtual_stages)
    acts = per_layer * layers_per_stage * in_flight
    if plan.recompute == "full":  # one layer's full activations live during its recompute
        acts += s * b * h * 34.0 / t
    return TrainingMemory(weights, grads, optim, acts, WORKSPACE_BYTES)
