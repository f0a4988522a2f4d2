"""Interconnect topologies: cards, scale-up domains, scale-out fabrics, data-centre links.

>>> from cluster_sim.topology import rail_optimized
>>> t = rail_optimized("hgx-h100", 16)
>>> t.n_cards, len(t.domains())
(128, 16)
>>> [(lv.tier, lv.fanout) for lv in t.comm_levels(range(16))]
[('scaleup', 8), ('scaleout', 2)]

See ``docs/topology.md`` for the model, the builders and the YAML format.
"""

from __future__ import annotations

from .builders import (
    fat_tree,
    heterogeneous,
    multi_dc,
    rail_optimized,
    scaleup_domain,
    supernode_cluster,
)
from .files import load_topology
from .graph import CardTable, DciLink, EdgeTable, SiteInfo, Topology
from .levels import TIERS, CommLevel
from .torus import torus

__all__ = [
    "TIERS",
    "CardTable",
    "CommLevel",
    "DciLink",
    "EdgeTable",
    "SiteInfo",
    "Topology",
    "fat_tree",
    "heterogeneous",
    "load_topology",
    "multi_dc",
    "rail_optimized",
    "scaleup_domain",
    "supernode_cluster",
    "torus",
]
