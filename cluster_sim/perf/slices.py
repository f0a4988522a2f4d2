"""Fractional cards for small models: a serving replica on one slice of a partitioned card.

A card partitioned into ``slices`` equal parts (NVIDIA Multi-Instance GPU, MIG) hosts
``slices`` replicas of ``tp = ep = 1``. Each slice has ``1/slices`` of the card's compute, HBM
bandwidth and HBM capacity, so a slice replica is an ordinary :class:`ReplicaPerf` on a
*sliced accelerator spec* (:func:`sliced_accelerator`): the roofline, the KV capacity and the
fit check follow from the spec, nothing is fitted. A memory-bound decode iteration of a slice
therefore takes ``slices`` times the whole card's (overhead excluded), and its KV capacity is
``(HBM / slices - weights - workspace) / KV bytes per token``.

Interference (``interference``): MIG gives each instance a dedicated set of compute, memory
and cache resources with guaranteed quality of service (NVIDIA's Multi-Instance GPU page), but
co-resident instances still share the power and thermal envelope (power throttling is reported
as the remaining interference in the 2026 arXiv characterisation 2604.08451, "Taming GPU
Underutilization via Static Partitioning and Fine-grained CPU Offloading"). No
measured per-slice slowdown was found to default to, so the default is 0 (ideal isolation).
A value ``f > 0`` is a *fixed* factor: every compute and memory term of a sliced replica takes
``(1 + f)`` times as long, as if its neighbours were always busy (an upper bound of the
interference; a per-event dependence on how many neighbours are busy is not modelled).

Real MIG profiles are not exactly equal parts (an A100/H100 ``1g`` instance has 1/7 of the
usable SMs but 1/8 of the memory); the equal split is the model's simplification, documented in
``docs/pool.md``.

>>> whole = ReplicaPerf("llama3-8b", "h100-sxm", overhead_s=0.0)
>>> part = SlicedReplicaPerf("llama3-8b", "h100-sxm", overhead_s=0.0, slices=2)
>>> round(part.decode_time_s(1, 0) / whole.decode_time_s(1, 0), 6)
2.0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..catalog import AcceleratorSpec, accelerator
from ..errors import ConfigError
from ..units import GIB
from .inference import ReplicaPerf

__all__ = ["MAX_SLICES", "SlicedReplicaPerf", "max_slices", "sliced_accelerator"]

MAX_SLICES = {
    # NVIDIA Multi-Instance GPU (nvidia.com/technologies/multi-instance-gpu and the MIG user
    # guide's supported-GPU table): up to seven GPU instances on A100 (40/80 GB), H100, H200 and
    # B200. Cards not listed have no MIG-like partitioning here; add one with its source.
    "a100-40gb": 7, "a100-80gb": 7, "h100-sxm": 7, "h200": 7, "b200": 7,
}
"""Most slices (MIG instances) per card, by catalog accelerator name."""


def max_slices(card_type: str) -> int:
    """Most slices a card of ``card_type`` may be partitioned into (1: not partitionable)."""
    return MAX_SLICES.get(accelerator(card_type).name, 1)


def sliced_accelerator(acc: AcceleratorSpec | str, slices: int, interference: float = 0.0) -> AcceleratorSpec:
    """The spec of one of ``slices`` equal slices of ``acc``.

    Peak FLOP/s (every dtype) and HBM bandwidth are divided by ``slices x (1 + interference)``,
    HBM capacity, TDP, idle power and price by ``slices``; efficiencies, the iteration overhead
    and the name stay the card's.
    """
    a = acc if isinstance(acc, AcceleratorSpec) else accelerator(acc)
    if slices == 1:
        return a
    slow = slices * (1.0 + interference)
    return dataclasses.replace(
        a, bf16_tflops_dense=a.bf16_tflops_dense / slow, fp8_tflops_dense=a.fp8_tflops_dense / slow,
        int8_tops_dense=a.int8_tops_dense / slow, hbm_tbyte_s=a.hbm_tbyte_s / slow,
        hbm_gb=a.hbm_gb / slices, tdp_w=a.tdp_w / slices, idle_w=a.idle_w / slices,
        price_usd_per_hour=a.price_usd_per_hour / slices)


@dataclass(frozen=True)
class SlicedReplicaPerf(ReplicaPerf):
    """A :class:`ReplicaPerf` on one of ``slices`` slices of a card (``tp = ep = 1``).

    ``accelerator`` stays the whole card (so :func:`dataclasses.replace` slices it once again,
    not twice); the roofline runs on :attr:`slice_accelerator`. ``power_w`` is the whole card's
    phase power / ``slices``. ``slices == 1`` is exactly :class:`ReplicaPerf`.

    Raises
    ------
    ConfigError
        ``replica.slices``: not an integer in 1..the card's maximum, with ``tp`` or ``ep`` > 1,
        or a model whose weights do not fit one slice (the message names the missing GiB);
        ``replica.interference``: not in [0, 10].
    """

    slices: int = 1
    interference: float = 0.0
    _slice_acc: AcceleratorSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        whole = self.accelerator if isinstance(self.accelerator, AcceleratorSpec) else accelerator(self.accelerator)
        s = self.slices
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ConfigError(f"replica.slices: must be a positive integer, got {s!r}")
        limit = MAX_SLICES.get(whole.name, 1)
        if s > limit:
            what = (f"at most {limit} per {whole.name} card (MIG instances)" if limit > 1 else
                    f"{whole.name} has no MIG-like partitioning (cards that have: {', '.join(MAX_SLICES)})")
            raise ConfigError(f"replica.slices: {s} slices, {what}")
        if s > 1 and (self.tp != 1 or self.ep != 1):
            raise ConfigError(f"replica.slices: a sliced replica runs on one slice of one card; "
                              f"tp and ep must be 1, got tp={self.tp}, ep={self.ep}")
        f = self.interference
        if not 0.0 <= f <= 10.0:
            raise ConfigError(f"replica.interference: must be in [0, 10], got {f!r}")
        if f and s == 1:
            raise ConfigError(f"replica.interference: {f!r} is the slowdown of co-resident slices; it "
                              "needs slices > 1")
        part = sliced_accelerator(whole, s, f)
        object.__setattr__(self, "accelerator", part)
        try:
            super().__post_init__()
        except ConfigError as exc:
            if s == 1:
                raise
            raise ConfigError(f"replica.slices: one of {s} slices of a {whole.name} has "
                              f"{part.hbm_bytes / GIB:.1f} GiB HBM; {exc}") from None
        object.__setattr__(self, "_slice_acc", part)
        object.__setattr__(self, "accelerator", whole)

    def __repr__(self) -> str:
        return f"Sliced{super().__repr__()[:-1]}, slices={self.slices}, interference={self.interference!r})"

    @property
    def slice_accelerator(self) -> AcceleratorSpec:
        """The spec the roofline runs on: one slice of the card."""
        return self._slice_acc

    @property
    def card_share(self) -> float:
        """Fraction of a card this replica holds: ``1 / slices``."""
        return 1.0 / self.slices

    def power_w(self, phase: str) -> float:
        """The whole card's power in ``phase`` / ``slices`` (each slice draws its share)."""
        return super().power_w(phase) / self.slices
