"""The pool policies that split the cluster once, before the run: ``separate`` and ``static_partition``.

A pool policy's decision is :meth:`partition`: given a :class:`PoolView` of the cluster (card
types, each card's type and scale-up domain, the cards the inference deployments need per type)
it returns a :class:`PoolPlan`:

* ``separate`` (the default): no card sharing. Training and serving run as two simulations on
  the same topology, each seeing every card (``PoolPlan.shared`` is False).
* ``static_partition`` (the baseline silo): one simulation, one card ledger. The inference
  partition is, per card type, the first ``n`` cards of that type in (scale-up domain, card id)
  order, so it takes whole domains first; serving replicas are placed only there, and the
  training engine sees only the other cards. ``n`` per type is ``inference_cards[type]`` for
  the types named there (``{card type: cards}``), ``inference_fraction`` of the count of every
  other type (rounded down; none when not given), or, with neither parameter, exactly the cards
  the deployments need. ``tenant_cards`` adds training silos per tenant (below).

Tenant silos (``tenant_cards: {tenant: cards}`` or ``{tenant: {card type: cards}}``): after the
inference partition, each named tenant in turn gets, per card type, the next cards of the
training cards left in (scale-up domain, card id) order, so a silo also takes whole domains
first. A bare count needs a cluster of one card type (on several, name the types). The tenant's
jobs run only on its silo; every other tenant's jobs share the training cards left over
(``PoolPlan.rest_cards``).

>>> import numpy as np
>>> view = PoolView(("h100-sxm",), np.zeros(16, np.int64), np.repeat(np.arange(2), 8), {"h100-sxm": 4})
>>> StaticPartition().partition(view).inference_cards.tolist()
[0, 1, 2, 3]
>>> StaticPartition(inference_fraction=0.5).partition(view).inference_by_type
{'h100-sxm': 8}
>>> StaticPartition(inference_cards={"h100-sxm": 20}).partition(view)
Traceback (most recent call last):
...
ValueError: inference_cards.h100-sxm: asks for 20 cards; the cluster has 16 h100-sxm
>>> plan = StaticPartition(tenant_cards={"a": 8}).partition(view)
>>> plan.tenant_cards["a"].tolist(), plan.rest_cards.tolist()
([4, 5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base import Policy, readonly

__all__ = ["PoolPlan", "PoolView", "Separate", "StaticPartition"]


@dataclass(frozen=True)
class PoolView:
    """What a pool policy sees: the cluster's cards and the inference demand.

    Attributes
    ----------
    card_types : tuple of str
    card_type, card_domain : numpy.ndarray
        Type index and scale-up domain of every card.
    demand_by_type : mapping of str to int
        Cards the inference deployments need, per card type (replicas x tp x ep summed).
    """

    card_types: tuple[str, ...]
    card_type: np.ndarray
    card_domain: np.ndarray
    demand_by_type: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "card_type", readonly(self.card_type, np.int64))
        object.__setattr__(self, "card_domain", readonly(self.card_domain, np.int64))

    def capacity_by_type(self) -> dict[str, int]:
        """Cards per type."""
        n = np.bincount(self.card_type, minlength=len(self.card_types))
        return {t: int(k) for t, k in zip(self.card_types, n.tolist(), strict=True)}


@dataclass(frozen=True)
class PoolPlan:
    """A pool policy's decision.

    Attributes
    ----------
    shared : bool
        True: one simulation on one card ledger, serving on :attr:`inference_cards` only and
        training on the rest. False: two simulations, each on every card (no card sharing).
    inference_cards : numpy.ndarray
        Sorted card ids of the inference partition (empty when not shared).
    inference_by_type : dict of str to int
        Size of the inference partition per card type (types with none left out; empty for a
        dynamic plan, which sets no card aside).
    dynamic : bool
        True: :attr:`inference_cards` are the cards serving replica slots may use, but no card
        is set aside: a slot holds its cards only while its replica is on, and the card broker
        (``cluster_sim.engine.pool.broker``) moves cards between the engines during the run
        (``shared_pool``, ``peak_shaving``).
    tenant_cards : dict of str to numpy.ndarray
        Training silos per tenant (``static_partition`` with ``tenant_cards``): sorted card ids
        of each tenant's silo, disjoint from each other and from :attr:`inference_cards`.
        Empty: no tenant silos (one training pool).
    tenant_by_type : dict of str to dict of str to int
        Size of each tenant's silo per card type.
    rest_cards : numpy.ndarray, optional
        With tenant silos: the training cards in no silo (sorted), shared by the jobs of every
        tenant without one. None without tenant silos.
    """

    shared: bool
    inference_cards: np.ndarray
    inference_by_type: dict[str, int]
    dynamic: bool = False
    tenant_cards: dict[str, np.ndarray] = field(default_factory=dict)
    tenant_by_type: dict[str, dict[str, int]] = field(default_factory=dict)
    rest_cards: np.ndarray | None = None


class Separate(Policy):
    """No card sharing: training and serving simulated separately on the same topology."""

    name, family = "separate", "pool"

    def partition(self, view: PoolView) -> PoolPlan:
        """Every card to both engines, in two simulations."""
        return PoolPlan(False, readonly(np.zeros(0, np.int64)), {})


def _check_count(v: Any, what: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{what}: expected a card count (an integer >= 0), got {v!r:.40}")


def _check_tenant_cards(spec: Any) -> dict[str, int | dict[str, int]] | None:
    """``tenant_cards`` validated: tenant -> cards, or tenant -> {card type: cards}."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(f"tenant_cards: expected a non-empty mapping tenant -> cards or "
                         f"{{card type: cards}}, got {spec!r:.40}")
    out: dict[str, int | dict[str, int]] = {}
    for ten, v in spec.items():
        if not isinstance(ten, str) or not ten:
            raise ValueError(f"tenant_cards: tenant names are non-empty strings, got {ten!r:.40}")
        if isinstance(v, Mapping):
            if not v:
                raise ValueError(f"tenant_cards.{ten}: expected cards or {{card type: cards}}, got {{}}")
            for k, n in v.items():
                if not isinstance(k, str):
                    raise ValueError(f"tenant_cards.{ten}: card types are strings, got {k!r:.40}")
                _check_count(n, f"tenant_cards.{ten}.{k}")
            out[ten] = {str(k): int(n) for k, n in v.items()}
        else:
            _check_count(v, f"tenant_cards.{ten}")
            out[ten] = int(v)
    return out


class StaticPartition(Policy):
    """Fixed silos: an inference partition sized in the config, training on the rest.

    Parameters
    ----------
    inference_cards : mapping of str to int, optional
        Cards of each type that go to inference.
    inference_fraction : float, optional
        Share of the cards of every type not named in ``inference_cards`` that goes to inference
        (rounded down), in [0, 1].

    tenant_cards : mapping of str to int or to mapping of str to int, optional
        Training silos per tenant: cards (on a cluster of one card type) or ``{card type:
        cards}``; taken from the training cards in the order given.

    With neither ``inference_cards`` nor ``inference_fraction``, the partition is exactly what the
    inference deployments need.
    """

    name, family = "static_partition", "pool"

    def __init__(self, *, inference_cards: Mapping[str, int] | None = None,
                 inference_fraction: float | None = None,
                 tenant_cards: Mapping[str, Any] | None = None) -> None:
        if inference_cards is not None:
            if not isinstance(inference_cards, Mapping):
                raise ValueError(f"inference_cards: expected a mapping card type -> cards, "
                                 f"got {inference_cards!r:.40}")
            for k, v in inference_cards.items():
                if not isinstance(k, str):
                    raise ValueError(f"inference_cards: card types are strings, got {k!r:.40}")
                _check_count(v, f"inference_cards.{k}")
        if inference_fraction is not None:
            f = inference_fraction
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
                raise ValueError(f"inference_fraction: must be a number in [0, 1], got {f!r:.40}")
        self.inference_cards = inference_cards
        self.inference_fraction = inference_fraction
        self.tenant_cards = _check_tenant_cards(tenant_cards)

    def _sizes(self, view: PoolView) -> dict[str, int]:
        cap = view.capacity_by_type()
        if self.inference_cards is None and self.inference_fraction is None:
            want = {t: int(n) for t, n in view.demand_by_type.items()}
        else:
            named = dict(self.inference_cards or {})
            for t, n in named.items():
                if t not in cap:
                    raise ValueError(f"inference_cards.{t}: no card of type {t!r} in the cluster; it has: "
                                     f"{', '.join(sorted(cap))}")
                if n > cap[t]:
                    raise ValueError(f"inference_cards.{t}: asks for {n} cards; the cluster has {cap[t]} {t}")
            f = self.inference_fraction or 0.0
            want = {t: named[t] if t in named else math.floor(f * n) for t, n in cap.items()}
        return {t: int(n) for t, n in want.items() if n > 0}

    def partition(self, view: PoolView) -> PoolPlan:
        """The inference partition: per type, the first cards in (domain, card id) order."""
        sizes = self._sizes(view)
        picked = []
        for t, n in sizes.items():
            k = view.card_types.index(t)
            cards = np.flatnonzero(view.card_type == k)
            order = np.lexsort((cards, view.card_domain[cards]))
            picked.append(cards[order[:n]])
        cards = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
        if self.tenant_cards is None:
            return PoolPlan(True, readonly(cards.astype(np.int64)), sizes)
        silos, by_type, rest = self._tenant_silos(view, cards)
        return PoolPlan(True, readonly(cards.astype(np.int64)), sizes, tenant_cards=silos,
                        tenant_by_type=by_type, rest_cards=rest)

    def _tenant_silos(self, view: PoolView, inference: np.ndarray
                      ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]], np.ndarray]:
        """Each tenant's silo from the training cards left, in (domain, card id) order per type."""
        assert self.tenant_cards is not None
        free = np.ones(view.card_type.size, bool)
        free[inference] = False
        cap = view.capacity_by_type()
        silos: dict[str, np.ndarray] = {}
        by_type: dict[str, dict[str, int]] = {}
        for ten, spec in self.tenant_cards.items():
            if isinstance(spec, int):
                if len(view.card_types) != 1:
                    raise ValueError(f"tenant_cards.{ten}: a bare card count needs a cluster of one card "
                                     f"type; this one has {', '.join(view.card_types)}: give "
                                     f"{{card type: cards}}")
                spec = {view.card_types[0]: spec}
            got = []
            for t, n in spec.items():
                if t not in cap:
                    raise ValueError(f"tenant_cards.{ten}.{t}: no card of type {t!r} in the cluster; it "
                                     f"has: {', '.join(sorted(cap))}")
                left = np.flatnonzero(free & (view.card_type == view.card_types.index(t)))
                if n > left.size:
                    raise ValueError(f"tenant_cards.{ten}.{t}: asks for {n} cards; {left.size} {t} are "
                                     f"left for training (the cluster has {cap[t]}, the inference "
                                     f"partition and the silos named before take the rest)")
                take = left[np.lexsort((left, view.card_domain[left]))[:n]]
                free[take] = False
                got.append(take)
            silos[ten] = readonly(np.sort(np.concatenate(got)).astype(np.int64))
            by_type[ten] = {t: int(n) for t, n in spec.items() if n > 0}
            if silos[ten].size == 0:
                raise ValueError(f"tenant_cards.{ten}: a silo of 0 cards; its jobs could never run")
        return silos, by_type, readonly(np.flatnonzero(free).astype(np.int64))
