"""The ``failures`` config section -> the training engine's
:class:`~cluster_sim.engine.cluster.failures.FailureModel` (docs/faults.md)."""

from __future__ import annotations

from typing import Any

from .. import units
from ..engine.cluster.failure_process import uplinks_per_leaf
from ..engine.cluster.failures import FailureClass, FailureModel
from ..engine.cluster.state import ClusterLayout
from ..errors import ConfigError
from .checkpoints import with_checkpoint_section

__all__ = ["failure_classes", "failure_model"]


def failure_model(cfg: Any, layout: ClusterLayout | None = None) -> FailureModel | None:
    """A :class:`FailureModel` from a ``failures`` config section (None if absent); its
    ``classes`` need the cluster ``layout`` (rates per 1,000 node-days become per-unit MTBFs,
    :func:`failure_classes`)."""
    if cfg is None:
        return None
    extra: dict[str, Any] = {} if cfg.checkpoint_interval is None else {"checkpoint_interval_s": cfg.checkpoint_interval}
    if cfg.classes or cfg.spare_nodes or cfg.technicians is not None or cfg.detection or cfg.restart_delay == "auto":
        if layout is None:
            raise ConfigError("failures: failure classes, spares, technicians and detection need the cluster")
        extra.update(classes=failure_classes(cfg, layout), spare_nodes=cfg.spare_nodes, swap_s=cfg.swap_time,
                     technicians=cfg.technicians, detection_s=cfg.detection,
                     restart_auto=cfg.restart_delay == "auto", restart_base_s=cfg.restart_base,
                     init_per_1k_ranks_s=cfg.init_per_1k_ranks)
    restart = 600.0 if cfg.restart_delay == "auto" else cfg.restart_delay
    fm = FailureModel(card_mtbf_s=cfg.card_mtbf, node_mtbf_s=cfg.node_mtbf, restart_delay_s=restart,
                      checkpoint_cost_s=cfg.checkpoint_cost, **extra)
    return with_checkpoint_section(fm, cfg.checkpoint)   # failures.checkpoint: experiment/checkpoints.py


def failure_classes(cfg: Any, layout: ClusterLayout) -> tuple[FailureClass, ...]:
    """The ``failures.classes`` on this cluster. A rate ``r`` per 1,000 node-days is the class's
    failures over the cluster, ``r x nodes / 1000`` a day, spread over its units: one unit's MTBF
    is ``units x 1000 days / (r x nodes)`` (``1000 days / r`` for a node class).

    Raises
    ------
    ConfigError
        ``failures.spare_nodes`` above the cluster's nodes; ``failures.classes[i].unit`` a link or
        switch class on a cluster with one leaf (no uplinks, no leaf switch to fail).
    """
    n_nodes = int(layout.card_node.max()) + 1
    if cfg.spare_nodes > n_nodes:
        raise ConfigError(f"failures.spare_nodes: {cfg.spare_nodes} spares for a cluster of {n_nodes} nodes "
                          f"(at most one spare per node)")
    n_leaves = int(layout.card_leaf.max()) + 1
    sizes = {"card": layout.n_cards, "node": n_nodes, "switch": n_leaves,
             "link": int(uplinks_per_leaf(layout)[1].sum())}
    out = []
    for i, c in enumerate(cfg.classes):
        where = f"failures.classes[{i}]"
        if c.unit in ("link", "switch") and n_leaves < 2:
            raise ConfigError(f"{where}.unit: {c.unit!r} needs leaf switches, and cluster {layout.name!r} has "
                              f"one switching domain (no leaf uplinks); use unit card or node")
        mtbf = c.mtbf if c.mtbf is not None else sizes[c.unit] * 1000.0 * units.DAY / (c.rate_per_1000_node_days * n_nodes)
        out.append(FailureClass(c.name, c.unit, float(mtbf), float(c.repair),
                                c.shape if c.distribution == "weibull" else None))
    return tuple(out)
