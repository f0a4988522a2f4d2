"""Uncertainty band of a training estimate from the catalog's confidence tags.

Every catalog number carries a confidence tag (``docs/catalog.md``): V verified in the primary
publication, R from the named primary but not re-checked, S secondary source, D derived by
arithmetic or calibration, U uncertain / placeholder. A field's tag is the ``X:`` prefix of its
``field_sources`` entry, else the entry's ``confidence``. :data:`RELATIVE_RANGE` turns a tag into a
relative range, by the kind of number:

* **rated** figures (dense peak FLOP/s, HBM bandwidth, scale-up and NIC line rates) are what the
  vendor specifies. A verified one is exact (0); a primary figure not re-checked can hold a
  transcription slip (2%); a secondary or derived one is a press or arithmetic figure (5%); a
  placeholder is a guess (30%).
* **achieved** factors (``flops_efficiency``, ``hbm_efficiency``, ``scaleup_efficiency``, a
  fabric's ``efficiency``) and latencies say what a real run reaches. None is known better than
  the model reproduces its best calibration: A100 ``flops_efficiency`` fitted on Megatron-LM SC'21
  Table 1 leaves a largest error of 5.0% (``docs/validation.md``), so V, D (fitted) and R get 5.0%;
  a secondary figure 10%; a placeholder 25% (e.g. an Ascend ``flops_efficiency`` of 0.60 spans
  0.45-0.75).

:func:`estimate_band` re-runs :func:`~cluster_sim.perf.training.estimate_step` at two corners,
every uncertain field at its pessimistic end together (slow corner) and at its optimistic end
together (fast corner); no Monte Carlo. The specs are never mutated: the topology is seen
through a read-only view whose ``accelerator(card)`` returns a :func:`dataclasses.replace` copy
and whose ``comm_levels(cards)`` scales each level's bandwidth, efficiency and latency by the
widest range of the specs the level is built from (a conservative envelope when a group mixes
card types). Efficiencies are capped at 1. Not in the band: the model's own constants
(``ELEMENTWISE_TRAFFIC``, fitted jointly with the A100 efficiency and so covered by its 5.0%),
memory capacity (it decides whether a plan fits, not how fast it runs), user inputs (a
topology's oversubscription, DCI capacity, a NIC rate the topology file sets) and fibre
latency, which is scaled with the DCI equipment latency (conservative).

MFU in a corner is the point's model FLOPs per step over that corner's step time against the
catalog's *stated* peak: an uncertain peak moves the step time, not the yardstick MFU is read
against, so the slow corner always has the low MFU.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..catalog import AcceleratorSpec
from ..topology.levels import CommLevel
from ..workload.models import ModelSpec
from ..workload.parallelism import ParallelPlan
from .training import TrainingEstimate, estimate_step, pick_cards

__all__ = [
    "ACCELERATOR_FIELDS",
    "FABRIC_FIELDS",
    "RELATIVE_RANGE",
    "SYSTEM_FIELDS",
    "TrainingBand",
    "estimate_band",
    "field_tag",
    "relative_range",
]

RELATIVE_RANGE: Mapping[str, Mapping[str, float]] = {
    "rated": {"V": 0.0, "R": 0.02, "S": 0.05, "D": 0.05, "U": 0.30},
    "achieved": {"V": 0.050, "R": 0.050, "D": 0.050, "S": 0.10, "U": 0.25},
}
"""Relative half-width of a field's range by kind and confidence tag (reasoning: module doc)."""

# field -> (kind, +1 if a larger value makes the step faster, -1 if slower)
ACCELERATOR_FIELDS: Mapping[str, tuple[str, int]] = {
    "bf16_tflops_dense": ("rated", 1), "fp8_tflops_dense": ("rated", 1),
    "hbm_tbyte_s": ("rated", 1), "scaleup_gbyte_s_bidir": ("rated", 1),
    "flops_efficiency": ("achieved", 1), "fp8_flops_efficiency": ("achieved", 1),
    "hbm_efficiency": ("achieved", 1), "scaleup_efficiency": ("achieved", 1),
}
"""Accelerator fields a training step depends on."""
SYSTEM_FIELDS: Mapping[str, tuple[str, int]] = {
    "nic_gbit_s": ("rated", 1), "scaleup_latency_s": ("achieved", -1)}
"""System fields a training step depends on."""
FABRIC_FIELDS: Mapping[str, tuple[str, int]] = {
    "efficiency": ("achieved", 1), "latency_s": ("achieved", -1), "nic_latency_s": ("achieved", -1)}
"""Fabric fields a training step depends on."""

_FP8_ONLY = ("fp8_tflops_dense", "fp8_flops_efficiency")
_BF16_ONLY = ("bf16_tflops_dense", "flops_efficiency")
_TAG = re.compile(r"^\s*([VSRDU])\s*:")
Ranges = Mapping[str, Mapping[str, float]]


def field_tag(spec: Any, name: str) -> str:
    """Confidence tag of one field: its ``field_sources`` prefix, else the entry's tag."""
    m = _TAG.match(spec.field_sources.get(name, ""))
    return m.group(1) if m else str(spec.confidence)


def relative_range(spec: Any, name: str, kind: str, ranges: Ranges = RELATIVE_RANGE) -> float:
    """Relative half-width of ``spec.name`` (a field of ``kind`` 'rated' or 'achieved')."""
    return float(ranges[kind][field_tag(spec, name)])


@dataclass(frozen=True)
class TrainingBand:
    """A training estimate at the two corners of the catalog's confidence.

    ``low`` is the slow corner (step time high, MFU low), ``high`` the fast one; ``point`` the
    plain estimate. ``fields`` maps ``"spec.field"`` to ``(tag, relative range)`` for every
    uncertain field the estimate read; ``notes`` says when the band is not just the corners.
    """

    point: TrainingEstimate
    low: TrainingEstimate
    high: TrainingEstimate
    fields: dict[str, tuple[str, float]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def ranges(self) -> dict[str, list[float]]:
        """``{"step_time_s": [lo, hi], "mfu": [lo, hi], "tokens_per_s": [lo, hi]}``, ascending."""
        return {"step_time_s": [self.high.step_time_s, self.low.step_time_s],
                "mfu": [self.low.mfu, self.high.mfu],
                "tokens_per_s": [self.low.tokens_per_s, self.high.tokens_per_s]}

    def line(self) -> str:
        """``uncertainty: step 15.1-17.6 s, MFU 45.9-53.4% (catalog confidence: ...)``."""
        r = self.ranges()
        (s0, s1), (m0, m1) = r["step_time_s"], r["mfu"]
        by_spec: dict[str, list[str]] = {}
        for key, (tag, rel) in self.fields.items():
            spec, name = key.split(".", 1)
            by_spec.setdefault(spec, []).append(f"{name} {tag} ±{rel:.1%}")
        conf = "; ".join(f"{spec}: {', '.join(parts)}" for spec, parts in by_spec.items())
        return (f"uncertainty: step {s0:.3g}-{s1:.3g} s, MFU {m0 * 100:.1f}-{m1:.1%} "
                f"(catalog confidence: {conf or 'every field exact'})")


class _CornerView:
    """Read-only view of a topology with every uncertain catalog field moved to one end.

    ``sign`` is -1 for the pessimistic corner, +1 for the optimistic one. Attributes other than
    ``accelerator`` and ``comm_levels`` are the topology's own.
    """

    def __init__(self, topology: Any, sign: int, ranges: Ranges, dtype: str) -> None:
        self._topo = topology
        self._sign = sign
        self._ranges = ranges
        self._dtype = dtype
        self._accs: dict[str, AcceleratorSpec] = {}
        self.used: dict[str, tuple[str, float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._topo, name)

    def _skip(self, name: str) -> bool:
        return name in (_BF16_ONLY if self._dtype == "fp8" else _FP8_ONLY)

    def _factor(self, spec: Any, name: str, kind: str, better: int) -> float:
        rel = relative_range(spec, name, kind, self._ranges)
        if rel > 0:
            self.used[f"{spec.name}.{name}"] = (field_tag(spec, name), rel)
        return 1.0 + self._sign * better * rel

    def _widest(self, specs: Sequence[Any], name: str, table: Mapping[str, tuple[str, int]]) -> float:
        kind, better = table[name]
        factors = [self._factor(s, name, kind, better) for s in specs]
        return max(factors, key=lambda f: abs(f - 1.0))  # the widest range of them all

    def accelerator(self, card: int) -> AcceleratorSpec:
        spec: AcceleratorSpec = self._topo.accelerator(card)
        if spec.name not in self._accs:
            new: dict[str, Any] = {}
            for name, (kind, better) in ACCELERATOR_FIELDS.items():
                if name.startswith("scaleup") or self._skip(name):
                    continue  # scale-up reaches the step through comm_levels
                value = getattr(spec, name) * self._factor(spec, name, kind, better)
                new[name] = min(value, 1.0) if name.endswith("efficiency") else value
            self._accs[spec.name] = replace(spec, **new)
        return self._accs[spec.name]

    def comm_levels(self, cards: Sequence[int] | np.ndarray) -> tuple[CommLevel, ...]:
        topo = self._topo
        idx = np.unique(np.asarray(cards, dtype=np.int64).ravel())
        levels = topo.comm_levels(idx)
        _, first_of_type = np.unique(topo.card_type_idx[idx], return_index=True)
        accs = [topo.accelerator(int(idx[i])) for i in first_of_type]
        _, first_of_sys = np.unique(topo.cards.system_idx[idx], return_index=True)
        sys_cards = [int(idx[i]) for i in first_of_sys]
        systems = [topo.system(c) for c in sys_cards]
        sites = sorted({int(d) for d in topo.cards.dc[idx]})
        out = []
        for lv in levels:
            if lv.tier == "scaleup":
                bw = self._widest(accs, "scaleup_gbyte_s_bidir", ACCELERATOR_FIELDS)
                eff = self._widest(accs, "scaleup_efficiency", ACCELERATOR_FIELDS)
                lat = self._widest(systems, "scaleup_latency_s", SYSTEM_FIELDS)
            else:
                if lv.tier == "scaleout":
                    fabs = [topo.sites[s].fabric for s in sites]
                    # a NIC rate the topology file sets is a user input, not a catalog figure
                    nic_sys = [s for s, c in zip(systems, sys_cards, strict=True)
                               if np.isclose(topo.nic_Bps(c), s.nic_bytes_per_s_per_card)]
                    bw = self._widest(nic_sys, "nic_gbit_s", SYSTEM_FIELDS) if nic_sys else 1.0
                else:
                    fabs = [d.fabric for d in topo.dci if d.a in sites and d.b in sites]
                    bw = 1.0
                eff = self._widest(fabs, "efficiency", FABRIC_FIELDS) if fabs else 1.0
                lat = max((self._widest(fabs, f, FABRIC_FIELDS) if fabs else 1.0
                           for f in ("latency_s", "nic_latency_s")), key=lambda f: abs(f - 1.0))
            out.append(replace(lv, bandwidth_Bps=lv.bandwidth_Bps * bw,
                               efficiency=min(1.0, lv.efficiency * eff), latency_s=lv.latency_s * lat))
        return tuple(out)


def _at_stated_peak(corner: TrainingEstimate, point: TrainingEstimate) -> TrainingEstimate:
    """``corner`` with MFU and HFU against the stated peak (same FLOPs per step as the point)."""
    ratio = point.step_time_s / corner.step_time_s
    return replace(corner, mfu=point.mfu * ratio, hfu=point.hfu * ratio)


def estimate_band(
    model: ModelSpec,
    plan: ParallelPlan,
    topology: Any,
    cards: Sequence[int] | np.ndarray | None = None,
    *,
    card_type: str | None = None,
    ranges: Ranges = RELATIVE_RANGE,
    **kwargs: Any,
) -> TrainingBand:
    """The estimate of :func:`estimate_step` at the slow and fast corners of catalog confidence.

    Parameters
    ----------
    model, plan, topology, cards, card_type
        As :func:`~cluster_sim.perf.training.estimate_step`.
    ranges : mapping
        Relative range by kind ('rated', 'achieved') and tag; default :data:`RELATIVE_RANGE`.
    **kwargs
        Passed to ``estimate_step`` (``seq_len``, ``dtype``, ...).

    Returns
    -------
    TrainingBand
        ``low`` (slow corner) and ``high`` (fast corner), with the point estimate. The estimate is
        monotone in every field almost everywhere; where it is not (a pipeline send longer than a
        micro-batch's compute), the band is widened to hold the point and a note says so.
    """
    if cards is None:
        cards = pick_cards(topology, plan.cards, card_type)
    dtype = str(kwargs.get("dtype", "bf16"))
    point = estimate_step(model, plan, topology, cards, **kwargs)
    slow_view = _CornerView(topology, -1, ranges, dtype)
    fast_view = _CornerView(topology, +1, ranges, dtype)
    slow = _at_stated_peak(estimate_step(model, plan, slow_view, cards, **kwargs), point)
    fast = _at_stated_peak(estimate_step(model, plan, fast_view, cards, **kwargs), point)
    notes: list[str] = []
    if not fast.step_time_s <= point.step_time_s <= slow.step_time_s:
        notes.append("the step time is not monotone in the catalog fields for this plan; the band "
                     "is widened to hold the point estimate")
        hull = (slow, fast, point)
        slow = max(hull, key=lambda e: e.step_time_s)
        fast = min(hull, key=lambda e: e.step_time_s)
    return TrainingBand(point=point, low=slow, high=fast, fields=dict(sorted(slow_view.used.items())),
                        notes=tuple(notes))
