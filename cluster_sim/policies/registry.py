"""One dict per policy family: registry name -> class. Registration is one line.

Every registered class is a :class:`~cluster_sim.policies.base.Policy` whose ``name`` is its key
here and whose ``family`` is its family's key (``tests/policies/test_policy_contract.py`` checks
both, and the whole family-independent contract, over every entry of every family, ``pool`` too).

``make(family, ref)`` builds a policy of any family the same way, from a name, a mapping
``{"name": ..., "params": {...}}`` or a :class:`~cluster_sim.config.PolicyRef`-like object
(``.name`` and ``.params``): an unknown name lists the valid ones, an unknown parameter names
itself and the declared ones, and a value the constructor refuses (``ValueError``, ``TypeError``)
becomes a :class:`~cluster_sim.errors.ConfigError` under ``<where>.params``.

To add a policy: import its class here and add one line to its family's dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from .base import Policy
from .pool.partition import Separate, StaticPartition
from .pool.sharing import PeakShaving, SharedPool
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

__all__ = ["FAMILIES", "make", "name_and_params", "names"]

# name -> class, per family; one line per policy.
ADMISSION: dict[str, type[Policy]] = {"accept_all": AcceptAll, "tenant_quota": TenantQuota}
ORDERING: dict[str, type[Policy]] = {"fifo": FIFO, "sjf": SJF, "las": LAS, "priority": PriorityOrder,
                             "tiresias": Tiresias}
PLACEMENT: dict[str, type[Policy]] = {
    "packed": Packed,
    "spread": Spread,
    "topology_aware": TopologyAware,
    "heterogeneity_aware": HeterogeneityAware,
    "fragmentation_aware": FragmentationAware,
}
PREEMPTION: dict[str, type[Policy]] = {"none": NoPreemption, "priority": PriorityPreemption, "order": OrderPreemption}
ROUTING: dict[str, type[Policy]] = {
    "round_robin": RoundRobin,
    "random": RandomRouting,
    "least_loaded": LeastLoaded,
    "prefix_aware": PrefixAware,
}
AUTOSCALING: dict[str, type[Policy]] = {"fixed": FixedReplicas, "queue_driven": QueueDriven, "latency_driven": LatencyDriven}
POOL: dict[str, type[Policy]] = {"separate": Separate, "static_partition": StaticPartition,
                                 "shared_pool": SharedPool, "peak_shaving": PeakShaving}
# Named schedulers: a preset of the four training stages.
SCHEDULERS: dict[str, dict[str, str]] = dict(PRESETS)

FAMILIES: dict[str, dict[str, type[Policy]]] = {
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


def _family(family: str) -> dict[str, type[Policy]]:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ConfigError(f"unknown policy family {family!r}; known: {', '.join(sorted(FAMILIES))}") from None


def name_and_params(ref: Any, label: str) -> tuple[str, dict[str, Any]]:
    """``(name, params)`` of a policy reference: a str, a ``{name, params}`` mapping or an object
    with ``.name`` / ``.params``; a ConfigError at ``label`` for anything else."""
    if isinstance(ref, str):
        return ref, {}
    if isinstance(ref, Mapping):
        name, params = ref.get("name"), ref.get("params")
    else:
        name, params = getattr(ref, "name", None), getattr(ref, "params", None)
    if not isinstance(name, str):
        raise ConfigError(f"{label}: expected a policy name (a string), got {name!r:.40}")
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{label}.params: expected a mapping, got {type(params).__name__}")
    return name, dict(params)


def make(family: str, ref: Any, where: str | None = None) -> Any:
    """Instantiate the ``family`` policy named by ``ref`` (a str, a ``{name, params}`` mapping or
    an object with ``.name`` / ``.params``).

    Raises
    ------
    ConfigError
        ``<where>: unknown <family> policy ...; known: ...``, ``<where>.params.<p>: unknown
        parameter ...; known: ...``, or ``<where>.params.<p>: ...`` / ``<where>.params: ...`` (the
        constructor's ValueError, joined to the parameter it names first)
        (``where`` defaults to ``policy.<family>``).
    """
    table = _family(family)
    label = where or f"policy.{family}"
    name, params = name_and_params(ref, label)
    if name not in table:
        raise ConfigError(f"{label}: unknown {family} policy {name!r}; known: {', '.join(sorted(table))}")
    cls = table[name]
    declared = cls.param_defaults
    for key in params:
        if key not in declared:
            known = ", ".join(declared) if declared else "none (it takes no parameters)"
            raise ConfigError(f"{label}.params.{key}: unknown parameter of {family} policy {name!r}; "
                              f"known: {known}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        head = msg.split(":", 1)[0]
        sep = "." if head.split(".")[0] in cls.param_defaults else ": "   # "notice_s: ..." -> params.notice_s: ...
        raise ConfigError(f"{label}.params{sep}{msg}") from None
