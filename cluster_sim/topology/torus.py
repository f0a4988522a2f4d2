"""3D-torus topologies (Google TPU pods: chips on an ICI torus, hosts on the data-centre network).

>>> from cluster_sim.topology.torus import torus
>>> t = torus("tpu-v4-pod", (4, 4, 4))
>>> t.n_cards, len(t.domains()), round(t.bisection_Bps / 1e12, 1)   # 2 x 16 links x 50 GB/s
(64, 1, 1.6)

The slice is one scale-up domain: collective cost models see it through ``comm_levels`` like any
scale-up domain (per-rank bandwidth = the chip's whole ICI bandwidth x the library efficiency,
which a collective over a multi-dimensional slice can use; a group along one axis uses only 2 of
the chip's 6 links, so its time is optimistic by up to 3x: docs/topology.md). The links
themselves are the torus (routes, drawings, bisection).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..errors import TopologyError
from .builders import DEFAULT_LEAF_RADIX, _build_site, _part, _system
from .graph import Topology

__all__ = ["torus"]


def torus(system: str = "tpu-v4-pod", dims: Sequence[int] = (4, 4, 4), count: int = 1, *,
          fabric: str = "ethernet", nic_gbps: float | None = None, name: str | None = None) -> Topology:
    """``count`` torus slices of shape ``dims`` cut from a ``torus`` system (TPU pods, ICI).

    Each slice is one scale-up domain whose cards link to their neighbours in every dimension
    (wrap-around included); a chip's ICI bandwidth is split over its 2 links per dimension. With
    ``count > 1`` the slices' host NICs (DCN) share one non-blocking ``fabric`` switch.
    """
    s = _system(system)
    if s.scaleup_fabric != "torus":
        raise TopologyError(f"system {s.name!r} has a {s.scaleup_fabric!r} scale-up fabric, not a torus")
    shape = list(dims) if isinstance(dims, (list, tuple)) else None
    if not shape or len(shape) > len(s.torus_dims) or any(
            isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in shape):
        raise TopologyError(f"dims must be 1 to {len(s.torus_dims)} positive integers, got {dims!r:.60}")
    pod = sorted(s.torus_dims, reverse=True)
    if any(d > p for d, p in zip(sorted(shape, reverse=True), pod, strict=False)):
        raise TopologyError(f"dims {'x'.join(map(str, shape))} do not fit {s.name}'s "
                            f"{'x'.join(map(str, s.torus_dims))} torus")
    n = int(np.prod(shape))
    if n % s.cards_per_node:
        raise TopologyError(f"a {'x'.join(map(str, shape))} slice has {n} chips, not a multiple of "
                            f"{s.cards_per_node} chips per host")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise TopologyError(f"count must be a positive integer, got {count!r}")
    sl = dataclasses.replace(s, domain_cards=n, torus_dims=tuple(int(d) for d in shape))
    parts = [_part(sl, count * sl.nodes_per_domain, nic_gbps)]
    return _build_site(parts, fabric=fabric, attach="flat" if count > 1 else "none",
                       leaf_radix=DEFAULT_LEAF_RADIX, oversubscription=1.0, tiers=None, pod_leaves=None,
                       name=name or f"{s.name}-{'x'.join(map(str, shape))}" + (f"-x{count}" if count > 1 else ""),
                       builder="torus", params={"system": s.name, "dims": [int(d) for d in shape],
                                                "count": count, "fabric": fabric})
