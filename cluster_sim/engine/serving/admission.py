"""Which requests a service can serve: over-long prompts, rejections by reason, and their notes.

Before the run, every request is checked once (vectorised) against its model's context and the
smallest KV cache of its pools. A service's ``overlong`` option decides what happens to a
request whose ``prompt + output`` exceeds the model's ``max_context``:

* ``reject`` (default): the request is rejected (``request_exceeds_context``, or
  ``prompt_exceeds_context`` when the prompt alone is too long).
* ``truncate``: the prompt keeps its **last** ``max_context - output`` tokens (the oldest
  context is dropped and the newest turn survives, like vLLM's ``truncate_prompt_tokens``); the
  request's ``truncated_tokens`` says how many were cut. Its prefix-block hashes are dropped
  (its token positions no longer match the shared prefix), so it neither hits nor fills the
  prefix cache. A request whose output alone fills the context cannot be truncated to fit and
  is still rejected (``output_exceeds_context``).

Reasons, first match wins: ``empty_request`` (no prompt or no output tokens),
``output_exceeds_context`` (``output >= max_context``: not even a one-token prompt fits),
``prompt_exceeds_context``, ``prompt_exceeds_kv``, ``request_exceeds_context``,
``request_exceeds_kv``. Rejected requests count as SLO misses (they are "decided" and never
meet an SLO; :mod:`cluster_sim.metrics.serving`).

Each service with rejections (or truncations) gets one note line for the run's notes, e.g.
``inference.services[0] chat: 1,282 of 2,500 requests (51.3%) rejected: ...``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...catalog import accelerator
from ...errors import CatalogError, ConfigError
from ...perf.power import IDLE_FRACTION_OF_TDP
from ...topology.levels import CommLevel

__all__ = ["OVERLONG", "REASONS", "balanced", "card_price", "flat_levels", "mark_rejections", "nic_bandwidth",
           "placed_levels", "reject_reasons", "rejection_note", "service_where", "truncate_overlong",
           "truncation_note"]

OVERLONG = ("reject", "truncate")
REASONS = ("", "empty_request", "prompt_exceeds_context", "prompt_exceeds_kv", "request_exceeds_context",
           "request_exceeds_kv", "output_exceeds_context")
"""Rejection reason codes (index = code stored per request; 0 = not rejected)."""

_EMPTY, _PROMPT_CTX, _PROMPT_KV, _REQ_CTX, _REQ_KV, _OUT_CTX = 1, 2, 3, 4, 5, 6
_FIRST_MATCH = (_EMPTY, _OUT_CTX, _PROMPT_CTX, _PROMPT_KV, _REQ_CTX, _REQ_KV)


def truncate_overlong(prompt: np.ndarray, output: np.ndarray, max_context: int | None) -> np.ndarray:
    """Prompt tokens cut from each request so ``prompt + output`` fits ``max_context``.

    Only requests with a prompt and an output, and an output shorter than the context, are
    cut (to ``max_context - output`` prompt tokens, at least one); the others are left for
    :func:`reject_reasons`.

    >>> truncate_overlong(np.array([100, 9000, 50, 10]), np.array([10, 100, 8192, 0]), 8192).tolist()
    [0, 908, 0, 0]
    """
    cut = np.zeros(len(prompt), dtype=np.int64)
    if max_context is None:
        return cut
    ctx = int(max_context)
    ok = (prompt >= 1) & (output >= 1) & (output < ctx) & (prompt + output > ctx)
    cut[ok] = (prompt + output - ctx)[ok]
    return cut


def reject_reasons(prompt: np.ndarray, output: np.ndarray, max_context: int | None, prompt_cap: int,
                   total_cap: int) -> np.ndarray:
    """Reason code per request (0 = servable); see the module docstring for the order.

    ``prompt_cap``: the most prompt tokens a replica can admit; ``total_cap``: the most
    ``prompt + output`` tokens a replica can hold.
    """
    ctx = np.iinfo(np.int64).max if max_context is None else int(max_context)
    bad = {
        _EMPTY: (prompt < 1) | (output < 1),
        _OUT_CTX: output >= ctx,
        _PROMPT_CTX: prompt > ctx,
        _PROMPT_KV: prompt > prompt_cap,
        _REQ_CTX: prompt + output > ctx,
        _REQ_KV: prompt + output > total_cap,
    }
    reason = np.zeros(len(prompt), dtype=np.int8)
    for code in reversed(_FIRST_MATCH):   # earlier reasons overwrite later ones
        reason[bad[code]] = code
    return reason


def mark_rejections(services: Sequence[Any], offsets: np.ndarray, prompt: np.ndarray, output: np.ndarray,
                    truncated: np.ndarray, caps: Sequence[Sequence[int]], options: Any,
                    notes: list[str]) -> np.ndarray:
    """Reason codes of all requests (services' rows in order), appending one note per service.

    ``caps[k]``: the smallest KV capacity (tokens) of each pool of service ``k`` (colocated, or
    prefill then decode); ``options``: the engine's ``ServingOptions`` (KV mode, watermark).
    """
    reason = np.zeros(len(prompt), dtype=np.int8)
    for k, s in enumerate(services):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        prompt_cap, d_cap = (caps[k][0], caps[k][1]) if s.disaggregated else (caps[k][0], caps[k][0])
        total_cap = d_cap if options.upfront else d_cap - int(options.kv_watermark * d_cap) - 1
        if not s.disaggregated and not options.upfront:
            prompt_cap = total_cap - 1
        reason[lo:hi] = reject_reasons(prompt[lo:hi], output[lo:hi], s.max_context, prompt_cap, total_cap)
        where = service_where(s)
        for note in (truncation_note(where, truncated[lo:hi], model=s.model, max_context=s.max_context),
                     rejection_note(where, reason[lo:hi], model=s.model, max_context=s.max_context,
                                    overlong=s.overlong, prompt_cap=prompt_cap, total_cap=total_cap)):
            if note:
                notes.append(note)
    return reason


def _describe(code: int, model: str, ctx: int | None, prompt_cap: int, total_cap: int) -> str:
    m = f"{model}'s" if model else "the model's"
    c = f"{ctx:,}" if ctx is not None else "?"
    return {
        _EMPTY: "no prompt or no output tokens",
        _OUT_CTX: f"an output alone as long as {m} {c}-token context",
        _PROMPT_CTX: f"a prompt longer than {m} {c}-token context",
        _PROMPT_KV: f"a prompt larger than a replica's KV cache ({prompt_cap:,} tokens)",
        _REQ_CTX: f"prompt+output longer than {m} {c}-token context",
        _REQ_KV: f"prompt+output larger than a replica's KV cache ({total_cap:,} tokens)",
    }[code]


def rejection_note(where: str, reason: np.ndarray, *, model: str, max_context: int | None, overlong: str,
                   prompt_cap: int, total_cap: int) -> str | None:
    """One line on a service's rejections (``None`` when there are none)."""
    n = len(reason)
    counts = np.bincount(reason.astype(np.int64), minlength=len(REASONS))
    rejected = int(n - counts[0])
    if not rejected:
        return None
    parts = [f"{int(counts[c]):,} with {_describe(c, model, max_context, prompt_cap, total_cap)}"
             for c in _FIRST_MATCH if counts[c]]
    hints = []
    if overlong == "reject" and (counts[_PROMPT_CTX] or counts[_REQ_CTX]):
        hints.append("set overlong: truncate on the service to cut such prompts to fit instead")
    if counts[_PROMPT_KV] or counts[_REQ_KV]:
        hints.append("more cards per replica (tp) or cards with more memory give more KV room")
    hint = f"; {'; '.join(hints)}" if hints else ""
    return f"{where}: {rejected:,} of {n:,} requests ({rejected / n:.1%}) rejected: {', '.join(parts)}{hint}"


def truncation_note(where: str, cut: np.ndarray, *, model: str, max_context: int | None) -> str | None:
    """One line on a service's truncated prompts (``None`` when none was cut)."""
    k = int((cut > 0).sum())
    if not k:
        return None
    m = f"{model}'s" if model else "the model's"
    return (f"{where}: {k:,} of {len(cut):,} requests ({k / len(cut):.1%}) had their prompt truncated to fit "
            f"{m} {max_context:,}-token context ({int(cut.sum()):,} prompt tokens dropped, the last ones kept)")


def card_price(card_type: str, where: str) -> tuple[float, str | None]:
    """Catalog price per card-hour of ``card_type`` and a note when there is none.

    No card type (a test double) or a catalog entry without a price gives NaN and the note
    "... cost excludes it"; an unknown card type is a :class:`ConfigError` naming ``where``.
    """
    if not card_type:
        return math.nan, f"{where}: no card type, so no catalog price: cost excludes it"
    try:
        price = float(accelerator(card_type).price_usd_per_hour)
    except CatalogError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not price > 0.0:
        return math.nan, f"{where}: no price for card {card_type!r} in the catalog: cost excludes it"
    return price, None


def card_power_note(card_type: str, where: str) -> str | None:
    """A note when the catalog lacks the power figures the replica energy model needs: no TDP
    (the energy excludes the card), or no idle power (idle replicas are taken to draw
    :data:`~cluster_sim.perf.power.IDLE_FRACTION_OF_TDP` of the TDP, ``perf/power.py``)."""
    if not card_type:
        return None
    try:
        acc = accelerator(card_type)
    except CatalogError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not acc.tdp_w > 0.0:
        return f"{where}: no power for card {card_type!r} in the catalog: energy excludes it"
    if not acc.idle_w > 0.0:
        return (f"{where}: no idle power for card {card_type!r} in the catalog: idle replicas are taken "
                f"to draw {IDLE_FRACTION_OF_TDP:.0%} of its {acc.tdp_w:g} W TDP")
    return None


def nic_bandwidth(card_type: str, where: str) -> float:
    """Catalog NIC line rate per card (bytes/s) for KV transfers on virtual cards.

    Raises
    ------
    ConfigError
        No card type, an unknown one, or a catalog entry without NIC bandwidth.
    """
    if not card_type:
        raise ConfigError(f"{where}: no card_type, so no NIC bandwidth for KV transfers; give the pool a "
                          "catalog card_type or run on a topology")
    try:
        bw = float(accelerator(card_type).nic_bytes_per_s)
    except CatalogError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not bw > 0.0:
        raise ConfigError(f"{where}: card {card_type!r} has no NIC bandwidth in the catalog (nic_gbit_s, "
                          "nics_per_card); KV transfers need one, or run on a topology")
    return bw


def flat_levels(levels: Sequence[CommLevel], ranks: int) -> tuple[CommLevel, ...]:
    """One flat level of ``ranks`` for a group whose levels do not multiply to its size.

    An unbalanced group (e.g. 12 cards as 8 + 4 over two domains) is modelled as a flat ring at
    the bottleneck level's effective bandwidth, with the worst latency: the ring bound of
    :func:`cluster_sim.network.collectives.all_reduce`.

    >>> su = CommLevel("scaleup", 8, 450e9, 2e-6, 0.8)
    >>> so = CommLevel("scaleout", 2, 50e9, 5e-6, 0.9)
    >>> flat_levels((su, so), 12)
    (CommLevel(tier='scaleout', fanout=12, bandwidth_Bps=50000000000.0, latency_s=5e-06, efficiency=0.9),)
    """
    worst = min(levels, key=lambda lv: lv.effective_Bps)
    return (CommLevel(worst.tier, int(ranks), worst.bandwidth_Bps, max(lv.latency_s for lv in levels),
                      worst.efficiency),)


def placed_levels(topology: Any, tp: int, ep: int, cards: np.ndarray, where: str, notes: list[str]
                  ) -> tuple[tuple[CommLevel, ...] | None, tuple[CommLevel, ...] | None]:
    """(TP levels, EP levels) of a replica placed on ``cards`` of ``topology``.

    ``None`` for a group of one rank (the perf model's default stays); an unbalanced group
    becomes :func:`flat_levels`, with a note naming ``where``.
    """
    out: list[tuple[CommLevel, ...] | None] = []
    for what, ranks, group in (("TP", tp, cards[:tp]), ("EP", ep, cards[::tp][:ep])):
        if ranks <= 1:
            out.append(None)
            continue
        levels = tuple(topology.comm_levels(group))
        if not balanced(levels, ranks):
            flat = flat_levels(levels, ranks)
            notes.append(f"{where}: its {ranks}-card {what} group spans "
                         f"{' x '.join(f'{lv.tier} {lv.fanout}' for lv in levels)} unevenly; modelled as one "
                         f"flat ring at the {flat[0].tier} bottleneck ({flat[0].bandwidth_Bps / 1e9:g} GB/s "
                         "per rank)")
            levels = flat
        out.append(levels)
    return out[0], out[1]


def balanced(levels: Sequence[CommLevel], ranks: int) -> bool:
    """True when the levels' fanouts multiply to ``ranks`` (what the perf model requires)."""
    return math.prod(lv.fanout for lv in levels) == ranks


def service_where(spec: Any) -> str:
    """How notes name a service: ``meta["where"]`` (``inference.services[0] chat``) or ``service 'chat'``."""
    return str(spec.meta.get("where") or f"service {spec.name!r}")
