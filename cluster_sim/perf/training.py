"""Training step time, MFU and linear speedup of a (possibly heterogeneous) job on a topology.

The step is 1F1B pipelined: every stage runs ``m`` micro-batches of forward+backward, each
costing GEMM compute, memory-bound element-wise kernels and the tensor/context/expert
parallel collectives of its layers; the first stage also runs the embedding and the last the
output layer and loss (``perf/stages.py``), and every micro-batch may pay a fixed overhead
(``microbatch_overhead_s``). The slowest stage sets the pace: the step pays its micro-batch
time ``m`` times plus a bubble of ``(p-1)/v`` of them, and the stage-boundary sends; data parallelism adds the gradient synchronisation not
hidden behind the backward pass; the optimizer update reads and writes its state once.
Tensor-parallel collectives, pipeline sends, expert all-to-all and ZeRO-2/3 traffic hide behind
compute by the plan's ``*_overlap`` fractions, at the cost of the SMs they take
(``perf/overlap.py``); the defaults (0) are plain Megatron-LM, where only the DP sync overlaps.
All stages march at the pace of the slowest card type (DOMAIN.md section 5, DESIGN.md 3).

Ranks map to cards Megatron-style: ``tp`` fastest, then ``cp``, then ``dp``, then ``pp``
(``rank_order="tp-dp-pp"``), so a pipeline stage is a contiguous block of cards and a
cross-site job crosses the DCI with pipeline sends; ``rank_order="tp-pp-dp"`` makes data
parallelism the outermost dimension instead (gradient sync crosses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..catalog import AcceleratorSpec
from ..errors import ConfigError
from ..network import collectives as coll
from ..topology.levels import CommLevel
from ..units import DAY, GIB
from ..workload.models import ModelSpec
from ..workload.parallelism import ParallelPlan
from .base import Breakdown
from .memory import (
    TrainingMemory,
    expert_data_parallel,
    params_per_card,
    sharded_params,
    training_memory,
)
from .overlap import ZeroTraffic, hide, zero_traffic
from .stages import stage_work

__all__ = [
    "ELEMENTWISE_TRAFFIC",
    "ScalingPoint",
    "TrainingEstimate",
    "estimate_step",
    "pick_cards",
    "scaling_curve",
]

# Bytes of element-wise (memory-bound) traffic per token per layer in the forward pass, as a
# multiple of the Korthikanti activation footprint s*b*h*(34 + 5*a*s/h): each activation is
# written once and read ~once (fitted: 2.0, with A100 flops_efficiency, on Megatron-LM SC21
# Table 1; docs/validation.md). The backward pass moves twice the forward traffic.
ELEMENTWISE_TRAFFIC = 2.0
OPTIMIZER_BYTES_PER_PARAM = 32.0  # Adam: read w, g, m, v, master; write w, m, v, master


@dataclass(frozen=True)
class TrainingEstimate:
    """One training step of one job: time, breakdown and derived rates.

    ``mfu`` counts model FLOPs ``6 N_act + 12 l h s`` per token (no recomputation) over the
    dense peak of every card in ``dtype``; ``hfu`` also counts recomputed FLOPs. ``breakdown``
    holds exposed seconds (they sum to ``step_time_s``); ``hidden`` the communication seconds
    overlapped with compute, by the same keys (``perf/overlap.py``), not part of the step.
    """

    model: str
    card_types: tuple[str, ...]
    cards: int
    plan: ParallelPlan
    seq_len: int
    global_batch: int
    step_time_s: float
    breakdown: Breakdown
    tokens_per_s: float
    tflops_per_card: float
    hfu_tflops_per_card: float
    mfu: float
    hfu: float
    memory: TrainingMemory
    memory_capacity_bytes: float
    scaleout_bytes_per_step: float
    notes: tuple[str, ...] = field(default=())
    hidden: dict[str, float] = field(default_factory=dict)

    @property
    def comm_fraction(self) -> float:
        """Share of the step spent in exposed communication."""
        comm = sum(v for k, v in self.breakdown.items() if k.endswith("_comm") or k == "pp_p2p")
        return comm / self.step_time_s

    @property
    def tokens_per_step(self) -> int:
        """Tokens per optimizer step."""
        return self.global_batch * self.seq_len

    def days_to_train(self, tokens: float) -> float:
        """Wall-clock days to train ``tokens`` tokens at this rate."""
        return tokens / self.tokens_per_s / DAY

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the keys of ``cluster-sim train --json``)."""
        return {
            "model": self.model, "card_types": list(self.card_types), "cards": self.cards,
            "plan": {k: getattr(self.plan, k) for k in self.plan.__dataclass_fields__},
            "seq_len": self.seq_len, "global_batch": self.global_batch,
            "step_time_s": self.step_time_s, "breakdown": self.breakdown.as_dict(),
            "tokens_per_s": self.tokens_per_s, "tflops_per_card": self.tflops_per_card,
            "hfu_tflops_per_card": self.hfu_tflops_per_card, "mfu": self.mfu, "hfu": self.hfu,
            "comm_fraction": self.comm_fraction,
            "memory_per_card_gib": {k: v / GIB for k, v in self.memory.as_dict().items()},
            "memory_capacity_gib": self.memory_capacity_bytes / GIB,
            "scaleout_bytes_per_step": self.scaleout_bytes_per_step, "notes": list(self.notes),
            "hidden": dict(self.hidden),
        }


def pick_cards(topology: Any, n: int, card_type: str | None = None) -> np.ndarray:
    """The first ``n`` cards of ``card_type`` in topology order (packed by domain and leaf)."""
    by_type = topology.cards_by_type()
    if card_type is None:
        pool = np.arange(topology.n_cards)
        label = "cards"
    else:
        if card_type not in by_type:
            raise ConfigError(f"card_type {card_type!r} is not in the topology; it has: "
                              f"{', '.join(sorted(by_type))}")
        pool = np.sort(by_type[card_type])
        label = f"{card_type} cards"
    if n > len(pool):
        raise ConfigError(f"the job needs {n} {label}; the topology has {len(pool)}")
    return pool[:n]


def _layout(plan: ParallelPlan, cards: np.ndarray, rank_order: str) -> np.ndarray:
    """Cards as an array indexed [pp, dp, cp, tp]."""
    if rank_order == "tp-dp-pp":
        return cards.reshape(plan.pp, plan.dp, plan.cp, plan.tp)
    if rank_order == "tp-pp-dp":
        return cards.reshape(plan.dp, plan.pp, plan.cp, plan.tp).transpose(1, 0, 2, 3)
    raise ConfigError(f"rank_order must be 'tp-dp-pp' or 'tp-pp-dp', got {rank_order!r}")


def _shared(levels: tuple[CommLevel, ...], union: tuple[CommLevel, ...]) -> tuple[CommLevel, ...]:
    """Cap each level's per-rank bandwidth by the same tier's share when ``union`` talks at once.

    ``levels`` describe one group; ``union`` all the cards doing the same collective at the
    same time (e.g. every data-parallel group of the job), whose per-rank share of a DCI link
    is smaller than one group's alone.
    """
    cap = {lv.tier: lv.bandwidth_Bps for lv in union}
    return tuple(replace(lv, bandwidth_Bps=min(lv.bandwidth_Bps, cap.get(lv.tier, lv.bandwidth_Bps)))
                 for lv in levels)


def _scale_scaleout(levels: tuple[CommLevel, ...], share: float) -> tuple[CommLevel, ...]:
    if share >= 1.0:
        return levels
    return tuple(replace(lv, bandwidth_Bps=lv.bandwidth_Bps * share) if lv.tier != "scaleup" else lv
                 for lv in levels)


def _crosses(levels: Sequence[CommLevel]) -> bool:
    return any(lv.tier != "scaleup" and lv.fanout > 1 for lv in levels)


def estimate_step(
    model: ModelSpec,
    plan: ParallelPlan,
    topology: Any,
    cards: Sequence[int] | np.ndarray | None = None,
    *,
    seq_len: int = 2048,
    card_type: str | None = None,
    global_batch_tokens: float | None = None,
    dtype: str = "bf16",
    rank_order: str = "tp-dp-pp",
    scaleout_share: float = 1.0,
    check_memory: bool = True,
) -> TrainingEstimate:
    """Time one optimizer step of ``model`` under ``plan`` on ``cards`` of ``topology``.

    Parameters
    ----------
    model, plan : ModelSpec, ParallelPlan
    topology : Topology
        Provides ``comm_levels(cards)`` and ``accelerator(card)``.
    cards : array of int, optional
        The job's cards in rank order; default: the first ``plan.cards`` of ``card_type``.
    seq_len : int
        Sequence length in tokens.
    global_batch_tokens : float, optional
        Tokens per step; sets the micro-batch count (must divide evenly). Default: the
        plan's ``dp * microbatches * microbatch_size`` sequences.
    dtype : str
        Compute dtype ('bf16' or 'fp8'): GEMMs run at the card's ``achievable_flops_for(dtype)``
        and its dense peak in it is the MFU denominator.
    rank_order : str
        'tp-dp-pp' (Megatron, pipeline outermost) or 'tp-pp-dp' (data parallel outermost).
    scaleout_share : float
        Fraction of its scale-out bandwidth the job gets (max-min share under contention).
    check_memory : bool
        Raise :class:`ConfigError` when the plan does not fit in HBM.
    """
    if cards is None:
        cards = pick_cards(topology, plan.cards, card_type)
    cards = np.asarray(cards, dtype=np.int64)
    plan.check_cards(len(cards))
    plan.check_model(model.layers, model.heads, model.experts)
    if global_batch_tokens is not None:
        seqs = global_batch_tokens / seq_len
        per = plan.dp * plan.microbatch_size
        m = seqs / per
        if m < 1 or abs(m - round(m)) > 1e-9:
            raise ConfigError(
                f"global batch of {global_batch_tokens:.4g} tokens = {seqs:.6g} sequences of {seq_len} "
                f"does not split into whole micro-batches over dp={plan.dp} x microbatch_size="
                f"{plan.microbatch_size}")
        plan = replace(plan, microbatches=int(round(m)))

    layout = _layout(plan, cards, rank_order)
    accs = {int(c): topology.accelerator(int(c)) for c in np.unique(cards)}
    stage_acc: list[AcceleratorSpec] = []
    for st in range(plan.pp):
        specs = [accs[int(c)] for c in np.unique(layout[st])]
        stage_acc.append(min(specs, key=lambda a: (a.achievable_flops, a.name)))
    notes: list[str] = []

    # ---- memory ------------------------------------------------------------------------------
    dense_attention = plan.attention_kernel == "dense"
    mem = training_memory(model, plan, seq_len, dense_attention)
    capacity = min(a.hbm_bytes for a in accs.values())
    if check_memory and mem.total_bytes > capacity:
        short = (mem.total_bytes - capacity) / GIB
        fixes = ["raise tp/pp"] + [f for f, unused in (("use recompute=full", plan.recompute != "full"),
                                                       ("zero=3", plan.zero < 3)) if unused]
        hint = fixes[0] if len(fixes) == 1 else ", ".join(fixes[:-1]) + " or " + fixes[-1]
        if model.is_moe:
            hint += (f"; expert states shard only over the dp*tp*cp/ep = {expert_data_parallel(plan)} "
                     "copies of each expert shard")
        raise ConfigError(
            f"plan tp={plan.tp} pp={plan.pp} dp={plan.dp} ep={plan.ep} does not fit {model.name} in memory: "
            f"needs {mem.total_bytes / GIB:.1f} GiB per card, {capacity / GIB:.1f} GiB usable "
            f"({short:.1f} GiB short); {hint}")

    # ---- per micro-batch, per stage ------------------------------------------------------------
    b, s, h, L = plan.microbatch_size, seq_len, model.hidden, model.layers
    tokens_mb = b * s
    layers_stage = L / plan.pp
    f_model_tok = model.train_flops_per_token(s)
    act_bytes = 2  # 16-bit activations
    work = stage_work(model, plan, s, act_bytes)
    f_hw_tok = f_model_tok + work.recompute_flops
    attn_term = 5.0 * model.heads * s / plan.cp if dense_attention else 0.0
    elem_fwd_tok_layer = ELEMENTWISE_TRAFFIC * (34.0 * h + attn_term)
    elem_passes = 3.0 + (1.0 if plan.recompute == "full" else 0.0)  # fwd 1 + bwd 2 (+ recompute)

    tp_group = layout[0, 0, 0, :]
    tp_levels = topology.comm_levels(tp_group) if plan.tp > 1 else ()
    if plan.tp > 1 and _crosses(tp_levels):
        notes.append("tensor-parallel group crosses scale-up domains")
    n_tp_ar = 4 + (2 if plan.recompute == "full" else 0)
    t_tp = (n_tp_ar * layers_stage * coll.all_reduce(tokens_mb / plan.cp * h * act_bytes, tp_levels).time_s
            if plan.tp > 1 else 0.0)

    t_cp = 0.0
    if plan.cp > 1:
        cp_levels = topology.comm_levels(layout[0, 0, :, 0])
        kv = tokens_mb / plan.cp * 2 * model.kv_heads * model.head_dim * act_bytes
        t_cp = (2 + (plan.recompute == "full")) * layers_stage * coll.all_gather(kv * plan.cp, cp_levels).time_s

    t_ep = 0.0
    if model.is_moe and plan.ep > 1:
        ep_cards = layout[0].reshape(-1)[: plan.ep]
        ep_levels = _scale_scaleout(topology.comm_levels(ep_cards), scaleout_share)
        a2a_bytes = tokens_mb / plan.cp / plan.tp * model.experts_per_token * h * act_bytes
        n_a2a = 4 + (2 if plan.recompute == "full" else 0)
        moe_layers_stage = model.moe_layers / plan.pp
        a2a = coll.all_to_all(a2a_bytes, ep_levels, copies=model.experts_per_token,
                              max_domains=model.max_route_nodes or None)
        t_ep = n_a2a * moe_layers_stage * a2a.time_s

    # each stage: its layers, plus the embedding (first) or the output layer and loss (last)
    comp, elem, logits, loss, emb = [], [], [], [], []
    tok_card = tokens_mb / (plan.tp * plan.cp)
    for st, acc in enumerate(stage_acc):
        flops, hbm = acc.achievable_flops_for(dtype), acc.achievable_hbm_bytes_per_s
        last = st == plan.pp - 1
        comp.append(work.layer_flops * tok_card / plan.pp / flops)
        elem.append(elem_fwd_tok_layer * elem_passes * layers_stage * tok_card / hbm)
        logits.append(work.logits_flops * tok_card / flops if last else 0.0)
        loss.append(work.loss_bytes * tok_card / hbm if last else 0.0)
        emb.append(work.embedding_bytes * tok_card / hbm if st == 0 else 0.0)
    stage_t = np.sum([comp, elem, logits, loss, emb], axis=0)
    slow = int(np.argmax(stage_t))
    t_layers, t_out = comp[slow], logits[slow]
    t_elem = elem[slow] + loss[slow] + emb[slow]  # the loss and the embedding are memory-bound
    t_comp = t_layers  # the layers' GEMMs, which communication can hide behind
    if len({a.name for a in stage_acc}) > 1:
        notes.append(f"heterogeneous stages: paced by {stage_acc[slow].name}")
    if plan.pp > 1 and stage_t.max() > stage_t.min() * (1 + 1e-3):
        notes.append(f"pipeline stages are unbalanced: stage {slow} (of {plan.pp}) takes "
                     f"{stage_t.max() / stage_t.min() - 1:.1%} longer than the fastest; 1F1B runs at its pace")
    m = plan.microbatches
    t_fixed = plan.microbatch_overhead_s

    # ---- overlap of each micro-batch's communication with its compute (perf/overlap.py) ----------
    dp_lv: tuple[CommLevel, ...] = ()
    if plan.dp > 1:
        dp_lv = _shared(topology.comm_levels(layout[0, :, 0, 0]), topology.comm_levels(cards))
        dp_lv = _scale_scaleout(dp_lv, scaleout_share)
    grad_bytes = params_per_card(model, plan) * 2.0
    zt = zero_traffic(plan.zero, grad_bytes, grad_bytes, layers_stage, dp_lv) if plan.dp > 1 else ZeroTraffic()
    tp_o = hide(t_tp, plan.tp_overlap, t_comp)
    ep_o = hide(t_ep, plan.ep_overlap, t_comp - tp_o.hidden_s)
    free = t_comp - tp_o.hidden_s - ep_o.hidden_s  # compute no overlap uses yet
    zf = hide(zt.fwd_mb, plan.dp_overlap, free / 3.0)  # ZeRO-3 gathers behind the forward
    zb = hide(zt.bwd_mb, plan.dp_overlap, free * 2.0 / 3.0)  # and behind the backward
    t_sm = tp_o.slowdown_s + ep_o.slowdown_s + zf.slowdown_s + zb.slowdown_s
    t_zero_mb = zf.exposed_s + zb.exposed_s
    t_mb = t_layers + t_out + t_fixed + t_elem + tp_o.exposed_s + t_cp + ep_o.exposed_s + t_zero_mb + t_sm

    # ---- pipeline --------------------------------------------------------------------------------
    v = plan.virtual_stages
    t_bubble = (plan.pp - 1) / v * t_mb
    t_p2p_exposed = 0.0
    t_p2p_hidden = 0.0
    scaleout_bytes = 0.0
    if plan.pp > 1:
        p2p_bytes = tokens_mb / plan.cp * h * act_bytes / (plan.tp if plan.sequence_parallel else 1)
        worst = 0.0
        for st in range(plan.pp - 1):
            pair = np.array([layout[st, 0, 0, 0], layout[st + 1, 0, 0, 0]])
            union = topology.comm_levels(np.concatenate([layout[st].ravel(), layout[st + 1].ravel()]))
            lv = _shared(topology.comm_levels(pair), union)
            lv = _scale_scaleout(lv, scaleout_share)
            t = coll.point_to_point(p2p_bytes, lv).time_s
            if _crosses(lv):
                scaleout_bytes += 2 * m * v * p2p_bytes * plan.dp * plan.cp * plan.tp
            worst = max(worst, t)
        # fill/drain sends are on the critical path; steady-state sends hide behind compute
        # unless a send takes longer than a micro-batch. With overlapped P2P (interleaved only)
        # the sends of chunks 2..v hide behind the chunk computations queued in the warm-up;
        # the first chunk's p-1 sends each way stay a true dependency chain.
        later = 2 * (plan.pp - 1) * (v - 1)
        pp_o = hide(later * worst, plan.pp_overlap, later * free / v)
        t_p2p_hidden = pp_o.hidden_s
        t_sm_pp = pp_o.slowdown_s
        t_p2p_exposed = (2 * (plan.pp - 1) * v * worst - pp_o.hidden_s
                         + 2 * m * v * max(0.0, worst - t_mb / v))
    else:
        t_sm_pp = 0.0

    # ---- data parallel gradient synchronisation --------------------------------------------------
    # ZeRO 0/1: one all-reduce per step; 2: per-micro-batch reduce-scatters (above) and one
    # parameter all-gather; 3: per-layer gathers and reduce-scatters every micro-batch (above).
    t_dp_exposed = t_dp = 0.0
    if plan.dp > 1:
        t_dp = coll.all_reduce(grad_bytes, dp_lv).time_s if plan.zero <= 1 else zt.step
        if _crosses(dp_lv):
            passes = {0: 2, 1: 2, 2: m + 1, 3: 3 * m}[plan.zero]
            scaleout_bytes += passes * grad_bytes * (plan.dp - 1) / plan.dp * plan.cards
        window = plan.dp_overlap * m * t_mb * 2.0 / 3.0  # backward compute it may hide behind
        t_dp_exposed = max(t_dp * (1.0 - plan.dp_overlap), t_dp - window)
    hidden = {"tp_comm": m * tp_o.hidden_s, "ep_comm": m * ep_o.hidden_s, "pp_p2p": t_p2p_hidden,
              "dp_comm": t_dp - t_dp_exposed + m * (zf.hidden_s + zb.hidden_s)}

    # ---- optimizer ---------------------------------------------------------------------------------
    opt_params = sharded_params(model, plan, 1)  # ZeRO-1+: dense over dp, experts over dp_expert
    t_opt = opt_params * OPTIMIZER_BYTES_PER_PARAM / stage_acc[slow].achievable_hbm_bytes_per_s

    parts = {
        "compute": m * t_layers, "output_layer": m * t_out, "microbatch_overhead": m * t_fixed,
        "memory_bound": m * t_elem, "tp_comm": m * tp_o.exposed_s, "cp_comm": m * t_cp,
        "ep_comm": m * ep_o.exposed_s, "pp_bubble": t_bubble, "pp_p2p": t_p2p_exposed,
        "dp_comm": t_dp_exposed + m * t_zero_mb, "optimizer": t_opt,
        "overlap_slowdown": m * t_sm + t_sm_pp,
    }
    breakdown = Breakdown({k: v for k, v in parts.items() if v > 0 or k in ("compute", "pp_bubble", "dp_comm")})
    step = breakdown.total
    global_batch = plan.global_batch
    tokens_per_s = global_batch * s / step
    peak = sum(accs[int(c)].peak_flops_for(dtype) for c in cards)
    model_flops_s = f_model_tok * tokens_per_s
    hw_flops_s = f_hw_tok * tokens_per_s
    return TrainingEstimate(
        model=model.name, card_types=tuple(sorted({a.name for a in accs.values()})), cards=len(cards),
        plan=plan, seq_len=s, global_batch=global_batch, step_time_s=step, breakdown=breakdown,
        tokens_per_s=tokens_per_s, tflops_per_card=model_flops_s / len(cards) / 1e12,
        hfu_tflops_per_card=hw_flops_s / len(cards) / 1e12, mfu=model_flops_s / peak, hfu=hw_flops_s / peak,
        memory=mem, memory_capacity_bytes=capacity, scaleout_bytes_per_step=scaleout_bytes, notes=tuple(notes),
        hidden={k: v for k, v in hidden.items() if v > 0},
    )


@dataclass(frozen=True)
class ScalingPoint:
    """One point of a scaling curve."""

    cards: int
    estimate: TrainingEstimate
    speedup: float
    linear_speedup: float

    def as_dict(self) -> dict[str, float]:
        """Flat JSON row."""
        e = self.estimate
        return {"cards": self.cards, "dp": e.plan.dp, "global_batch": e.global_batch,
                "step_time_s": e.step_time_s, "tokens_per_s": e.tokens_per_s, "mfu": e.mfu,
                "tflops_per_card": e.tflops_per_card, "speedup": self.speedup,
                "linear_speedup": self.linear_speedup, "comm_fraction": e.comm_fraction}


def scaling_curve(
    model: ModelSpec,
    plan: ParallelPlan,
    topology: Any,
    card_counts: Sequence[int],
    *,
    mode: str = "weak",
    card_type: str | None = None,
    **kwargs: Any,
) -> list[ScalingPoint]:
    """Throughput against card count, growing data parallelism.

    ``weak``: each data-parallel rank keeps its micro-batches (global batch grows with the
    cards; compare per-card throughput). ``strong``: the global batch of the smallest count is
    kept and split over more ranks. ``linear_speedup = X(N) / ((N/N0) X(N0))`` (DOMAIN.md 2).
    """
    if mode not in ("weak", "strong"):
        raise ConfigError(f"scaling mode must be 'weak' or 'strong', got {mode!r}")
    counts = sorted({int(n) for n in card_counts})
    unit = plan.tp * plan.pp * plan.cp
    bad = [n for n in counts if n % unit]
    if bad:
        raise ConfigError(f"card counts {bad} are not multiples of tp*pp*cp = {unit}")
    points: list[ScalingPoint] = []
    base_batch = None
    for n in counts:
        dp = n // unit
        p = replace(plan, dp=dp)
        if mode == "strong":
            if base_batch is None:
                base_batch = p.global_batch
            per = dp * p.microbatch_size
            if base_batch % per:
                raise ConfigError(f"strong scaling: global batch {base_batch} does not split over dp={dp}")
            p = replace(p, microbatches=base_batch // per)
        cards = pick_cards(topology, n, card_type)
        est = estimate_step(model, p, topology, cards, **kwargs)
        x0 = points[0].estimate.tokens_per_s if points else est.tokens_per_s
        n0 = points[0].cards if points else n
        speedup = est.tokens_per_s / x0
        points.append(ScalingPoint(n, est, speedup, speedup / (n / n0)))
    return points

