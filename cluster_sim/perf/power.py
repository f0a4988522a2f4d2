"""Electrical power of an inference card by phase: SplitwiseSim's measured per-GPU defaults for
A100 and H100 (DOMAIN.md 3.4, V), fractions of TDP for other cards (used by
:meth:`cluster_sim.perf.inference.ReplicaPerf.power_w`).

>>> from cluster_sim.catalog import accelerator
>>> card_power_w(accelerator("h100-sxm"), "decode")
380.0
"""

from __future__ import annotations

from typing import Any

from ..errors import PerfModelError

__all__ = ["DECODE_POWER_FRACTION", "IDLE_FRACTION_OF_TDP", "PHASES", "PREFILL_POWER_FRACTION", "SPLITWISE_W",
           "card_power_w"]

PHASES = ("idle", "prefill", "decode", "mixed")
# SplitwiseSim per-GPU power defaults (DOMAIN.md 3.4, V): idle / prefill / decode watts.
SPLITWISE_W = {
    "a100-40gb": (63.0, 400.0, 250.0),
    "a100-80gb": (63.0, 400.0, 250.0),
    "h100-sxm": (75.0, 700.0, 380.0),
}
# Other cards: fractions of TDP, the mean of SplitwiseSim's A100 (0.625) and H100 (0.543).
IDLE_FRACTION_OF_TDP = 0.15
"""Idle power of a card whose catalog entry has none, as a share of its TDP (an assumption: the
SplitwiseSim idle defaults are 0.16 and 0.11 of the A100's and H100's TDP). The serving engine's
run notes say when it is used."""
PREFILL_POWER_FRACTION = 1.0
DECODE_POWER_FRACTION = 0.58


def card_power_w(acc: Any, phase: str) -> float:
    """Watts of one card (catalog spec ``acc``) in ``phase`` (``idle``, ``prefill``, ``decode``,
    ``mixed``): SplitwiseSim's defaults for A100 and H100; other cards the catalog ``idle_w`` and
    ``1.0`` / ``0.58`` of TDP for prefill / decode (and :data:`IDLE_FRACTION_OF_TDP` of it when
    the catalog has no idle power). Mixed (chunked prefill) iterations draw
    prefill power."""
    known = SPLITWISE_W.get(acc.name)
    if known is not None:
        idle, pre, dec = known
    else:
        idle = acc.idle_w or IDLE_FRACTION_OF_TDP * acc.tdp_w   # noted by the serving engine
        pre, dec = PREFILL_POWER_FRACTION * acc.tdp_w, DECODE_POWER_FRACTION * acc.tdp_w
    table = {"idle": idle, "prefill": pre, "decode": dec, "mixed": pre}
    if phase not in table:
        raise PerfModelError(f"power_w: unknown phase {phase!r}; known: {', '.join(table)}")
    return table[phase]
