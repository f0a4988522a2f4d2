"""Scale-out and DCI fabric kinds, loaded from ``catalog/data/fabrics.toml``.

A fabric says how a network behaves, not how fast one card's NIC is: the NIC line rate
comes from the system (:attr:`SystemSpec.nic_bytes_per_s_per_card`); the fabric adds the
per-hop latency, the fixed endpoint (NIC and software stack) latency and the fraction of
line rate a collective library reaches on it (NCCL busbw / line rate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FabricSpec"]


@dataclass(frozen=True)
class FabricSpec:
    """One kind of network between scale-up domains (``scaleout``) or data centres (``dci``).

    Parameters
    ----------
    name, display_name : str
        Catalog key and human name.
    kind : str
        ``infiniband``, ``roce``, ``ethernet``, ``ub`` or ``dci``.
    tier : str
        ``scaleout`` or ``dci``: the edge tier this fabric builds.
    line_rate_gbit_s : float
        Typical port line rate in Gbit/s (informational; card NICs come from the system).
    latency_s : float
        One hop (one link plus one switch traversal), seconds.
    nic_latency_s : float
        Fixed end-to-end cost of one message at the endpoints (NIC, driver, stack), seconds.
    efficiency : float
        Collective busbw over line rate on this fabric (0-1].
    """

    name: str
    display_name: str
    kind: str
    tier: str
    line_rate_gbit_s: float
    latency_s: float
    nic_latency_s: float
    efficiency: float
    source: str = ""
    confidence: str = "U"
    field_sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.tier not in ("scaleout", "dci"):
            raise ValueError(f"fabric {self.name}: tier must be 'scaleout' or 'dci', got {self.tier!r}")
        if not 0 < self.efficiency <= 1:
            raise ValueError(f"fabric {self.name}: efficiency must be in (0, 1], got {self.efficiency}")
