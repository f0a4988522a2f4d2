"""``failures.serving`` -> the serving engine's :class:`~cluster_sim.engine.serving.faults.ReplicaFaults`
(beside :mod:`.build`, which is the config -> engine translation of everything else)."""

from __future__ import annotations

from typing import Any

from ..engine.serving.faults import ReplicaFaults
from ..rng import Streams

__all__ = ["replica_faults"]


def replica_faults(cfg: Any, streams: Streams) -> ReplicaFaults | None:
    """The serving engine's :class:`ReplicaFaults` from ``cfg.failures.serving`` (None if absent),
    drawing from the run's own ``failures.serving`` stream (so the arrival and length streams
    are the same with and without failures)."""
    f = getattr(cfg, "failures", None)
    if f is None or f.serving is None:
        return None
    s = f.serving
    return ReplicaFaults(replica_mtbf_s=s.replica_mtbf, card_mtbf_s=f.card_mtbf, node_mtbf_s=f.node_mtbf,
                         on_failure=s.on_failure, model_load_s=None if s.model_load == "auto" else s.model_load,
                         load_gbyte_per_s_per_card=s.load_gbyte_per_s_per_card, startup_s=s.startup,
                         rng=streams["failures.serving"])
