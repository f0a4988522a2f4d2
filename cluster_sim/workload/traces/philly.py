"""Microsoft Philly job run times (``philly_derived/philly_runtime.csv``): a duration distribution.

The file has one column, ``runtime``, in seconds (83,154 jobs; no GPU counts or arrival times).
:class:`EmpiricalSampler` draws durations from it (or from any sample) by inverse-CDF
interpolation between order statistics.

>>> s = EmpiricalSampler([10.0, 20.0, 30.0])
>>> s.quantile(0.5), s.quantile(0.75)
(20.0, 25.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import TraceError
from ...rng import as_generator
from .common import PathLike, describe, read_csv, traces_dir

__all__ = ["EmpiricalSampler", "philly_sampler", "read_runtimes", "stats"]


def read_runtimes(path: PathLike) -> np.ndarray:
    """Run times in seconds (float64, in file order; finite and >= 0, else :class:`TraceError`)."""
    t = read_csv(path, ("runtime",))
    if not len(t):
        raise TraceError(f"{t.name}: no data rows")
    return t.floats("runtime", min_value=0.0)


def stats(path: PathLike) -> dict[str, Any]:
    """Count, mean, p50/p90/p99, max and the number of zero run times."""
    v = read_runtimes(path)
    out: dict[str, Any] = {"rows": int(v.size), "runtime_s": describe(v), "zeros": int((v == 0).sum()),
                           "sorted": bool((np.diff(v) >= 0).all())}
    out["max_days"] = float(v.max() / 86400.0)
    return out


@dataclass(frozen=True, eq=False)
class EmpiricalSampler:
    """Draw values from an empirical distribution by interpolating its quantile function.

    Parameters
    ----------
    values : sequence of float
        The sample (any order); NaN and infinities are rejected.
    min_value : float
        Draws below it are raised to it (durations must be > 0; Philly has two zeros).
    max_value : float, optional
        Draws above it are lowered to it.
    """

    values: Any
    min_value: float = 1.0
    max_value: float | None = None

    def __post_init__(self) -> None:
        v = np.sort(np.asarray(self.values, dtype=np.float64))
        if v.size == 0 or not np.isfinite(v).all():
            raise TraceError("empirical sampler: values must be a non-empty finite sample")
        v.flags.writeable = False
        object.__setattr__(self, "values", v)

    def __len__(self) -> int:
        return int(self.values.size)

    def __repr__(self) -> str:
        return (f"EmpiricalSampler(n={len(self)}, min_value={self.min_value}, max_value={self.max_value}, "
                f"median={float(np.median(self.values)):g})")

    def quantile(self, q: float | Sequence[float] | np.ndarray) -> Any:
        """Inverse CDF at ``q`` in [0, 1] (linear interpolation, like ``numpy.percentile``)."""
        qa = np.asarray(q, dtype=np.float64)
        pos = qa * (self.values.size - 1)
        out = np.interp(pos, np.arange(self.values.size), self.values)
        out = np.maximum(out, self.min_value)
        if self.max_value is not None:
            out = np.minimum(out, self.max_value)
        return float(out) if out.ndim == 0 else out

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` independent draws (float64)."""
        g = as_generator(rng, "empirical")
        return np.asarray(self.quantile(g.random(int(n))), dtype=np.float64)

    @property
    def mean(self) -> float:
        """Mean of the draws' distribution (exact for the interpolated quantile function of the
        clipped order statistics)."""
        v = np.clip(self.values, self.min_value, self.max_value)
        if v.size == 1:
            return float(v[0])
        return float((v.sum() - (v[0] + v[-1]) / 2.0) / (v.size - 1))


def philly_sampler(path: PathLike | None = None, min_value: float = 1.0,
                   max_value: float | None = None) -> EmpiricalSampler:
    """An :class:`EmpiricalSampler` over the Philly run times (default: the shared traces copy)."""
    if path is None:
        path = traces_dir() / "philly_derived" / "philly_runtime.csv"
    return EmpiricalSampler(read_runtimes(path), min_value=min_value, max_value=max_value)
