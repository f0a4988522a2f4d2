"""Config -> engine for fail-slow episodes: :func:`straggler_model` (``failures.stragglers`` and
``policy.training.stragglers``; docs/faults_stragglers.md)."""

from __future__ import annotations

from typing import Any

from ..engine.cluster.stragglers import StragglerModel

__all__ = ["straggler_model"]


def straggler_model(cfg: Any) -> StragglerModel | None:
    """A :class:`StragglerModel` from an experiment config (None without ``failures.stragglers``);
    a replaced job waits ``failures.restart_delay`` before it may start again."""
    f = cfg.failures
    if f is None or f.stragglers is None:
        return None
    s = f.stragglers
    return StragglerModel(unit=s.unit, rate_per_1000_node_days=s.rate_per_1000_node_days, mtbf_s=s.mtbf,
                          slowdown=(s.slowdown[0], s.slowdown[1]), duration_s=(s.duration[0], s.duration[1]),
                          detection_s=s.detection_window, policy=cfg.policy.training.stragglers,
                          restart_delay_s=f.restart_delay)
