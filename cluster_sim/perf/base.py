"""Shared types of the performance models: :class:`Breakdown` and the model protocols.

Every time the simulator computes (a training step, an inference iteration, a collective)
comes back as a :class:`Breakdown`: seconds by component, whose sum is the exposed time.

The protocols are what the engines call, so any model with these methods plugs in:

* :class:`TrainingStepModel`: the cluster engine's per-job speed hook, ``model(cards, share) ->
  (speed, mfu)`` (speed relative to the job's reference placement); the real one wraps
  :func:`cluster_sim.perf.training.estimate_step` (``cluster_sim.experiment.build``).
* :class:`ReplicaPerfModel`: one inference replica's iteration costs and KV capacity, as the
  serving engine uses them; :class:`~cluster_sim.perf.inference.ReplicaPerf` is the real model,
  :class:`~cluster_sim.perf.linear_serving.LinearServingPerf` the test double (affine costs).

>>> b = Breakdown({"compute": 0.8, "dp_comm": 0.15, "pp_bubble": 0.05})
>>> round(b.total, 3)
1.0
>>> b.fractions()["compute"]
0.8
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

__all__ = ["Breakdown", "ReplicaPerfModel", "TrainingStepModel"]


@runtime_checkable
class TrainingStepModel(Protocol):
    """A job's step-time model as the cluster engine calls it (``TrainingEngine(job_speed=...)``)."""

    def __call__(self, cards: Any, share: float) -> tuple[float, float]:
        """``(speed, mfu)`` of the job on ``cards`` (card ids) with scale-out bandwidth ``share``
        of the NIC rate: speed relative to its reference placement, MFU (NaN: unknown)."""
        ...


@runtime_checkable
class ReplicaPerfModel(Protocol):
    """One inference replica's cost model as the serving engine calls it (``PoolSpec.perf``).

    Times are seconds; ``context_tokens`` is the batch's total context. The engine also reads
    ``cards`` and ``power_w(phase)`` when a model has them (per-card metrics, energy).
    """

    @property
    def kv_capacity_tokens(self) -> int:
        """KV-cache tokens the replica holds."""
        ...

    @property
    def kv_bytes_per_token_unique(self) -> float:
        """Bytes a PD transfer moves per prompt token."""
        ...

    def prefill_time_s(self, new_tokens: int, attn_pairs: float | None = None) -> float:
        """One prefill iteration over ``new_tokens`` tokens."""
        ...

    def decode_stretch_s(self, batch: int, context_tokens: float, iterations: int) -> float:
        """``iterations`` decode iterations, the context growing by ``batch`` each."""
        ...

    def decode_iterations_within(self, batch: int, context_tokens: float, budget_s: float) -> int:
        """Largest ``k`` with ``decode_stretch_s(batch, context_tokens, k) <= budget_s``."""
        ...

    def mixed_iteration_time_s(self, prefill_tokens: int, decode_batch: int, context_tokens: float,
                               attn_pairs: float | None = None) -> float:
        """One chunked-prefill iteration (prefill tokens and decodes together)."""
        ...


class Breakdown(Mapping[str, float]):
    """Immutable mapping of component name -> seconds; ``total`` is their sum.

    Components are exposed (non-overlapped) time, so they add up to the step or iteration
    time. Order of insertion is kept for display.
    """

    __slots__ = ("_parts",)

    def __init__(self, parts: Mapping[str, float] | None = None, **kwargs: float) -> None:
        merged = dict(parts or {})
        merged.update(kwargs)
        for k, v in merged.items():
            if not v >= 0:  # also catches NaN
                raise ValueError(f"breakdown component {k!r} must be >= 0, got {v!r}")
        self._parts = MappingProxyType({k: float(v) for k, v in merged.items()})

    def __getitem__(self, key: str) -> float:
        return self._parts[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4g}" for k, v in self._parts.items())
        return f"Breakdown({inner}; total={self.total:.4g})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Breakdown) and dict(self._parts) == dict(other._parts)

    def __hash__(self) -> int:
        return hash(tuple(self._parts.items()))

    def __add__(self, other: Mapping[str, float]) -> Breakdown:
        out = dict(self._parts)
        for k, v in other.items():
            out[k] = out.get(k, 0.0) + v
        return Breakdown(out)

    @property
    def total(self) -> float:
        """Sum of all components, seconds."""
        return float(sum(self._parts.values()))

    def scaled(self, factor: float) -> Breakdown:
        """Every component multiplied by ``factor``."""
        return Breakdown({k: v * factor for k, v in self._parts.items()})

    def fractions(self) -> dict[str, float]:
        """Each component's share of the total (empty total -> all zeros)."""
        t = self.total
        return {k: (v / t if t > 0 else 0.0) for k, v in self._parts.items()}

    def as_dict(self) -> dict[str, float]:
        """A plain dict copy (for JSON)."""
        return dict(self._parts)
