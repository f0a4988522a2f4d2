"""Where the speed model's terms come from: the perf model's size classes, or an assumed fallback.

A generated or trace job is keyed ``(kind, num_cards, reference type)``. Its :class:`SpeedTerms`
on a card type (the type ratio, the communication share ``c`` and its scale-out part ``c_x``, the
MFU) come from :func:`cluster_sim.perf.size_classes.class_estimate`: the kind's size class (a
catalog model and a plan derived from the cards and the scale-up domain) on the first cards of the
type in topology order, the reference placement. :class:`TermsTable` computes them once per
distinct key and type and caches them, so the engine's hot path only looks them up.

* ``ratio`` = step time on the reference type / step time on the type, both at the same cards
  (``min(n, cards of either type)``) and the same model of the class (the smaller one where one
  type needs a fallback model);
* ``comm`` = the estimate's exposed-communication share (``TrainingEstimate.comm_fraction``);
* ``scaleout`` = the share by which the step grows when the job's scale-out bandwidth halves
  (0 for a job within one scale-up domain, 0 for one card);
* ``mfu`` = the estimate's MFU.

The ``ASSUMED_*`` constants below are the fallback where the perf model cannot run: a layout
without a topology (a node inventory, e.g. the Alibaba openb list), a card type the catalog lacks,
a kind without a size class, or no model of the class fitting the cards. Every such use is noted
in the run's summary notes (:meth:`TermsTable.notes`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...perf.size_classes import SIZE_CLASSES, class_estimate
from ...workload.jobs import KIND_NAMES
from .layout import ClusterLayout

__all__ = ["ASSUMED_KIND_ALPHA", "ASSUMED_MFU", "ASSUMED_SCALEOUT_SHARE", "SpeedTerms", "TermsTable",
           "assumed_comm_fraction", "assumed_throughput", "job_terms"]

ASSUMED_KIND_ALPHA = (0.85, 1.0, 0.85, 0.9)
"""Fallback only: exponent of the FLOP/s ratio per job kind (finetune, pretrain, trace, mid); an
assumption, used where the perf model's size classes cannot run (no topology, uncatalogued type)."""
ASSUMED_MFU = (0.30, 0.45, float("nan"), 0.38)
"""Fallback only: assumed MFU at the reference placement per kind (as :data:`ASSUMED_KIND_ALPHA`)."""
ASSUMED_SCALEOUT_SHARE = 0.5
"""Fallback only: assumed scale-out part of the communication of a job needing several domains."""


def assumed_throughput(layout: ClusterLayout, alphas: Sequence[float] = ASSUMED_KIND_ALPHA) -> np.ndarray:
    """Fallback ``(kinds, types)`` throughput: ``(achievable / max achievable) ** alpha_kind``."""
    ach = np.asarray(layout.type_achievable_flops, dtype=np.float64)
    rel = ach / ach.max()
    return np.power(rel[None, :], np.asarray(alphas, dtype=np.float64)[:, None])


def assumed_comm_fraction(num_cards: int) -> float:
    """Fallback only: assumed exposed-communication fraction ``min(0.35, 0.05 log2 n)``."""
    return 0.0 if num_cards <= 1 else min(0.35, 0.05 * math.log2(num_cards))


@dataclass(frozen=True, slots=True)
class SpeedTerms:
    """The speed model's terms of one job (kind, cards, reference type) on one card type.

    ``ratio``: throughput on the type relative to the reference type; ``comm``: exposed
    communication share ``c`` of a step at the reference placement; ``scaleout``: its scale-out
    part ``c_x`` (``<= comm``); ``mfu``: MFU at the reference placement on the type.
    ``assumed``: the fallback constants, where ``c_x`` is :data:`ASSUMED_SCALEOUT_SHARE` of ``c``
    for jobs needing several domains (decided per placement, as before the size classes).
    """

    ratio: float
    comm: float
    scaleout: float
    mfu: float
    assumed: bool = False


class TermsTable:
    """:class:`SpeedTerms` per (kind, cards, reference type, card type) of one layout, cached.

    Parameters
    ----------
    layout : ClusterLayout
    throughput : numpy.ndarray, optional
        ``(kinds, types)`` matrix that replaces the type ratios (the other terms still come from
        the size classes).
    """

    def __init__(self, layout: ClusterLayout, throughput: np.ndarray | None = None) -> None:
        self.layout = layout
        self.explicit = throughput is not None
        T = len(layout.card_types)
        counts = np.bincount(layout.card_type, minlength=T)
        dom_size = np.bincount(layout.card_domain)
        self._counts = counts.tolist()
        self._type_domain = [int(dom_size[layout.card_domain[layout.card_type == t]].max()) if counts[t] else 1
                             for t in range(T)]
        self._perf_type = [layout.topology is not None and name not in layout.assumed_types
                           for name in layout.card_types]
        self._tr = (assumed_throughput(layout) if throughput is None else np.asarray(throughput, float)).tolist()
        self._assumed_tr = assumed_throughput(layout).tolist()
        self._terms: dict[tuple[int, int, int, int], SpeedTerms] = {}
        self._type_cards: dict[int, np.ndarray] = {}
        self._est: dict[tuple[int, int, int, int], Any] = {}
        self._fallbacks: dict[tuple[int, int, str, str], set[int]] = {}
        self._assumed: set[str] = set()

    def nic_ratio(self, t: int) -> float | None:
        """Effective scale-up over scale-out bandwidth of type ``t`` on the topology: line rate x
        library efficiency of the ``scaleup`` level of one domain's cards over the ``scaleout``
        level between two domains (``Topology.comm_levels``), the ratio a split placement's
        cross-piece traffic pays (:func:`~.speed.split_ratio`). None without a topology, for an
        uncatalogued type, or for a type with a single domain."""
        lo = self.layout
        if not self._perf_type[t]:
            return None
        cards = np.flatnonzero(lo.card_type == t)
        dom = lo.card_domain[cards]
        other = cards[dom != dom[0]]
        mates = cards[dom == dom[0]]
        if other.size == 0 or mates.size < 2:
            return None
        up = [lv for lv in lo.topology.comm_levels(mates) if lv.tier == "scaleup"]
        out = [lv for lv in lo.topology.comm_levels(np.array([cards[0], other[0]])) if lv.tier == "scaleout"]
        if not up or not out:
            return None
        return max(up[0].bandwidth_Bps * up[0].efficiency / (out[0].bandwidth_Bps * out[0].efficiency), 1.0)

    def _estimate(self, kind: int, n: int, t: int, first: int) -> Any:
        key = (kind, n, t, first)
        if key not in self._est:
            lo = self.layout
            cards = self._type_cards.get(t)
            if cards is None:   # the type's cards in topology order (perf.training.pick_cards)
                cards = self._type_cards[t] = np.flatnonzero(lo.card_type == t)
            cards = cards[:n]
            self._est[key] = class_estimate(lo.topology, kind, cards, self._type_domain[t], first)
        return self._est[key]

    def _pair(self, kind: int, n: int, ref: int, t: int) -> tuple[Any, Any]:
        """Estimates of the size class on ``t`` and on ``ref`` at the same cards and model."""
        e_t, e_r = self._estimate(kind, n, t, 0), self._estimate(kind, n, ref, 0)
        if e_t is not None and e_r is not None and e_t.model != e_r.model:
            chain = SIZE_CLASSES[kind]
            first = max(chain.index(e_t.model), chain.index(e_r.model))
            e_t, e_r = self._estimate(kind, n, t, first), self._estimate(kind, n, ref, first)
        return e_t, e_r

    def terms(self, kind: int, n: int, ref: int, t: int) -> SpeedTerms:
        """:class:`SpeedTerms` of a job of ``kind`` on ``n`` cards (reference type ``ref``) on
        type ``t``, cached. A type with fewer than ``n`` cards (a job spanning types) is compared
        with the reference at the cards it has."""
        key = (kind, n, ref, t)
        out = self._terms.get(key)
        if out is None:
            out = self._terms[key] = self._compute(kind, n, ref, t)
        return out

    def _compute(self, kind: int, n: int, ref: int, t: int) -> SpeedTerms:
        names = self.layout.card_types
        if kind in SIZE_CLASSES and self._perf_type[ref]:
            ne = int(min(n, self._counts[t], self._counts[ref]))
            if self._perf_type[t]:
                e_t, e_r = self._pair(kind, ne, ref, t)
            else:
                e_t = e_r = self._estimate(kind, ne, ref, 0)
            if e_t is not None and e_r is not None:
                if e_t.fallback:
                    fk = (kind, t, e_t.model, SIZE_CLASSES[kind][0])
                    self._fallbacks.setdefault(fk, set()).add(ne)
                if self.explicit:
                    ratio = self._explicit_ratio(kind, ref, t)
                elif self._perf_type[t]:
                    ratio = e_r.step_time_s / e_t.step_time_s
                else:
                    self._assumed.add(f"card type {names[t]!r} is not in the catalog: its throughput ratio "
                                      "is the assumed (achievable FLOP/s ratio) ** ASSUMED_KIND_ALPHA "
                                      "(engine/cluster/speed.py)")
                    ratio = self._assumed_ratio(kind, ref, t)
                return SpeedTerms(ratio, e_t.comm, e_t.scaleout, e_t.mfu)
            self._assumed.add(f"{KIND_NAMES[kind]} jobs of {n} cards: no model of the size class "
                              f"({', '.join(SIZE_CLASSES[kind])}) fits; their speed uses the assumed "
                              "ASSUMED_* constants (engine/cluster/speed.py)")
        elif kind in SIZE_CLASSES:
            why = ("the cluster is a node inventory without a topology" if self.layout.topology is None
                   else f"the reference type {names[ref]!r} is not in the catalog")
            self._assumed.add(f"generated training jobs run at assumed speeds: {why}, so the perf model's "
                              "size classes (perf/size_classes.py) cannot run; MFU, type ratios and "
                              "communication shares are engine/cluster/speed.py's ASSUMED_* constants")
        ratio = self._explicit_ratio(kind, ref, t) if self.explicit else self._assumed_ratio(kind, ref, t)
        k = min(kind, len(ASSUMED_MFU) - 1)
        return SpeedTerms(ratio, assumed_comm_fraction(n), 0.0, ASSUMED_MFU[k], assumed=True)

    def _assumed_ratio(self, kind: int, ref: int, t: int) -> float:
        row = self._assumed_tr[min(kind, len(self._assumed_tr) - 1)]
        return row[t] / row[ref]

    def _explicit_ratio(self, kind: int, ref: int, t: int) -> float:
        row = self._tr[min(kind, len(self._tr) - 1)]
        return row[t] / row[ref]

    def notes(self) -> list[str]:
        """The run's notes on the speed model: size-class fallbacks and assumed terms."""
        out = []
        names = self.layout.card_types
        for (kind, t, used, own), ns in sorted(self._fallbacks.items()):
            unit = "card" if ns == {1} else "cards"
            out.append(f"{KIND_NAMES[kind]} jobs of {', '.join(str(x) for x in sorted(ns))} {unit} on "
                       f"{names[t]}: the size class {own} does not fit them; modelled as {used} "
                       "(perf/size_classes.py)")
        return out + sorted(self._assumed)


def job_terms(speed: Any, kinds: Sequence[int], nums: Sequence[int], refs: Sequence[int],
              modelled: np.ndarray, hooked: set[int], offline: np.ndarray
              ) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """Per job row: its speed key ``(kind, cards, reference type)`` (one tuple per distinct key)
    and its MFU at the reference placement (NaN unless ``modelled`` and without a speed hook).
    Also fills the placement policies' throughput row of every kind a plain job brings, at that
    kind's most common card count (ties: the smaller; :meth:`SpeedModel.fill_throughput`)."""
    n = len(kinds)
    if n == 0:
        return [], np.zeros(0)
    cols = np.stack([np.asarray(kinds, np.int64), np.asarray(nums, np.int64), np.asarray(refs, np.int64)], axis=1)
    span_n, span_r = int(cols[:, 1].max()) + 1, int(cols[:, 2].max()) + 1
    code = (cols[:, 0] * span_n + cols[:, 1]) * span_r + cols[:, 2]   # one int per key: a 1-D unique
    uniq, inv = np.unique(code, return_inverse=True)
    inv = inv.reshape(-1)
    keys = [(c // span_r // span_n, c // span_r % span_n, c % span_r) for c in uniq.tolist()]
    skey = [keys[j] for j in inv.tolist()]
    plain = np.ones(n, bool)
    plain[sorted(hooked)] = False
    want = np.zeros(len(keys), bool)
    want[inv[np.asarray(modelled, bool) & plain]] = True
    mfu_k = np.array([speed.terms(*k, k[2]).mfu if w else math.nan for k, w in zip(keys, want.tolist(), strict=True)])
    mfu = np.where(np.asarray(modelled, bool) & plain, mfu_k[inv], np.nan)
    sel = plain & ~np.asarray(offline, bool)
    for kd in np.unique(cols[sel, 0]).tolist():
        vals, cnt = np.unique(cols[sel & (cols[:, 0] == kd), 1], return_counts=True)
        speed.fill_throughput(kd, int(vals[np.argmax(cnt)]))
    return skey, mfu
