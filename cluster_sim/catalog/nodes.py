"""Servers and scale-up systems (8-card nodes, NVL72 racks, 384-card supernodes)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["SystemSpec"]


@dataclass(frozen=True)
class SystemSpec:
    """A server or scale-up system built from one accelerator type.

    ``cards_per_node`` cards sit in one chassis; ``domain_cards`` cards share one
    scale-up fabric (equal to ``cards_per_node`` for an 8-GPU server, 72 for NVL72,
    384 for CloudMatrix384). ``scaleup_fabric`` is ``switched`` (NVSwitch, UB switches),
    ``mesh`` (HCCS full mesh), ``pcie`` or ``torus`` (TPU ICI: each card linked to its
    neighbours in every dimension of ``torus_dims``, wrap-around included; the product of
    ``torus_dims`` is ``domain_cards``; the ``torus`` builder cuts smaller slices).
    """

    name: str
    display_name: str
    accelerator: str
    cards_per_node: int
    domain_cards: int
    scaleup_fabric: str
    nics_per_node: int
    nic_gbit_s: float
    host_power_w: float = 0.0
    node_power_w: float = 0.0
    scaleup_latency_s: float = 1e-6
    torus_dims: tuple[int, ...] = ()
    source: str = ""
    confidence: str = "U"
    field_sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        dims = tuple(self.torus_dims)
        if any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
            raise ValueError(f"torus_dims must be positive integers, got {list(dims)!r:.60}")
        if (self.scaleup_fabric == "torus") != bool(dims):
            raise ValueError("a torus system needs torus_dims, and only a torus system has them")
        if dims and math.prod(dims) != self.domain_cards:
            raise ValueError(f"torus_dims {'x'.join(map(str, dims))} hold {math.prod(dims)} cards, "
                             f"not domain_cards = {self.domain_cards}")
        object.__setattr__(self, "torus_dims", dims)

    @property
    def nodes_per_domain(self) -> int:
        """Chassis per scale-up domain."""
        return max(1, self.domain_cards // self.cards_per_node)

    @property
    def nic_bytes_per_s_per_card(self) -> float:
        """Scale-out line rate per card in bytes/s."""
        return self.nics_per_node * self.nic_gbit_s * 1e9 / 8 / self.cards_per_node
