"""A linear replica cost model with the :class:`~cluster_sim.perf.inference.ReplicaPerf` API.

The serving engine's test double (DESIGN 3: "``ConstantPerfModel`` is a test double"): every
time is affine in its arguments, so closed forms are trivial and, with dyadic coefficients
(``2**-k``), sums are exact in floating point — which lets tests compare the fast-forward
engine with an iteration-by-iteration loop bit for bit.

* prefill: ``prefill_s + prefill_s_per_token * new_tokens``
* decode iteration: ``decode_s + decode_s_per_seq * batch + decode_s_per_context_token * context``
* mixed iteration: ``decode_s + prefill_s_per_token * prefill_tokens + decode_s_per_seq * batch
  + decode_s_per_context_token * context`` (one fixed cost per iteration)

>>> p = LinearServingPerf(prefill_s=0.25, decode_s=0.125)
>>> p.decode_stretch_s(1, 0, 4), p.decode_iterations_within(1, 0, 0.3)
(0.5, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import PerfModelError
from .base import Breakdown
from .series import refine_iterations

__all__ = ["LinearServingPerf"]


@dataclass(frozen=True)
class LinearServingPerf:
    """Affine iteration costs (seconds) plus a fixed KV capacity; see the module docstring.

    Parameters
    ----------
    prefill_s, prefill_s_per_token : float
        Fixed and per-new-token prefill seconds.
    decode_s, decode_s_per_seq, decode_s_per_context_token : float
        Fixed, per-sequence and per-context-token seconds of one decode iteration.
    kv_capacity_tokens : int
        KV-cache tokens the replica holds.
    kv_bytes_per_token : float
        Bytes of KV per token (PD transfers move ``prompt x this``).
    cards : int
        Cards of the replica (for per-card metrics and cost).
    power_w_by_phase : tuple of float
        Replica power in (idle, prefill, decode) phases, watts.
    """

    prefill_s: float = 0.0
    prefill_s_per_token: float = 0.0
    decode_s: float = 0.0
    decode_s_per_seq: float = 0.0
    decode_s_per_context_token: float = 0.0
    kv_capacity_tokens: int = 1 << 30
    kv_bytes_per_token: float = 1.0
    cards: int = 1
    power_w_by_phase: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def kv_bytes_per_token_unique(self) -> float:
        """Bytes a PD transfer moves per prompt token."""
        return self.kv_bytes_per_token

    def prefill_time_s(self, new_tokens: int, attn_pairs: float | None = None) -> float:
        """Seconds to prefill ``new_tokens`` tokens (attention pairs ignored)."""
        if new_tokens <= 0:
            return 0.0
        return self.prefill_s + self.prefill_s_per_token * new_tokens

    def prefill_breakdown(self, new_tokens: int, attn_pairs: float | None = None) -> Breakdown:
        """:meth:`prefill_time_s` as a one-component breakdown."""
        return Breakdown(compute=self.prefill_time_s(new_tokens, attn_pairs))

    def decode_time_s(self, batch: int, context_tokens: float) -> float:
        """Seconds of one decode iteration."""
        if batch <= 0:
            return 0.0
        return self.decode_s + self.decode_s_per_seq * batch + self.decode_s_per_context_token * context_tokens

    def decode_stretch_s(self, batch: int, context_tokens: float, iterations: int) -> float:
        """Sum of ``iterations`` decode iterations, context growing by ``batch`` each."""
        if batch <= 0 or iterations <= 0:
            return 0.0
        k = iterations
        first = self.decode_time_s(batch, context_tokens)
        return k * first + self.decode_s_per_context_token * batch * (k * (k - 1) // 2)

    def decode_iterations_within(self, batch: int, context_tokens: float, budget_s: float) -> int:
        """Largest ``k`` with ``decode_stretch_s(batch, context_tokens, k) <= budget_s``."""
        if batch <= 0:
            raise PerfModelError("decode_iterations_within: batch must be >= 1")
        if not budget_s > 0.0:
            return 0
        a = self.decode_time_s(batch, context_tokens)
        b = self.decode_s_per_context_token * batch
        if b > 0.0:  # b k^2 / 2 + (a - b / 2) k - budget = 0
            qb = a - 0.5 * b
            k = int((-qb + math.sqrt(qb * qb + 2.0 * b * budget_s)) / b)
        elif a > 0.0:
            k = int(budget_s / a)
        else:
            return 2**62
        return refine_iterations(self.decode_stretch_s, batch, context_tokens, k, budget_s)

    def mixed_iteration_time_s(self, prefill_tokens: int, decode_batch: int, context_tokens: float,
                               attn_pairs: float | None = None) -> float:
        """Seconds of one chunked-prefill iteration (one fixed cost)."""
        if prefill_tokens <= 0 and decode_batch <= 0:
            return 0.0
        return (self.decode_s + self.prefill_s_per_token * max(prefill_tokens, 0)
                + self.decode_s_per_seq * max(decode_batch, 0)
                + self.decode_s_per_context_token * context_tokens)

    def kv_transfer_time_s(self, prompt_tokens: int, bandwidth_Bps: float, latency_s: float = 0.0,
                           overlap_s: float = 0.0) -> float:
        """``prompt x kv_bytes_per_token / bandwidth + latency`` (no overlap)."""
        return prompt_tokens * self.kv_bytes_per_token / bandwidth_Bps + latency_s

    def power_w(self, phase: str) -> float:
        """Replica power in ``idle``, ``prefill``, ``decode`` (``mixed`` = prefill), watts."""
        idle, pre, dec = self.power_w_by_phase
        table = {"idle": idle, "prefill": pre, "decode": dec, "mixed": pre}
        if phase not in table:
            raise PerfModelError(f"power_w: unknown phase {phase!r}; known: {', '.join(table)}")
        return table[phase]
