"""Cost of one LLM serving replica: prefill, decode, mixed iterations, KV capacity, energy.

A replica is one model instance on ``cards = tp * ep`` cards of one accelerator type.
Dense weights (attention, dense FFNs, shared experts, embeddings) are sharded ``tp`` ways and
replicated over the ``ep`` attention groups (DeepSeek-style data-parallel attention);
routed experts are spread over all ``tp * ep`` cards. With ``ep = 1`` this is plain tensor
parallelism. Formulas and calibration: ``docs/inference_model.md`` (DOMAIN.md section 5).

API (stable; the serving engine depends on it)
----------------------------------------------
``ReplicaPerf(model, accelerator, tp=1, ep=1, comm_levels=None, ep_comm_levels=None,
dtype="bf16", kv_dtype=None, overhead_s=None, workspace_bytes=None, min_kv_tokens=1024)``
(``model``/``accelerator`` may be catalog names). Construction raises
:class:`~cluster_sim.errors.ConfigError` when the weights leave no room for KV.

Properties: ``cards``, ``weight_bytes_per_card``, ``workspace_bytes_per_card``,
``kv_bytes_per_token`` (per replica, including TP replication of KV heads),
``kv_bytes_per_token_unique`` (what a PD transfer moves), ``kv_capacity_tokens``.

Fast scalar methods (pure float math, no allocation; seconds):

* ``prefill_time_s(new_tokens, attn_pairs=None)``; ``attn_pairs`` = causal (query, key)
  pairs, default ``new_tokens**2 / 2``; use :func:`causal_pairs` for chunks after a cached
  prefix and sum it over the prompts of a batched prefill.
* ``decode_time_s(batch, context_tokens)``: one decode iteration, ``context_tokens`` = sum of
  the batch's context lengths.
* ``decode_stretch_s(batch, context_tokens, iterations)``: closed-form sum of
  ``iterations`` consecutive decode iterations, context growing by ``batch`` each.
* ``decode_iterations_within(batch, context_tokens, budget_s) -> int``: largest ``k`` with
  ``decode_stretch_s(batch, context_tokens, k) <= budget_s``.
* ``mixed_iteration_time_s(prefill_tokens, decode_batch, context_tokens, attn_pairs=None)``:
  one chunked-prefill iteration (prefill chunk + decodes).
* ``kv_transfer_time_s(prompt_tokens, bandwidth_Bps, latency_s=0.0, overlap_s=0.0)``.
* ``power_w(phase)``, ``energy_j(phase, duration_s)``, ``decode_stretch_energy_j(...)``.

``prefill_breakdown``, ``decode_breakdown``, ``mixed_iteration_breakdown`` and
``decode_stretch_breakdown`` return :class:`~cluster_sim.perf.base.Breakdown` with components
``compute``, ``memory`` (memory time exposed beyond compute), ``tp_comm``, ``ep_comm``,
``overhead``; their ``total`` equals the fast path.

>>> r = ReplicaPerf("llama2-13b", "a100-80gb", overhead_s=0.0)
>>> round(r.decode_time_s(1, 0) * 1e3, 2)      # 26 GB / (2.039 TB/s x 0.80)
15.94
>>> r.decode_iterations_within(1, 0, 1.0)
62
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..catalog import AcceleratorSpec, accelerator
from ..errors import ConfigError, PerfModelError
from ..topology.levels import CommLevel
from ..units import GIB
from ..workload.models import ModelSpec, model
from .affine_comm import affine_coefficients, min_affine
from .base import Breakdown
from .power import PHASES, card_power_w
from .series import (
    UNBOUNDED_ITERATIONS,
    arith_sum,
    crossing,
    refine_iterations,
    solve_series,
    sum_max_affine,
)

__all__ = ["PHASES", "UNBOUNDED_ITERATIONS", "ReplicaPerf", "causal_pairs", "refine_iterations"]

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1}
ACT_BYTES = 2  # activations exchanged by TP/EP collectives are 16-bit
SCALEUP_LATENCY_S = 2e-6  # default alpha of the TP group (SystemSpec-like)
RUNTIME_RESERVE_BYTES = 1 * GIB  # CUDA context, NCCL buffers, CUDA graphs per card
WORKSPACE_TOKENS = 8192  # activations of one prefill chunk of this many tokens are reserved
# Memory-bound kernels per layer per iteration, each paying the card's HBM n_1/2 once: QKV
# projection, attention (KV read), output projection, FFN up/gate, FFN down (a count, not a fit).
MEMORY_KERNELS_PER_LAYER = 5
def causal_pairs(new_tokens: float, cached_tokens: float = 0.0) -> float:
    """Causal attention (query, key) pairs of ``new_tokens`` after ``cached_tokens``.

    ``new_tokens**2 / 2 + new_tokens * cached_tokens`` (the ``s**2`` form of DOMAIN.md 5, so
    prefill FLOPs equal :meth:`ModelSpec.prefill_flops`).
    """
    return new_tokens * new_tokens * 0.5 + new_tokens * cached_tokens


def _bytes_of(dtype: str, where: str) -> int:
    if dtype not in DTYPE_BYTES:
        raise ConfigError(f"{where}: unknown dtype {dtype!r}; known: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


@dataclass(frozen=True)
class ReplicaPerf:
    """Roofline cost model of one serving replica (see the module docstring for the API).

    Parameters
    ----------
    model : ModelSpec or str
        The served model (catalog name accepted).
    accelerator : AcceleratorSpec or str
        The card type (catalog name accepted).
    tp : int
        Tensor-parallel degree of each attention group.
    ep : int
        Expert-parallel degree (MoE only): number of attention groups; routed experts are
        spread over all ``tp * ep`` cards.
    comm_levels : tuple of CommLevel, optional
        The TP group as seen by a collective, innermost first; fanouts must multiply to ``tp``.
        Default: one ``scaleup`` level of fanout ``tp`` at the card's per-direction scale-up
        bandwidth and efficiency, 2 us latency.
    ep_comm_levels : tuple of CommLevel, optional
        The EP all-to-all group (fanouts multiply to ``ep``); default one ``scaleup`` level.
    dtype : str
        Weight dtype: ``bf16`` (default), ``fp16``, ``fp8`` or ``int8``; sets bytes per weight,
        the peak FLOP/s and the GEMM efficiency used (``AcceleratorSpec.achievable_flops_for``:
        the card's FP8 peak and ``fp8_flops_efficiency`` when it has them).
    kv_dtype : str, optional
        KV-cache dtype; default the weight dtype.
    overhead_s : float, optional
        Fixed CPU/launch cost per iteration (scheduler, sampling, kernel launches), seconds.
        Default: the card's ``iteration_overhead_ms`` (3 ms unless the catalog says otherwise:
        vLLM-class engines with CUDA graphs spend about 1-5 ms per step).
    workspace_bytes : float, optional
        Per-card memory reserved for activations and runtime. Default: 1 GiB runtime plus the
        16-bit activations of an 8,192-token prefill chunk, ``8192 (4 h + 2 f / tp) 2`` bytes.
    min_kv_tokens : int
        KV room (tokens) the replica must have at least; less raises ConfigError.
    """

    model: ModelSpec | str
    accelerator: AcceleratorSpec | str
    tp: int = 1
    ep: int = 1
    comm_levels: tuple[CommLevel, ...] | None = None
    ep_comm_levels: tuple[CommLevel, ...] | None = None
    dtype: str = "bf16"
    kv_dtype: str | None = None
    overhead_s: float | None = None
    workspace_bytes: float | None = None
    min_kv_tokens: int = 1024
    # ---- derived in __post_init__ (SI units; not constructor arguments) ----
    _layers: int = field(init=False, repr=False, compare=False)
    _cards: int = field(init=False, repr=False, compare=False)
    _weight_card: float = field(init=False, repr=False, compare=False)
    _dense_card: float = field(init=False, repr=False, compare=False)
    _routed_card: float = field(init=False, repr=False, compare=False)
    _kv_unique: float = field(init=False, repr=False, compare=False)
    _kv_replica: float = field(init=False, repr=False, compare=False)
    _kv_card: float = field(init=False, repr=False, compare=False)
    _workspace: float = field(init=False, repr=False, compare=False)
    _kv_capacity: int = field(init=False, repr=False, compare=False)
    _rate_c: float = field(init=False, repr=False, compare=False)
    _rate_m: float = field(init=False, repr=False, compare=False)
    _mem_fixed: float = field(init=False, repr=False, compare=False)
    _overhead: float = field(init=False, repr=False, compare=False)
    _lin: float = field(init=False, repr=False, compare=False)
    _attn: float = field(init=False, repr=False, compare=False)
    _moe_keep: float = field(init=False, repr=False, compare=False)
    _tp_n: float = field(init=False, repr=False, compare=False)
    _tp_x: float = field(init=False, repr=False, compare=False)
    _ar: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)
    _ep_n: float = field(init=False, repr=False, compare=False)
    _ep_x: float = field(init=False, repr=False, compare=False)
    _a2a: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        m = model(self.model)
        acc = self.accelerator if isinstance(self.accelerator, AcceleratorSpec) else accelerator(self.accelerator)
        object.__setattr__(self, "model", m)
        object.__setattr__(self, "accelerator", acc)
        for name in ("tp", "ep"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"replica.{name}: must be a positive integer, got {v!r}")
        if self.ep > 1 and not m.is_moe:
            raise ConfigError(f"replica.ep: {m.name} is dense; expert parallelism needs a MoE model")
        overhead = acc.iteration_overhead_s if self.overhead_s is None else self.overhead_s
        if not overhead >= 0:
            raise ConfigError(f"replica.overhead_s: must be >= 0, got {overhead!r}")
        object.__setattr__(self, "overhead_s", overhead)
        object.__setattr__(self, "_overhead", overhead)
        wb = _bytes_of(self.dtype, "replica.dtype")
        kvb = _bytes_of(self.kv_dtype or self.dtype, "replica.kv_dtype")
        tp, ep = self.tp, self.ep
        cards = tp * ep
        levels: tuple[CommLevel, ...] = self.comm_levels or (CommLevel(
            "scaleup", fanout=tp, bandwidth_Bps=acc.scaleup_bytes_per_s_uni,
            latency_s=SCALEUP_LATENCY_S, efficiency=acc.scaleup_efficiency),)
        ep_levels: tuple[CommLevel, ...] = self.ep_comm_levels or (CommLevel(
            "scaleup", fanout=ep, bandwidth_Bps=acc.scaleup_bytes_per_s_uni,
            latency_s=SCALEUP_LATENCY_S, efficiency=acc.scaleup_efficiency),)
        for what, lv, want in (("comm_levels", levels, tp), ("ep_comm_levels", ep_levels, ep)):
            prod = math.prod(x.fanout for x in lv)
            if prod != want:
                raise ConfigError(f"replica.{what}: fanouts multiply to {prod}, expected {want}")
        object.__setattr__(self, "comm_levels", tuple(levels))
        object.__setattr__(self, "ep_comm_levels", tuple(ep_levels))

        # weights: routed experts vs the rest (published totals kept; routed from the architecture)
        total = m.total_params
        routed = 0.0
        if m.is_moe:
            routed = min(m.moe_layers * m.experts * (3 if m.gated_ffn else 2) * m.hidden * m.moe_ffn_hidden,
                         0.98 * total)
        dense_card = (total - routed) * wb / tp
        routed_card = routed * wb / cards
        weight_card = dense_card + routed_card
        # KV: GQA/MHA heads shard over tp up to kv_heads, then replicate; the MLA latent replicates
        kv_unique = m.kv_bytes_per_token() / m.bytes_per_param * kvb
        repl = float(tp) if m.attention == "mla" else max(1.0, tp / m.kv_heads)
        kv_replica = kv_unique * repl
        ffn = m.ffn_hidden if not m.is_moe else max(
            m.ffn_hidden if m.dense_layers else 0, m.moe_ffn_hidden * (m.experts_per_token + m.shared_experts))
        ws = (RUNTIME_RESERVE_BYTES + WORKSPACE_TOKENS * (4 * m.hidden + 2 * ffn / tp) * ACT_BYTES
              if self.workspace_bytes is None else float(self.workspace_bytes))
        usable = acc.hbm_bytes
        free = usable - weight_card - ws
        kv_min_card = self.min_kv_tokens * kv_replica / cards
        if free < kv_min_card:
            missing = kv_min_card - free
            kv_note = (f" (incl. {kv_min_card / GIB:.1f} GiB KV for {self.min_kv_tokens:,} tokens)"
                       if self.min_kv_tokens else "")
            raise ConfigError(
                f"{m.name} on {cards} x {acc.name} (tp={tp}, ep={ep}, {self.dtype}): weights need "
                f"{weight_card / GIB:.1f} GiB per card, {(usable - ws) / GIB:.1f} GiB usable "
                f"({usable / GIB:.1f} GiB HBM - {ws / GIB:.1f} GiB activation workspace); "
                f"{missing / GIB:.1f} GiB missing{kv_note}")
        rate_m = acc.achievable_hbm_bytes_per_s
        derived = {
            "_layers": m.layers,
            "_cards": cards,
            "_weight_card": weight_card,
            "_dense_card": dense_card,      # bytes per card read every iteration
            "_routed_card": routed_card,    # routed-expert bytes per card (all experts)
            "_kv_unique": kv_unique,
            "_kv_replica": kv_replica,
            "_kv_card": kv_replica / cards,  # KV bytes per context token per card (balanced)
            "_workspace": ws,
            "_kv_capacity": math.floor(free * cards / kv_replica),
            "_rate_c": acc.achievable_flops_for(self.dtype) * cards,  # replica FLOP/s
            "_rate_m": rate_m,                               # per-card HBM bytes/s
            # small transfers: every memory-bound kernel adds n_1/2 bytes' worth of time
            "_mem_fixed": m.layers * MEMORY_KERNELS_PER_LAYER * acc.hbm_half_bandwidth_bytes / rate_m,
            "_lin": 2.0 * m.active_params,                   # FLOPs per token in the linear layers
            "_attn": 4.0 * m.layers * m.heads * m.head_dim,  # FLOPs per causal (query, key) pair
            # probability that one routed expert is NOT picked by one token (uniform routing)
            "_moe_keep": (1.0 - m.experts_per_token / m.experts) if m.is_moe else 0.0,
            "_tp_n": 2.0 * m.layers,                            # all-reduces per iteration
            "_tp_x": m.hidden * ACT_BYTES / ep,                 # all-reduce bytes per token
            "_ar": affine_coefficients("all_reduce", levels),
            "_ep_n": 2.0 * m.moe_layers if ep > 1 else 0.0,     # all-to-alls per iteration
            "_ep_x": m.experts_per_token * m.hidden * ACT_BYTES / (ep * tp),  # bytes per token per card
            "_a2a": affine_coefficients("all_to_all", ep_levels, copies=max(1, m.experts_per_token),
                            max_domains=m.max_route_nodes or None),
        }
        for k, v in derived.items():
            object.__setattr__(self, k, v)

    def __repr__(self) -> str:
        m, acc = self.model, self.accelerator
        return (f"ReplicaPerf(model={getattr(m, 'name', m)!r}, accelerator={getattr(acc, 'name', acc)!r}, "
                f"tp={self.tp}, ep={self.ep}, dtype={self.dtype!r}, overhead_s={self.overhead_s!r})")

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def cards(self) -> int:
        """Cards of the replica: ``tp * ep``."""
        return self._cards

    @property
    def weight_bytes_per_card(self) -> float:
        """Weight bytes on each card: dense part / tp + routed experts / (tp ep)."""
        return self._weight_card

    @property
    def workspace_bytes_per_card(self) -> float:
        """Bytes reserved per card for activations and runtime."""
        return self._workspace

    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes one token occupies in the replica (including TP replication)."""
        return self._kv_replica

    @property
    def kv_bytes_per_token_unique(self) -> float:
        """KV bytes per token without replication (what a PD transfer moves)."""
        return self._kv_unique

    @property
    def kv_capacity_tokens(self) -> int:
        """KV-cache tokens the replica holds: ``(usable - weights - workspace) * cards / kv``."""
        return self._kv_capacity

    @property
    def compute_flops_per_s(self) -> float:
        """Achievable FLOP/s of the whole replica: ``achievable_flops_for(dtype)`` x cards."""
        return self._rate_c

    def ridge_batch(self, context_per_seq: float = 0.0) -> float:
        """Decode batch at which compute time equals memory time (sequences of equal context).

        Below it decode is memory-bound, above compute-bound; ``inf`` if it never crosses.
        """
        def gap(b: float) -> float:
            t = self._phases(0.0, 0.0, b, b * context_per_seq)
            return t[0] - t[1]
        lo, hi = 1e-9, 1.0
        while gap(hi) < 0:
            hi *= 2.0
            if hi > 1e9:
                return math.inf
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if gap(mid) < 0:
                lo = mid
            else:
                hi = mid
        return hi

    # ---- the model ---------------------------------------------------------------------------
    def _weights_read(self, tokens: float) -> float:
        """Weight bytes read per card by one iteration over ``tokens`` tokens."""
        if self._moe_keep:
            return self._dense_card + self._routed_card * (1.0 - self._moe_keep ** tokens)
        return self._dense_card

    def _comm(self, tokens: float) -> tuple[float, float]:
        """(TP all-reduce, EP all-to-all) seconds of one iteration over ``tokens`` tokens."""
        tp = self._tp_n * min_affine(self._ar, tokens * self._tp_x) if self._ar else 0.0
        ep = self._ep_n * min_affine(self._a2a, tokens * self._ep_x) if self._ep_n else 0.0
        return tp, ep

    def _phases(self, new_tokens: float, pairs: float, batch: float, context: float
                ) -> tuple[float, float, float, float]:
        """(compute, memory, tp_comm, ep_comm) seconds of one iteration, without overhead."""
        tokens = new_tokens + batch
        compute = (self._lin * tokens + self._attn * (pairs + context)) / self._rate_c
        memory = ((self._weights_read(tokens) + self._kv_card * (context + new_tokens)) / self._rate_m
                  + self._mem_fixed)
        tp, ep = self._comm(tokens)
        return compute, memory, tp, ep

    @staticmethod
    def _as_breakdown(parts: tuple[float, float, float, float], overhead: float) -> Breakdown:
        compute, memory, tp, ep = parts
        return Breakdown(compute=compute, memory=max(0.0, memory - compute), tp_comm=tp, ep_comm=ep,
                         overhead=overhead)

    # ---- prefill -----------------------------------------------------------------------------
    def prefill_time_s(self, new_tokens: int, attn_pairs: float | None = None) -> float:
        """Seconds to prefill ``new_tokens`` tokens (one or several prompts in one iteration).

        FLOPs ``2 N_act s + 4 l h pairs`` over the replica's achievable FLOP/s, against the
        weights read plus the KV written over HBM bandwidth; + TP/EP collectives + overhead.
        ``attn_pairs`` defaults to ``causal_pairs(new_tokens)``.
        """
        if new_tokens <= 0:
            return 0.0
        pairs = new_tokens * new_tokens * 0.5 if attn_pairs is None else attn_pairs
        c, m, tp, ep = self._phases(new_tokens, pairs, 0.0, 0.0)
        return (c if c > m else m) + tp + ep + self._overhead

    def prefill_breakdown(self, new_tokens: int, attn_pairs: float | None = None) -> Breakdown:
        """:meth:`prefill_time_s` by component."""
        if new_tokens <= 0:
            return Breakdown(compute=0.0, memory=0.0, tp_comm=0.0, ep_comm=0.0, overhead=0.0)
        pairs = new_tokens * new_tokens * 0.5 if attn_pairs is None else attn_pairs
        return self._as_breakdown(self._phases(new_tokens, pairs, 0.0, 0.0), self._overhead)

    # ---- decode ------------------------------------------------------------------------------
    def decode_time_s(self, batch: int, context_tokens: float) -> float:
        """Seconds of one decode iteration for ``batch`` sequences with ``context_tokens`` in total.

        ``max(FLOPs / (P eta_c), bytes / (BW eta_m) + t_small) + TP comm + EP comm + overhead``
        with FLOPs ``2 N_act batch + 4 l h context``, per-card bytes ``weights touched + KV of the
        context`` (DOMAIN.md 5) and ``t_small = 5 l n_1/2 / (BW eta_m)``, the small-transfer cost
        of the card's ``hbm_half_bandwidth_mbyte`` (0 by default).
        """
        if batch <= 0:
            return 0.0
        c, m, tp, ep = self._phases(0.0, 0.0, batch, context_tokens)
        return (c if c > m else m) + tp + ep + self._overhead

    def decode_breakdown(self, batch: int, context_tokens: float) -> Breakdown:
        """:meth:`decode_time_s` by component."""
        if batch <= 0:
            return Breakdown(compute=0.0, memory=0.0, tp_comm=0.0, ep_comm=0.0, overhead=0.0)
        return self._as_breakdown(self._phases(0.0, 0.0, batch, context_tokens), self._overhead)

    def _stretch_terms(self, batch: float, context: float) -> tuple[float, float, float, float, float]:
        """Per-iteration time ``max(a1 + b1 k, a2 + b2 k) + d`` at iteration ``k``."""
        a1, a2, tp, ep = self._phases(0.0, 0.0, batch, context)
        b1 = self._attn * batch / self._rate_c
        b2 = self._kv_card * batch / self._rate_m
        return a1, b1, a2, b2, tp + ep + self._overhead

    def decode_stretch_s(self, batch: int, context_tokens: float, iterations: int) -> float:
        """Sum of ``iterations`` consecutive :meth:`decode_time_s`, in closed form.

        Iteration ``k`` (0-based) runs at total context ``context_tokens + k * batch``. Its time
        is the max of two affine functions of ``k`` plus a constant; the sum splits at the
        crossover and adds two arithmetic series.
        """
        if batch <= 0 or iterations <= 0:
            return 0.0
        a1, b1, a2, b2, d = self._stretch_terms(batch, context_tokens)
        return sum_max_affine(a1, b1, a2, b2, iterations) + d * iterations

    def decode_stretch_breakdown(self, batch: int, context_tokens: float, iterations: int) -> Breakdown:
        """:meth:`decode_stretch_s` by component (seconds summed over the stretch)."""
        if batch <= 0 or iterations <= 0:
            return Breakdown(compute=0.0, memory=0.0, tp_comm=0.0, ep_comm=0.0, overhead=0.0)
        a1, b1, a2, b2, _ = self._stretch_terms(batch, context_tokens)
        n = iterations
        compute = arith_sum(a1, b1, 0, n)
        both = sum_max_affine(a1, b1, a2, b2, n)
        tp, ep = self._comm(batch)
        return Breakdown(compute=compute, memory=max(0.0, both - compute), tp_comm=tp * n, ep_comm=ep * n,
                         overhead=self._overhead * n)

    def decode_iterations_within(self, batch: int, context_tokens: float, budget_s: float) -> int:
        """Largest ``k`` with ``decode_stretch_s(batch, context_tokens, k) <= budget_s``.

        Solves the quadratic of each piece in closed form, then checks the neighbours so the
        answer is exactly consistent with :meth:`decode_stretch_s`. An infinite budget gives
        :data:`UNBOUNDED_ITERATIONS`.
        """
        if batch <= 0:
            raise PerfModelError("decode_iterations_within: batch must be >= 1")
        if not budget_s >= 0.0:
            return 0
        if budget_s == math.inf:
            return UNBOUNDED_ITERATIONS
        a1, b1, a2, b2, d = self._stretch_terms(batch, context_tokens)
        if a1 >= a2 and b1 >= b2:
            k = solve_series(a1 + d, b1, budget_s)
        elif a1 <= a2 and b1 <= b2:
            k = solve_series(a2 + d, b2, budget_s)
        else:
            kx = crossing(a1, b1, a2, b2, 2**62)  # first index of the second piece
            (pa, pb), (qa, qb) = ((a1, b1), (a2, b2)) if a1 > a2 else ((a2, b2), (a1, b1))
            first = arith_sum(pa + d, pb, 0, kx)
            if first >= budget_s:
                k = min(kx, solve_series(pa + d, pb, budget_s))
            else:
                k = kx + solve_series(qa + qb * kx + d, qb, budget_s - first)
        return refine_iterations(self.decode_stretch_s, batch, context_tokens, k, budget_s)

    # ---- chunked prefill ---------------------------------------------------------------------
    def mixed_iteration_time_s(self, prefill_tokens: int, decode_batch: int, context_tokens: float,
                               attn_pairs: float | None = None) -> float:
        """One continuous-batching iteration: a prefill chunk plus ``decode_batch`` decodes.

        FLOPs of both add; weights are read once (for all ``prefill_tokens + decode_batch``
        tokens), plus the decodes' KV (``context_tokens`` in total) and the chunk's KV writes.
        ``attn_pairs`` is the chunk's causal pairs (default ``prefill_tokens**2 / 2``).
        """
        if prefill_tokens <= 0 and decode_batch <= 0:
            return 0.0
        pairs = prefill_tokens * prefill_tokens * 0.5 if attn_pairs is None else attn_pairs
        c, m, tp, ep = self._phases(max(prefill_tokens, 0), pairs, max(decode_batch, 0), context_tokens)
        return (c if c > m else m) + tp + ep + self._overhead

    def mixed_iteration_breakdown(self, prefill_tokens: int, decode_batch: int, context_tokens: float,
                                  attn_pairs: float | None = None) -> Breakdown:
        """:meth:`mixed_iteration_time_s` by component."""
        if prefill_tokens <= 0 and decode_batch <= 0:
            return Breakdown(compute=0.0, memory=0.0, tp_comm=0.0, ep_comm=0.0, overhead=0.0)
        pairs = prefill_tokens * prefill_tokens * 0.5 if attn_pairs is None else attn_pairs
        parts = self._phases(max(prefill_tokens, 0), pairs, max(decode_batch, 0), context_tokens)
        return self._as_breakdown(parts, self._overhead)

    # ---- PD separation -----------------------------------------------------------------------
    def kv_transfer_time_s(self, prompt_tokens: int, bandwidth_Bps: float, latency_s: float = 0.0,
                           overlap_s: float = 0.0) -> float:
        """Seconds to move a prompt's KV cache to a decode replica (DOMAIN.md 5).

        ``prompt_tokens * kv_bytes_per_token_unique / bandwidth_Bps + latency_s``. With
        ``overlap_s`` > 0 (the prefill time), the transfer runs layer by layer behind the
        prefill and only ``max(T / l, T - overlap_s (l - 1) / l)`` is exposed.
        """
        if bandwidth_Bps <= 0:
            raise PerfModelError(f"kv_transfer_time_s: bandwidth must be > 0, got {bandwidth_Bps!r}")
        t = prompt_tokens * self._kv_unique / bandwidth_Bps
        if overlap_s > 0.0:
            layers = self._layers
            t = max(t / layers, t - overlap_s * (layers - 1) / layers)
        return t + latency_s

    # ---- energy ------------------------------------------------------------------------------
    def power_w(self, phase: str) -> float:
        """Electrical power of the whole replica in ``phase`` (:func:`.power.card_power_w` x cards)."""
        acc = self.accelerator
        assert isinstance(acc, AcceleratorSpec)
        return card_power_w(acc, phase) * self._cards

    def energy_j(self, phase: str, duration_s: float) -> float:
        """Joules the replica uses in ``phase`` for ``duration_s`` seconds."""
        return self.power_w(phase) * duration_s

    def decode_stretch_energy_j(self, batch: int, context_tokens: float, iterations: int) -> float:
        """Joules of a decode stretch (:meth:`decode_stretch_s` at decode power)."""
        return self.power_w("decode") * self.decode_stretch_s(batch, context_tokens, iterations)
