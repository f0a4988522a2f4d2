"""Load-time checks of every policy reference: its name in its family, and its parameters.

A policy named in an experiment file is built once here, at load, with its parameters checked
against the ranges below, so a typo or a nonsensical value (``least_loaded`` with
``metric: bogus``, an autoscaler deciding every 0 s) is one path-qualified
:class:`~cluster_sim.errors.ConfigError` before any simulated time passes.

Pool policies (``separate``, ``static_partition``) are checked like every other family; the
partition's fit to the cluster (a type it lacks, more cards than it has, deployments larger than
the inference partition) needs the topology and is checked when the experiment is built
(``cluster_sim.experiment.build.pool_plan``), before any simulated time passes.

>>> check_policy("routing", {"name": "least_loaded", "params": {"metric": "kv"}}, "policy.serving.routing")
>>> check_policy("pool", {"name": "static_partition", "params": {"inference_fraction": 2}}, "policy.pool")
Traceback (most recent call last):
...
cluster_sim.errors.ConfigError: policy.pool.params.inference_fraction: must be <= 1, got 2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..policies import registry

__all__ = ["PARAM_CHECKS", "check_policy", "check_scheduler"]

Check = Callable[[Any], str | None]  # None = fine, else what is wrong


def _number(lo: float | None = None, hi: float | None = None, *, open_lo: bool = False,
            integer: bool = False, optional: bool = False) -> Check:
    def check(v: Any) -> str | None:
        if v is None and optional:
            return None
        kind = "an integer" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
            return f"expected {kind}, got {v!r:.40}"
        if not math.isfinite(v):
            return f"expected a finite number, got {v!r}"
        if lo is not None and (v <= lo if open_lo else v < lo):
            return f"must be {'>' if open_lo else '>='} {lo:g}, got {v!r}"
        if hi is not None and v > hi:
            return f"must be <= {hi:g}, got {v!r}"
        return None

    return check


def _choice(values: tuple[str, ...]) -> Check:
    def check(v: Any) -> str | None:
        return None if isinstance(v, str) and v in values else \
            f"unknown value {v!r:.40}; known: {', '.join(values)}"

    return check


def _mapping_of(key: str, keys: str, value: Check) -> Check:
    """None, or a mapping of string keys (``key`` names one, ``keys`` them all) to values that
    pass ``value``."""
    def check(v: Any) -> str | None:
        if v is None:
            return None
        if not isinstance(v, Mapping):
            return f"expected a mapping {key} -> cards, got {v!r:.40}"
        for k, x in v.items():
            bad = value(x)
            if not isinstance(k, str) or bad:
                return f"{k!r:.40}: {bad or f'{keys} are strings'}"
        return None

    return check


_quotas = _mapping_of("tenant", "tenant names", _number(0))
_card_counts = _mapping_of("card type", "card types", _number(0, 10_000_000, integer=True))


_REPLICAS = _number(0, 1_000_000, integer=True)
_AUTOSCALE = {"min_replicas": _REPLICAS, "initial_replicas": _number(0, 1_000_000, integer=True, optional=True),
              "interval_s": _number(1e-3, 86400.0), "warmup_s": _number(0, 86400.0)}

PARAM_CHECKS: dict[tuple[str, str], dict[str, Check]] = {
    ("admission", "tenant_quota"): {"quota_cards": _number(0), "per_tenant": _quotas},
    ("ordering", "sjf"): {"by": _choice(("duration", "card_seconds"))},
    ("placement", "fragmentation_aware"): {"max_classes": _number(1, 4096, integer=True)},
    ("preemption", "priority"): {"min_priority_gap": _number(0, 255, integer=True)},
    ("routing", "random"): {"seed": _number(0, 2**63 - 1, integer=True)},
    ("routing", "least_loaded"): {"metric": _choice(("requests", "tokens", "kv"))},
    ("routing", "prefix_aware"): {"load_weight": _number(0, 1e6), "running_weight": _number(0, 1e6)},
    ("autoscaling", "queue_driven"): {"target_outstanding": _number(0, 1e9, open_lo=True), **_AUTOSCALE},
    ("autoscaling", "latency_driven"): {"upper": _number(0, 1e6, open_lo=True), "lower": _number(0, 1e6),
                                        "step": _number(1, 1_000_000, integer=True), **_AUTOSCALE},
    ("pool", "static_partition"): {"inference_cards": _card_counts,
                                   "inference_fraction": _number(0, 1, optional=True)},
}
"""(family, name) -> parameter -> check. A parameter not listed is refused by the constructor."""


def check_policy(family: str, ref: Any, where: str) -> None:
    """Refuse an unknown policy name or a bad parameter of ``ref`` (name or ``{name, params}``).

    Raises
    ------
    ConfigError
        ``<where>: unknown <family> policy ...; known: ...`` or ``<where>.params.<p>: ...``.
    """
    name, params = registry.name_and_params(ref, where)
    checks = PARAM_CHECKS.get((family, name), {})
    for key, value in params.items():
        bad = checks[key](value) if key in checks else None
        if bad:
            raise ConfigError(f"{where}.params.{key}: {bad}")
    try:  # registry.make turns the constructor's ValueError/TypeError into a ConfigError itself
        registry.make(family, {"name": name, "params": params}, where=where)
    except ArithmeticError as exc:
        raise ConfigError(f"{where}.params: {exc}") from None
    if name == "latency_driven" and params.get("lower", 0.4) >= params.get("upper", 0.8):
        raise ConfigError(f"{where}.params: lower ({params.get('lower', 0.4)!r}) must be below upper "
                          f"({params.get('upper', 0.8)!r})")


def check_scheduler(name: str | None, where: str = "policy.training.scheduler") -> None:
    """Refuse an unknown training scheduler preset name."""
    if name is not None and name not in registry.SCHEDULERS:
        raise ConfigError(f"{where}: unknown scheduler {name!r}; known: {', '.join(sorted(registry.SCHEDULERS))}")
