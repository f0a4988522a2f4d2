"""What a group of cards looks like to a collective: one :class:`CommLevel` per tier crossed.

A topology turns a set of cards (the ranks of one TP, DP, EP or PP group) into a tuple of
levels, innermost first. Collective cost models (``cluster_sim.network.collectives``) consume
them; nothing here knows about graphs.

Example: 64 H100s on 8 HGX nodes under one leaf, as one data-parallel group::

    (CommLevel("scaleup", fanout=8, bandwidth_Bps=450e9, latency_s=2e-6, efficiency=0.82),
     CommLevel("scaleout", fanout=8, bandwidth_Bps=50e9, latency_s=5e-6, efficiency=0.94))
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TIERS", "CommLevel"]

TIERS = ("scaleup", "scaleout", "dci")


@dataclass(frozen=True)
class CommLevel:
    """One tier of a communication group.

    Parameters
    ----------
    tier : str
        ``scaleup`` (NVLink/HCCS/UB inside a domain), ``scaleout`` (RoCE/IB between domains)
        or ``dci`` (between data centres).
    fanout : int
        How many units this level joins: ranks per domain at the scale-up level, domains per
        site at the scale-out level, sites at the DCI level. Product over levels = group size
        (for a balanced group).
    bandwidth_Bps : float
        Line-rate bandwidth available to *each rank* at this level, bytes/s per direction,
        already divided by any oversubscription or convergence ratio the group crosses.
    latency_s : float
        Per-message latency (alpha) at this level, seconds.
    efficiency : float
        Fraction of line rate a collective library reaches at this level (NCCL busbw / line).
    """

    tier: str
    fanout: int
    bandwidth_Bps: float
    latency_s: float
    efficiency: float = 1.0

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")
        if self.fanout < 1:
            raise ValueError("fanout must be >= 1")
        if self.bandwidth_Bps <= 0 or self.latency_s < 0 or not 0 < self.efficiency <= 1:
            raise ValueError("bandwidth must be > 0, latency >= 0, 0 < efficiency <= 1")

    @property
    def effective_Bps(self) -> float:
        """Bandwidth a collective really moves per rank: line rate x efficiency."""
        return self.bandwidth_Bps * self.efficiency
