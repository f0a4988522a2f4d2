"""Config -> serving pools with fractional cards (``deployment.slices``, MIG-like partitions).

:func:`replica_perf` builds one replica's perf model from a pool config (a
:class:`~cluster_sim.perf.slices.SlicedReplicaPerf` when ``slices`` > 1), with the errors named
by config field. Used by :mod:`.build`. (Under a dynamic pool policy the card broker claims and
lends a sliced card as one unit: :mod:`cluster_sim.engine.pool.sliced`.)
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, PerfModelError
from ..perf.inference import ReplicaPerf
from ..perf.slices import SlicedReplicaPerf

__all__ = ["refuse_shared_slots", "replica_perf", "sliced_pools"]


def sliced_pools(cfg: Any) -> list[tuple[str, Any]]:
    """``(where, pool config)`` of every inference pool with ``slices`` > 1."""
    out = []
    for i, svc in enumerate(cfg.inference.services if cfg.inference is not None else []):
        pools = svc.deployment.replica_pools(f"inference.services[{i}].deployment")
        out += [(w, p) for w, p in pools if p.slices > 1]
    return out


def replica_perf(svc: Any, p: Any, where: str) -> ReplicaPerf:
    """The perf model of one replica of pool config ``p`` (a slice of a card with ``slices``)."""
    try:
        if p.slices == 1 and not p.interference:
            return ReplicaPerf(svc.model, p.card_type, tp=p.tp, ep=p.ep, dtype=svc.dtype, kv_dtype=svc.kv_dtype)
        perf = SlicedReplicaPerf(svc.model, p.card_type, tp=p.tp, ep=p.ep, dtype=svc.dtype, kv_dtype=svc.kv_dtype,
                                 slices=p.slices, interference=p.interference)
        if p.replicas % p.slices:
            raise ConfigError(f"replica.replicas: {p.replicas} replicas on cards of {p.slices} slices; a "
                              f"partitioned card has exactly {p.slices} replicas, so give a multiple of it")
        return perf
    except (ConfigError, PerfModelError) as exc:
        msg = str(exc)
        if msg.startswith("replica.") and msg.split(":", 1)[0][8:] in ("slices", "interference", "replicas"):
            field, rest = msg[8:].split(":", 1)
            raise ConfigError(f"{where}.{field}:{rest}") from None
        raise ConfigError(f"{where}: {exc}") from None


def refuse_shared_slots(cfg: Any, policy: Any) -> None:
    """ConfigError on ``policy.pool.params.share_slots`` when a dynamic pool policy shares slots
    and a pool is sliced: shared slots overlap services on the same cards, and a sliced pool has
    few cards (``replicas / slices``), so a service whose every card another service holds never
    starts (measured: 7 of the 22 sliced tail models of ``pool_many_models_sliced.yaml``)."""
    sliced = next((w for w, _ in sliced_pools(cfg)), None)
    if sliced is not None and getattr(policy, "share_slots", False):
        raise ConfigError(f"policy.pool.params.share_slots: shared slots with sliced replicas ({sliced}.slices) "
                          "are not supported (a sliced pool whose cards other services hold never starts); "
                          "use share_slots: false")
