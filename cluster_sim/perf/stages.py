"""What one pipeline stage computes per micro-batch: its layers, the embedding, the output layer.

The transformer layers split evenly over the ``pp`` stages; the first stage also runs the input
embedding (a table lookup: memory-bound, no GEMM) and the last stage the output layer (the
logits GEMM ``h x V``, ``2 * 3 * b * s * h * V`` FLOPs forward and backward) and the loss over
the ``V`` logits. 1F1B runs at the pace of the slowest stage, so the step pays the output layer
``m + p - 1`` times (``perf/training.py``). Full recomputation recomputes the transformer layers
only (Megatron-LM checkpoints each layer's input; the output layer is not recomputed).

Causal attention. The score and value GEMMs (``12 l h s`` FLOPs per token, fwd+bwd) of a causal
model have the upper triangle masked. A FlashAttention-class kernel (``attention_kernel =
"flash"``) skips the key blocks wholly above the diagonal and computes the diagonal blocks in
full: with ``n = ceil(s / B)`` blocks per row it runs ``(n + 1) / (2 n)`` of them (-> 1/2 for
``s >> B``; 1 for ``s <= B``). ``"dense"`` (2021-era masked softmax over materialised ``s x s``
scores, Megatron-LM SC'21) computes all of them. The MFU numerator keeps the full ``12 l h s``
(PaLM / Megatron convention, ``ModelSpec.train_flops_per_token``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..workload.models import ModelSpec
from ..workload.parallelism import ParallelPlan

__all__ = ["EMBEDDING_PASSES", "FLASH_BLOCK", "LOSS_PASSES", "StageWork", "causal_fraction", "stage_work"]

# FlashAttention-2's key/value block for head dims 64-128 (Dao, "FlashAttention-2", 2023,
# section 3.3; the CUDA kernels tile 128 x 128 on A100/H100). Sets how many diagonal blocks
# a causal mask cannot skip.
FLASH_BLOCK = 128

# Activation-sized passes of the input embedding per token (x h elements, 16-bit): forward reads
# the table row and writes the activation; backward reads the activation gradient and reads and
# writes the table-gradient row (scatter-add).
EMBEDDING_PASSES = 5.0

# Logits-sized passes of the loss per token (x V elements, 16-bit): the logits GEMM writes them,
# the fused softmax-cross-entropy reads them and writes their gradient in place, the two backward
# GEMMs read it (Megatron-LM vocab_parallel_cross_entropy).
LOSS_PASSES = 4.0


def causal_fraction(seq_len: float, kernel: str, block: int = FLASH_BLOCK) -> float:
    """Share of the ``s x s`` attention-score FLOPs a causal model's kernel executes.

    >>> causal_fraction(8192, "flash"), causal_fraction(128, "flash"), causal_fraction(8192, "dense")
    (0.5078125, 1.0, 1.0)
    """
    if kernel == "dense":
        return 1.0
    n = max(1, math.ceil(seq_len / block))
    return (n + 1) / (2 * n)


@dataclass(frozen=True)
class StageWork:
    """Per-token work of the training step, split as the pipeline stages see it.

    ``layer_flops`` are the executed FLOPs of all transformer layers (fwd+bwd, recomputation
    and the kernel's causal skipping included); a stage runs ``1/pp`` of them. ``logits_flops``
    (output layer, last stage) and the bytes of the embedding (first stage) and of the loss
    (last stage) are per token of the whole model, not divided by ``pp``.
    """

    layer_flops: float
    logits_flops: float
    embedding_bytes: float
    loss_bytes: float
    recompute_flops: float

    def stage_flops(self, stage: int, pp: int) -> float:
        """Executed FLOPs per token on ``stage`` of ``pp``."""
        return self.layer_flops / pp + (self.logits_flops if stage == pp - 1 else 0.0)


def stage_work(model: ModelSpec, plan: ParallelPlan, seq_len: int, act_bytes: int = 2) -> StageWork:
    """The per-token work of ``model`` under ``plan`` (see the module docstring)."""
    attn = model.attention_flops_per_token(seq_len) * causal_fraction(seq_len, plan.attention_kernel)
    body = 6.0 * max(0.0, model.active_params - model.embedding_params)
    layers = body + attn
    recompute = {"full": layers / 3.0, "selective": attn / 3.0, "none": 0.0}[plan.recompute]
    h, v = model.hidden, model.vocab
    return StageWork(
        layer_flops=layers + recompute,
        logits_flops=6.0 * h * v,
        embedding_bytes=EMBEDDING_PASSES * h * act_bytes,
        loss_bytes=LOSS_PASSES * v * act_bytes,
        recompute_flops=recompute,
    )
