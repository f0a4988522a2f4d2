"""Closed-form sums of affine and max-of-two-affine sequences.

A decode iteration's time is ``max(a1 + b1 k, a2 + b2 k)`` in the iteration index ``k`` (compute
vs memory, both growing with the batch's context), so a stretch of iterations sums in closed
form and the number of iterations that fit a time budget solves a quadratic. The serving engine
jumps from event to event with these instead of stepping per token.

>>> arith_sum(1.0, 2.0, 0, 3)        # 1 + 3 + 5
9.0
>>> sum_max_affine(0.0, 2.0, 3.0, 0.0, 4)   # max(0,3) + max(2,3) + max(4,3) + max(6,3)
16.0
"""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["UNBOUNDED_ITERATIONS", "arith_sum", "crossing", "refine_iterations", "solve_series",
           "sum_max_affine"]

UNBOUNDED_ITERATIONS = 2**62  # iterations within an infinite budget


def refine_iterations(stretch: Callable[[int, float, int], float], batch: int, context_tokens: float, k: int, budget_s: float) -> int:
    """Correct a closed-form guess ``k`` to the largest ``k`` with ``stretch(batch, ctx, k) <= budget_s``.

    The closed-form solution of the quadratic can be off by one in floating point; this
    steps it down or up by whole iterations against the exact stretch sum.
    """
    while k > 0 and stretch(batch, context_tokens, k) > budget_s:
        k -= 1
    while stretch(batch, context_tokens, k + 1) <= budget_s:
        k += 1
    return k


def arith_sum(a: float, b: float, k0: int, k1: int) -> float:
    """Sum over ``k0 <= k < k1`` of ``a + b k``."""
    n = k1 - k0
    if n <= 0:
        return 0.0
    return n * a + b * n * (k0 + k1 - 1) * 0.5


def crossing(a1: float, b1: float, a2: float, b2: float, cap: int) -> int:
    """First integer ``k`` at or after the crossing of two lines (at most ``cap``)."""
    kx = (a2 - a1) / (b1 - b2)
    return cap if not kx < cap else min(cap, math.ceil(kx))


def sum_max_affine(a1: float, b1: float, a2: float, b2: float, n: int) -> float:
    """Sum over ``0 <= k < n`` of ``max(a1 + b1 k, a2 + b2 k)``."""
    if a1 >= a2 and b1 >= b2:
        return arith_sum(a1, b1, 0, n)
    if a1 <= a2 and b1 <= b2:
        return arith_sum(a2, b2, 0, n)
    s = crossing(a1, b1, a2, b2, n)
    if a1 > a2:
        return arith_sum(a1, b1, 0, s) + arith_sum(a2, b2, s, n)
    return arith_sum(a2, b2, 0, s) + arith_sum(a1, b1, s, n)


def solve_series(a: float, b: float, budget: float) -> int:
    """Largest ``n >= 0`` with ``n a + b n (n - 1) / 2 <= budget`` (approximately; caller checks)."""
    if budget <= 0.0:
        return 0
    qa, qb = 0.5 * b, a - 0.5 * b  # qa n^2 + qb n - budget = 0
    if qa <= 0.0:
        return int(budget / qb) if qb > 0 else UNBOUNDED_ITERATIONS
    disc = qb * qb + 4.0 * qa * budget
    root = 2.0 * budget / (qb + math.sqrt(disc)) if qb >= 0 else (-qb + math.sqrt(disc)) / (2.0 * qa)
    return max(0, int(root))
