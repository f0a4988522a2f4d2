"""Parallel plans: how a training job or a serving replica is split across cards.

``cards = tp * pp * dp * cp``; expert parallelism ``ep`` re-partitions the data-parallel
ranks of MoE layers (``ep`` divides ``dp * tp``, as in Megatron-Core), so it adds no cards.

>>> p = ParallelPlan(tp=8, pp=4, dp=16, microbatches=32)
>>> p.cards
512
>>> round(p.bubble_fraction, 4)        # (p-1)/(m+p-1)
0.0857
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ATTENTION_KERNELS", "OVERLAPS", "RECOMPUTE", "ParallelPlan"]

RECOMPUTE = ("none", "selective", "full")
ATTENTION_KERNELS = ("flash", "dense")
OVERLAPS = ("dp_overlap", "tp_overlap", "pp_overlap", "ep_overlap")


@dataclass(frozen=True)
class ParallelPlan:
    """Tensor, pipeline, data, expert and context parallel degrees plus scheduling knobs.

    Parameters
    ----------
    tp, pp, dp, ep, cp : int
        Parallel degrees. ``tp`` should stay inside one scale-up domain.
    microbatches : int
        Micro-batches per pipeline per step (``m``); with ``microbatch_size`` and ``dp`` this
        sets the global batch: ``dp * microbatches * microbatch_size`` sequences.
    microbatch_size : int
        Sequences per micro-batch.
    virtual_stages : int
        Interleaved 1F1B chunks per device (``v``); 1 = plain 1F1B.
    recompute : str
        Activation recomputation: ``none``, ``selective`` or ``full``.
    zero : int
        ZeRO stage over the data-parallel group (0 = replicated optimizer).
    sequence_parallel : bool
        Megatron sequence parallelism (TP all-reduce becomes RS + AG; activations / tp).
    dp_overlap : float
        Fraction of the DP gradient synchronisation (and of the ZeRO-2/3 gathers and
        reduce-scatters) hidden behind compute (0-1).
    tp_overlap : float
        Fraction of the tensor-parallel collectives hidden behind the layer's GEMMs
        (comm-GEMM overlap, e.g. Transformer Engine's userbuffers; 0-1). 0: plain Megatron-LM.
    pp_overlap : float
        Fraction of the pipeline sends after the first chunk's that hide behind queued chunk
        computations (Megatron-LM ``--overlap-p2p-communication``, interleaved 1F1B only; 0-1).
    ep_overlap : float
        Fraction of the expert-parallel all-to-all hidden behind another micro-batch's compute
        (DualPipe or two-micro-batch overlap; 0-1).
    attention_kernel : str
        ``flash`` (FlashAttention-class: tiled, no ``s x s`` scores in memory, a causal mask skips
        the blocks above the diagonal) or ``dense`` (materialised scores and masked softmax, all
        ``s^2`` FLOPs computed: Megatron-LM 2021). See ``perf/stages.py``.
    microbatch_overhead_s : float
        Fixed seconds per micro-batch per stage, forward and backward (kernel launches, framework
        and Python overhead). No published figure is used: 0 by default, a knob (>= 0).
    """

    tp: int = 1
    pp: int = 1
    dp: int = 1
    ep: int = 1
    cp: int = 1
    microbatches: int = 1
    microbatch_size: int = 1
    virtual_stages: int = 1
    recompute: str = "none"
    zero: int = 1
    sequence_parallel: bool = True
    dp_overlap: float = 0.8
    tp_overlap: float = 0.0
    pp_overlap: float = 0.0
    ep_overlap: float = 0.0
    attention_kernel: str = "flash"
    microbatch_overhead_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "dp", "ep", "cp", "microbatches", "microbatch_size", "virtual_stages"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"parallel.{name}: must be a positive integer, got {v!r}")
        if self.recompute not in RECOMPUTE:
            raise ConfigError(f"parallel.recompute: must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")
        if self.zero not in (0, 1, 2, 3):
            raise ConfigError(f"parallel.zero: must be 0, 1, 2 or 3, got {self.zero!r}")
        for name in OVERLAPS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"parallel.{name}: must be within [0, 1], got {v!r}")
        if self.attention_kernel not in ATTENTION_KERNELS:
            raise ConfigError(f"parallel.attention_kernel: must be one of {', '.join(ATTENTION_KERNELS)}, "
                              f"got {self.attention_kernel!r:.40}")
        o = self.microbatch_overhead_s
        if isinstance(o, bool) or not isinstance(o, (int, float)) or not 0.0 <= o < float("inf"):
            raise ConfigError(f"parallel.microbatch_overhead: must be a finite duration >= 0 s, got {o!r:.40}")
        if (self.dp * self.tp) % self.ep:
            raise ConfigError(f"parallel.ep: {self.ep} must divide dp*tp = {self.dp * self.tp}")

    @property
    def cards(self) -> int:
        """Cards the plan occupies: ``tp * pp * dp * cp``."""
        return self.tp * self.pp * self.dp * self.cp

    @property
    def global_batch(self) -> int:
        """Sequences per optimizer step."""
        return self.dp * self.microbatches * self.microbatch_size

    @property
    def bubble_fraction(self) -> float:
        """Pipeline bubble as a fraction of the step: ``(p-1)/(v m + p - 1)``."""
        p, m, v = self.pp, self.microbatches, self.virtual_stages
        return (p - 1) / (v * m + p - 1)

    def check_cards(self, cards: int, where: str = "parallel") -> None:
        """Raise :class:`ConfigError` unless the plan uses exactly ``cards`` cards."""
        if self.cards != cards:
            raise ConfigError(
                f"{where}: tp*pp*dp*cp = {self.tp}*{self.pp}*{self.dp}*{self.cp} = {self.cards} "
                f"does not match the job's {cards} cards"
            )

    def check_model(self, layers: int, heads: int, experts: int = 0, where: str = "parallel") -> None:
        """Raise :class:`ConfigError` if the model cannot be split this way."""
        if heads % self.tp:
            raise ConfigError(f"{where}.tp: {self.tp} does not divide the model's {heads} attention heads")
        if layers < self.pp * self.virtual_stages:
            raise ConfigError(f"{where}.pp: {self.pp} stages x {self.virtual_stages} chunks exceed {layers} layers")
        if experts and experts % self.ep:
            raise ConfigError(f"{where}.ep: {self.ep} does not divide the model's {experts} experts")
        if self.ep > 1 and not experts:
            raise ConfigError(f"{where}.ep: expert parallelism {self.ep} on a dense model")

    def with_dp(self, dp: int) -> ParallelPlan:
        """The same plan with another data-parallel degree (weak scaling)."""
        from dataclasses import replace

        return replace(self, dp=dp)
