"""Collective costs reduced to affine coefficients for the inference hot path.

Every alpha-beta collective of :mod:`cluster_sim.network.collectives` is affine in the message
size, so its time under algorithm ``auto`` is ``min(a + b S)`` over one ``(a, b)`` pair per
algorithm: :func:`affine_coefficients` computes the pairs once per replica, :func:`min_affine`
evaluates them per iteration without building cost objects.
"""

from __future__ import annotations

import math

from ..network import collectives
from ..topology.levels import CommLevel

__all__ = ["affine_coefficients", "min_affine"]


def affine_coefficients(kind: str, levels: tuple[CommLevel, ...], copies: int = 1,
            max_domains: int | None = None) -> tuple[tuple[float, float], ...]:
    """``(alpha, seconds per byte)`` of every algorithm of ``kind`` over ``levels``.

    Every alpha-beta collective is affine in the message size, so ``min(a + b S)`` over these
    pairs equals ``collectives.<kind>(S, levels).time_s`` (algorithm ``auto``) for any ``S``,
    without building cost objects in the hot path. ``copies`` and ``max_domains`` are the
    all-to-all's routing (top-k destinations per token, node-limited routing).
    """
    def fn(size: float, lv: tuple[CommLevel, ...], algo: str) -> collectives.CollectiveCost:
        if kind == "all_reduce":
            return collectives.all_reduce(size, lv, algo)
        return collectives.all_to_all(size, lv, algo, copies=copies, max_domains=max_domains)

    if math.prod(lv.fanout for lv in levels) <= 1:
        return ()
    probe = 1e9
    out = []
    for algo in collectives.ALGORITHMS[kind]:
        a = fn(0.0, levels, algo).time_s
        out.append((a, (fn(probe, levels, algo).time_s - a) / probe))
    return tuple(out)


def min_affine(coeffs: tuple[tuple[float, float], ...], size_bytes: float) -> float:
    """``min(a + b size_bytes)`` over the pairs (0 with none: no collective)."""
    t = math.inf
    for a, b in coeffs:
        v = a + b * size_bytes
        if v < t:
            t = v
    return t if coeffs else 0.0
