"""Shared types of the performance models: :class:`Breakdown` and the model protocols.

Every time the simulator computes (a training step, an inference iteration, a collective)
comes back as a :class:`Breakdown`: seconds by component, whose sum is the exposed time.

>>> b = Breakdown({"compute": 0.8, "dp_comm": 0.15, "pp_bubble": 0.05})
>>> round(b.total, 3)
1.0
>>> b.fractions()["compute"]
0.8
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType

__all__ = ["Breakdown"]


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
