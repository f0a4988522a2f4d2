"""Inference requests as numpy columns: :class:`RequestTable`.

One row per request: ``arrival_s`` (float64, seconds from the start of the workload),
``prompt_tokens`` and ``output_tokens`` (int32), an optional ``service`` id (int16) and optional
prefix-block hashes stored CSR-style (``block_hashes`` int64 flat, ``block_offsets`` int64 of
length ``n + 1``; request ``i`` owns ``block_hashes[block_offsets[i]:block_offsets[i + 1]]``,
one hash per ``block_tokens`` prompt tokens). Without hashes a request costs 18 bytes, so
1,000,000 requests take 18 MB.

>>> t = RequestTable.from_arrays([0.5, 0.0, 2.0], [100, 200, 300], [10, 20, 30])
>>> len(t), t.sorted().arrival_s.tolist()
(3, [0.0, 0.5, 2.0])
>>> t.scaled(rate_scale=2.0).arrival_s.tolist()
[0.25, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..rng import as_generator

__all__ = ["RequestTable", "request_stats"]


def _column(name: str, values: Any, dtype: type, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{where}.{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        i = int(np.flatnonzero(np.isnan(arr))[0])
        raise ConfigError(f"{where}.{name}[{i}]: NaN")
    if arr.dtype.kind not in "iuf" and arr.size:
        raise ConfigError(f"{where}.{name}: expected numbers, got dtype {arr.dtype}")
    if dtype is not np.float64 and arr.size and arr.dtype.kind == "f" and (arr != np.round(arr)).any():
        i = int(np.flatnonzero(arr != np.round(arr))[0])
        raise ConfigError(f"{where}.{name}[{i}]: not an integer ({arr[i]!r})")
    if arr.size and (arr < 0).any():
        i = int(np.flatnonzero(arr < 0)[0])
        raise ConfigError(f"{where}.{name}[{i}]: must be >= 0, got {arr[i]!r}")
    if dtype is not np.float64 and arr.size and arr.max() > np.iinfo(dtype).max:
        raise ConfigError(f"{where}.{name}: values above {np.iinfo(dtype).max} do not fit {np.dtype(dtype).name}")
    return np.ascontiguousarray(arr, dtype=dtype)


@dataclass(frozen=True, eq=False)
class RequestTable:
    """Requests as columns; build with :meth:`from_arrays` (validates) or a trace reader.

    Parameters
    ----------
    arrival_s : ndarray of float64
        Arrival times, seconds.
    prompt_tokens, output_tokens : ndarray of int32
        Prompt (context) and generated tokens per request.
    service : ndarray of int16, optional
        Service id per request (index into the experiment's list of services).
    block_hashes : ndarray of int64, optional
        Prefix-block hash ids of all requests, concatenated.
    block_offsets : ndarray of int64, optional
        ``n + 1`` offsets into ``block_hashes``.
    block_tokens : int
        Prompt tokens per hashed block (Mooncake: 512).
    source : str
        Where the rows came from (file name or generator), for reports.
    """

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    service: np.ndarray | None = None
    block_hashes: np.ndarray | None = None
    block_offsets: np.ndarray | None = None
    block_tokens: int = 512
    source: str = ""

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrival_s: Any, prompt_tokens: Any, output_tokens: Any, *,
                    service: Any = None, block_hashes: Any = None, block_offsets: Any = None,
                    block_tokens: int = 512, source: str = "", where: str = "requests") -> RequestTable:
        """Validated constructor: no NaN, no negative values, equal lengths, integer tokens.

        Errors are :class:`~cluster_sim.errors.ConfigError` naming ``where.column[index]``.
        """
        arr = _column("arrival_s", arrival_s, np.float64, where)
        if not np.isfinite(arr).all():
            i = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ConfigError(f"{where}.arrival_s[{i}]: not finite ({arr[i]!r})")
        prompt = _column("prompt_tokens", prompt_tokens, np.int32, where)
        output = _column("output_tokens", output_tokens, np.int32, where)
        n = len(arr)
        for name, col in (("prompt_tokens", prompt), ("output_tokens", output)):
            if len(col) != n:
                raise ConfigError(f"{where}.{name}: {len(col)} values for {n} arrivals")
        svc = None
        if service is not None:
            svc = _column("service", np.broadcast_to(np.asarray(service), (n,)), np.int16, where)
        hashes = offsets = None
        if (block_hashes is None) != (block_offsets is None):
            raise ConfigError(f"{where}: block_hashes and block_offsets go together")
        if block_hashes is not None:
            hashes = np.ascontiguousarray(np.asarray(block_hashes), dtype=np.int64)
            offsets = np.ascontiguousarray(np.asarray(block_offsets), dtype=np.int64)
            if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(hashes) or (np.diff(offsets) < 0).any():
                raise ConfigError(f"{where}.block_offsets: must rise from 0 to len(block_hashes) with n + 1 entries")
        if block_tokens < 1:
            raise ConfigError(f"{where}.block_tokens: must be >= 1, got {block_tokens!r}")
        return cls(arr, prompt, output, svc, hashes, offsets, int(block_tokens), source)

    @classmethod
    def empty(cls, source: str = "") -> RequestTable:
        """A table with no rows."""
        return cls(np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int32), source=source)

    # ---- basics ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.arrival_s)

    def __repr__(self) -> str:
        span = float(self.arrival_s.max() - self.arrival_s.min()) if len(self) else 0.0
        extra = (", service" if self.service is not None else "") + (", blocks" if self.has_blocks else "")
        src = f", source={self.source!r}" if self.source else ""
        return f"RequestTable({len(self):,} requests over {span:.1f} s{extra}{src})"

    @property
    def has_blocks(self) -> bool:
        """True when prefix-block hashes are present."""
        return self.block_hashes is not None

    @property
    def nbytes(self) -> int:
        """Memory held by the columns, bytes."""
        cols = (self.arrival_s, self.prompt_tokens, self.output_tokens, self.service,
                self.block_hashes, self.block_offsets)
        return int(sum(c.nbytes for c in cols if c is not None))

    def blocks(self, i: int) -> np.ndarray:
        """Prefix-block hashes of request ``i`` (empty when the table has none)."""
        if self.block_hashes is None or self.block_offsets is None:
            return np.zeros(0, np.int64)
        return self.block_hashes[self.block_offsets[i]:self.block_offsets[i + 1]]

    @property
    def block_counts(self) -> np.ndarray:
        """Blocks per request (int64; zeros when the table has no hashes)."""
        if self.block_offsets is None:
            return np.zeros(len(self), np.int64)
        return np.diff(self.block_offsets)

    # ---- selection -------------------------------------------------------------------------
    def take(self, index: np.ndarray) -> RequestTable:
        """Rows at integer positions ``index`` (in that order)."""
        idx = np.asarray(index, dtype=np.int64)
        hashes = offsets = None
        if self.block_hashes is not None and self.block_offsets is not None:
            starts, ends = self.block_offsets[idx], self.block_offsets[idx + 1]
            counts = ends - starts
            offsets = np.zeros(len(idx) + 1, np.int64)
            np.cumsum(counts, out=offsets[1:])
            # flat positions: for each row, starts[i] + 0..counts[i]-1
            pos = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - starts, counts)
            hashes = self.block_hashes[pos]
        svc = self.service[idx] if self.service is not None else None
        return RequestTable(self.arrival_s[idx], self.prompt_tokens[idx], self.output_tokens[idx], svc,
                            hashes, offsets, self.block_tokens, self.source)

    def __getitem__(self, key: slice | np.ndarray | Sequence[int]) -> RequestTable:
        """Rows by boolean mask, integer index array or slice."""
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        arr = np.asarray(key)
        if arr.dtype == bool:
            if len(arr) != len(self):
                raise IndexError(f"mask of length {len(arr)} for {len(self)} requests")
            return self.take(np.flatnonzero(arr))
        return self.take(arr)

    def sorted(self) -> RequestTable:
        """Rows in order of arrival (stable: ties keep their original order)."""
        order = np.argsort(self.arrival_s, kind="stable")
        if (order == np.arange(len(self))).all():
            return self
        return self.take(order)

    def head(self, duration_s: float) -> RequestTable:
        """Requests arriving before ``duration_s`` (arrival times are kept)."""
        return self[self.arrival_s < duration_s]

    def sample(self, n: int | None = None, fraction: float | None = None,
               rng: np.random.Generator | int | None = None) -> RequestTable:
        """A random subset of ``n`` rows or ``fraction`` of the rows, in their original order."""
        if (n is None) == (fraction is None):
            raise ConfigError("sample: give exactly one of n or fraction")
        k = int(n) if n is not None else int(round(float(fraction) * len(self)))  # type: ignore[arg-type]
        if not 0 <= k <= len(self):
            raise ConfigError(f"sample: cannot take {k} of {len(self)} requests")
        gen = as_generator(rng, "sample")
        idx = np.sort(gen.choice(len(self), size=k, replace=False))
        return self.take(idx)

    # ---- transformations -------------------------------------------------------------------
    def scaled(self, time_scale: float = 1.0, rate_scale: float = 1.0) -> RequestTable:
        """Arrival times multiplied by ``time_scale / rate_scale`` (``rate_scale=2``: twice the load)."""
        if not (time_scale > 0 and rate_scale > 0):
            raise ConfigError(f"scaled: time_scale and rate_scale must be > 0, got {time_scale}, {rate_scale}")
        f = time_scale / rate_scale
        return RequestTable(self.arrival_s * f, self.prompt_tokens, self.output_tokens, self.service,
                            self.block_hashes, self.block_offsets, self.block_tokens, self.source)

    def shifted(self, offset_s: float) -> RequestTable:
        """Arrival times plus ``offset_s``."""
        return RequestTable(self.arrival_s + offset_s, self.prompt_tokens, self.output_tokens, self.service,
                            self.block_hashes, self.block_offsets, self.block_tokens, self.source)

    def with_service(self, service: int | np.ndarray) -> RequestTable:
        """The same rows tagged with a service id (scalar or per-row)."""
        svc = _column("service", np.broadcast_to(np.asarray(service), (len(self),)), np.int16, "requests")
        return RequestTable(self.arrival_s, self.prompt_tokens, self.output_tokens, svc,
                            self.block_hashes, self.block_offsets, self.block_tokens, self.source)

    @staticmethod
    def concat(tables: Sequence[RequestTable], sort: bool = True) -> RequestTable:
        """Rows of all ``tables`` (sorted by arrival unless ``sort=False``).

        ``service`` is kept only when every table has it; block hashes only when every table has
        them with the same ``block_tokens``.
        """
        tables = list(tables)
        if not tables:
            return RequestTable.empty()
        svc = (np.concatenate([t.service for t in tables if t.service is not None])
               if all(t.service is not None for t in tables) else None)
        hashes = offsets = None
        bt = tables[0].block_tokens
        if all(t.has_blocks and t.block_tokens == bt for t in tables):
            hashes = np.concatenate([t.block_hashes for t in tables])  # type: ignore[misc]
            counts = np.concatenate([t.block_counts for t in tables])
            offsets = np.zeros(len(counts) + 1, np.int64)
            np.cumsum(counts, out=offsets[1:])
        sources = sorted({t.source for t in tables if t.source})
        out = RequestTable(np.concatenate([t.arrival_s for t in tables]),
                           np.concatenate([t.prompt_tokens for t in tables]),
                           np.concatenate([t.output_tokens for t in tables]),
                           svc, hashes, offsets, bt, "+".join(sources))
        return out.sorted() if sort else out

    def to_frame(self) -> Any:
        """A pandas DataFrame of the scalar columns (block hashes as a ``n_blocks`` count)."""
        import pandas as pd

        data: dict[str, np.ndarray] = {"arrival_s": self.arrival_s, "prompt_tokens": self.prompt_tokens,
                                       "output_tokens": self.output_tokens}
        if self.service is not None:
            data["service"] = self.service
        if self.has_blocks:
            data["n_blocks"] = self.block_counts
        return pd.DataFrame(data)

    def stats(self) -> dict[str, float]:
        """Summary statistics; see :func:`request_stats`."""
        return request_stats(self)


def _pcts(prefix: str, x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {f"{prefix}_{k}": float("nan") for k in ("mean", "p50", "p90", "p99", "max")}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])  # linear interpolation (NumPy default)
    return {f"{prefix}_mean": float(x.mean()), f"{prefix}_p50": float(p50), f"{prefix}_p90": float(p90),
            f"{prefix}_p99": float(p99), f"{prefix}_max": float(x.max())}


def request_stats(table: RequestTable, idle_gap_s: float = 60.0) -> dict[str, float]:
    """Arrival and length statistics of a request table (the DOMAIN.md 4.4 definitions).

    Keys: ``count``; ``span_s`` (last - first arrival); ``mean_rate_per_s`` = count / span;
    ``interarrival_cv`` (population std / mean of the gaps); ``idle_gaps`` (gaps > ``idle_gap_s``),
    ``idle_gap_total_s``, ``longest_gap_s``; ``max_per_minute``, ``min_per_minute``,
    ``mean_per_minute`` over 60-s bins from the first arrival (the last bin may be partial);
    ``prompt_tokens_{mean,p50,p90,p99,max}`` and ``output_tokens_{...}`` (linear percentiles).
    """
    t = np.sort(table.arrival_s)
    n = len(t)
    out: dict[str, float] = {"count": float(n)}
    span = float(t[-1] - t[0]) if n else 0.0
    gaps = np.diff(t)
    out["span_s"] = span
    out["mean_rate_per_s"] = n / span if span > 0 else float("nan")
    out["interarrival_cv"] = float(gaps.std() / gaps.mean()) if len(gaps) and gaps.mean() > 0 else float("nan")
    idle = gaps[gaps > idle_gap_s]
    out["idle_gaps"] = float(len(idle))
    out["idle_gap_total_s"] = float(idle.sum())
    out["longest_gap_s"] = float(gaps.max()) if len(gaps) else 0.0
    if n:
        per_min = np.bincount(((t - t[0]) // 60.0).astype(np.int64))
        out.update(max_per_minute=float(per_min.max()), min_per_minute=float(per_min.min()),
                   mean_per_minute=float(per_min.mean()))
    out.update(_pcts("prompt_tokens", table.prompt_tokens))
    out.update(_pcts("output_tokens", table.output_tokens))
    return out
