"""The experiment's cluster: an interconnect topology, or a node inventory for the cluster engine.

``cluster.topology`` is a topology file or inline builder spec (:mod:`cluster_sim.topology`), or
a node inventory (``{builder: openb_nodes | pai_machines | node_groups, ...}``,
:func:`cluster_sim.experiment.build.build_layout`) that lists servers and their cards and has no
interconnect model: the cluster engine runs on it, step-time estimates, scaling curves and
serving need a topology and say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..config import ExperimentConfig, resolve_path
from ..engine.cluster.state import ClusterLayout, layout_from_topology
from ..errors import ClusterSimError, ConfigError
from ..topology import load_topology
from .build import NODE_BUILDERS, build_layout

__all__ = ["Cluster", "load_cluster", "node_inventory"]


def _requalify(exc: ClusterSimError, where: str) -> ClusterSimError:
    msg = str(exc)
    return type(exc)(msg if msg.startswith(where) else f"{where}: {msg}")


def load_cluster(spec: str | Mapping[str, Any], base_dir: str | Path = ".", where: str = "cluster.topology") -> Any:
    """Load a topology from a file path (resolved against ``base_dir``) or an inline builder spec."""
    builder = node_inventory(spec)
    if builder is not None:
        raise ConfigError(f"{where}: builder {builder!r} is a node inventory for the cluster "
                          "scheduling engine, not an interconnect topology; step-time estimates, scaling "
                          "curves and serving need a topology (docs/topology.md)")
    try:
        if isinstance(spec, str):
            return load_topology(resolve_path(spec, base_dir))
        return load_topology(dict(spec), base_dir=base_dir)
    except ClusterSimError as exc:
        raise _requalify(exc, where) from None


def node_inventory(spec: Any) -> str | None:
    """The builder name when ``cluster.topology`` is a node inventory (``openb_nodes``, ...), else None.

    A node inventory (DESIGN.md 3, ``experiment.build.build_layout``) lists servers and their
    cards for the cluster scheduling engine; it has no interconnect model.
    """
    if isinstance(spec, Mapping) and spec.get("builder") in NODE_BUILDERS:
        return str(spec["builder"])
    return None


@dataclass(frozen=True)
class Cluster:
    """The experiment's cluster: a topology, or a node inventory (``topology`` is None)."""

    name: str
    n_cards: int
    cards_by_type: dict[str, int]
    topology: Any = None
    inventory: dict[str, Any] = field(default_factory=dict)
    inventory_layout: ClusterLayout | None = field(default=None, repr=False, compare=False)

    @cached_property
    def layout(self) -> ClusterLayout:
        """The cluster engine's layout of this cluster (built from the loaded topology on first use)."""
        if self.inventory_layout is not None:
            return self.inventory_layout
        return layout_from_topology(self.topology)

    @classmethod
    def load(cls, cfg: ExperimentConfig) -> Cluster:
        """Load ``cfg.cluster.topology`` (errors prefixed ``cluster.topology``)."""
        spec = cfg.cluster.topology
        builder = node_inventory(spec)
        if builder is None or isinstance(spec, str):
            topo = load_cluster(spec, cfg.base_dir)
            return cls(name=topo.name, n_cards=topo.n_cards,
                       cards_by_type={k: int(len(v)) for k, v in topo.cards_by_type().items()}, topology=topo)
        try:
            lo = build_layout(dict(spec), cfg.base_dir)
        except ClusterSimError as exc:
            raise _requalify(exc, "cluster.topology") from None
        by_type = lo.capacity_by_type()
        info = {"name": lo.name, "builder": builder, "n_cards": lo.n_cards, "cards_by_type": by_type,
                "nodes": int(lo.card_node.max()) + 1, "leaves": int(lo.card_leaf.max()) + 1,
                "host_resources": lo.node_cpu_milli is not None, "assumed_card_types": list(lo.assumed_types)}
        return cls(name=lo.name, n_cards=lo.n_cards, cards_by_type=by_type, inventory=info, inventory_layout=lo)

    def summary(self) -> dict[str, Any]:
        """``Topology.summary()``, or the node inventory's name, builder, cards, nodes and leaves."""
        return self.topology.summary() if self.topology is not None else dict(self.inventory)

    def require_topology(self, what: str) -> Any:
        """The topology, or a ConfigError saying that ``what`` needs one."""
        if self.topology is None:
            raise ConfigError(f"{what}: needs an interconnect topology; cluster.topology is a node inventory "
                              f"(builder {self.inventory['builder']}), which only the cluster scheduling engine uses")
        return self.topology
