"""One dict per policy family: registry name -> class. Registration is one line.

``make(family, ref)`` builds a policy from a name or a :class:`~cluster_sim.config.PolicyRef`-like
object (``.name`` and ``.params``); an unknown name lists the valid ones.

To add a policy: import its class here and add one line to its family's dict.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .serving.autoscaling import FixedReplicas, LatencyDriven, QueueDriven
from .serving.routing import LeastLoaded, PrefixAware, RandomRouting, RoundRobin
from .training.admission import AcceptAll, TenantQuota
from .training.ordering import FIFO, LAS, SJF, PriorityOrder, Tiresias
from .training.placement import (
    FragmentationAware,
    HeterogeneityAware,
    Packed,
    Spread,
    TopologyAware,
)
from .training.preemption import NoPreemption, OrderPreemption, PriorityPreemption
from .training.presets import PRESETS

__all__ = ["FAMILIES", "make", "names"]

# name -> class, per family; one line per policy.
ADMISSION: dict[str, type] = {"accept_all": AcceptAll, "tenant_quota": TenantQuota}
ORDERING: dict[str, type] = {"fifo": FIFO, "sjf": SJF, "las": LAS, "priority": PriorityOrder,
                             "tiresias": Tiresias}
PLACEMENT: dict[str, type] = {
    "packed": Packed,
    "spread": Spread,
    "topology_aware": TopologyAware,
    "heterogeneity_aware": HeterogeneityAware,
    "fragmentation_aware": FragmentationAware,
}
PREEMPTION: dict[str, type] = {"none": NoPreemption, "priority": PriorityPreemption, "order": OrderPreemption}
ROUTING: dict[str, type] = {
    "round_robin": RoundRobin,
    "random": RandomRouting,
    "least_loaded": LeastLoaded,
    "prefix_aware": PrefixAware,
}
AUTOSCALING: dict[str, type] = {"fixed": FixedReplicas, "queue_driven": QueueDriven, "latency_driven": LatencyDriven}
POOL: dict[str, type] = {}
# Named schedulers: a preset of the four training stages.
SCHEDULERS: dict[str, dict[str, str]] = dict(PRESETS)

FAMILIES: dict[str, dict[str, type]] = {
    "admission": ADMISSION,
    "ordering": ORDERING,
    "placement": PLACEMENT,
    "preemption": PREEMPTION,
    "routing": ROUTING,
    "autoscaling": AUTOSCALING,
    "pool": POOL,
}


def names(family: str) -> list[str]:
    """Sorted registry names of a family."""
    return sorted(_family(family))


def _family(family: str) -> dict[str, type]:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ConfigError(f"unknown policy family {family!r}; known: {', '.join(sorted(FAMILIES))}") from None


def make(family: str, ref: Any, where: str | None = None) -> Any:
    """Instantiate the ``family`` policy named by ``ref`` (a str or an object with name/params)."""
    name = ref if isinstance(ref, str) else ref.name
    params = {} if isinstance(ref, str) else dict(getattr(ref, "params", {}) or {})
    table = _family(family)
    label = where or f"policy.{family}"
    if name not in table:
        raise ConfigError(f"{label}: unknown {family} policy {name!r}; known: {', '.join(sorted(table))}")
    try:
        return table[name](**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{label}.params: {exc}") from None
