"""Azure LLM inference trace 2023 (``AzureLLMInferenceTrace_{code,conv}.csv``).

Columns ``TIMESTAMP`` (wall clock with 7 fractional digits, no time zone), ``ContextTokens``
(prompt) and ``GeneratedTokens`` (output); CRLF line endings, no final newline. Patel et al.,
Splitwise (ISCA 2024); CC-BY-4.0.

:func:`read` returns a :class:`~cluster_sim.workload.requests.RequestTable` with arrival
times in seconds relative to the first (earliest) row, at full 100-ns precision, sorted by
arrival. :func:`stats` gives the DOMAIN.md 4.4 statistics. A bad row raises
:class:`~cluster_sim.errors.TraceError` naming file, line and column, e.g.
``trace.csv:17: ContextTokens: not a number ('abc')``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...errors import TraceError
from ..requests import RequestTable, request_stats
from .common import PathLike, check_file, read_csv

__all__ = ["COLUMNS", "read", "stats"]

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


def _fast(path: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Typed read with pyarrow; ``None`` if anything is off (the careful path then explains)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, engine="pyarrow", dtype={"TIMESTAMP": str})
    except Exception:  # any parse problem is diagnosed by the careful path
        return None
    if not set(COLUMNS) <= set(df.columns):
        return None
    tok = [df[c] for c in COLUMNS[1:]]
    if any(t.dtype.kind not in "iu" for t in tok) or any(bool((t < 0).any()) for t in tok):
        return None
    ts = pd.to_datetime(df["TIMESTAMP"], format="ISO8601", errors="coerce")
    if ts.isna().any():
        return None
    ns = ts.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ns, tok[0].to_numpy(), tok[1].to_numpy()


def _careful(path: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text read with a line-qualified error for the first bad value."""
    import pandas as pd

    table = read_csv(path, COLUMNS)
    raw = table.frame["TIMESTAMP"]
    ts = pd.to_datetime(raw, format="ISO8601", errors="coerce")
    bad = ts.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        msg = "missing value" if raw.iat[i] == "" else f"not a timestamp ({raw.iat[i]!r})"
        raise table.error(i, "TIMESTAMP", msg)
    prompt, output = (_tokens(table, col) for col in COLUMNS[1:])
    return ts.to_numpy(dtype="datetime64[ns]").view(np.int64), prompt, output


def _tokens(table: Any, col: str) -> np.ndarray:
    """A token-count column: finite, integral, >= 0, else a line-qualified TraceError."""
    import pandas as pd

    raw = table.frame[col]
    vals = np.array(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
    checks = (
        (~np.isfinite(vals), lambda v: "empty" if v == "" else f"not a number ({v!r})"),
        (vals != np.round(vals), lambda v: f"not an integer ({v!r})"),
        (vals < 0, lambda v: f"must be >= 0, got {v!r}"),
    )
    for bad, msg in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise table.error(i, col, msg(raw.iat[i]))
    return vals.astype(np.int64)


def read(path: PathLike) -> RequestTable:
    """Read an Azure LLM trace CSV into a :class:`RequestTable` (sorted, t = 0 at the first request)."""
    p = check_file(path)
    cols = _fast(p)
    if cols is None:
        cols = _careful(p)
    ns, prompt, output = cols
    if len(ns) == 0:
        raise TraceError(f"{p.name}: no requests")
    too_big = (prompt > np.iinfo(np.int32).max) | (output > np.iinfo(np.int32).max)
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise TraceError(f"{p.name}:{i + 2}: token count does not fit int32")
    order = np.argsort(ns, kind="stable")
    ns, prompt, output = ns[order], prompt[order], output[order]
    arrival_s = (ns - ns[0]).astype(np.float64) * 1e-9
    return RequestTable(arrival_s, prompt.astype(np.int32), output.astype(np.int32), source=p.name)


def stats(path: PathLike) -> dict[str, float]:
    """DOMAIN.md 4.4 statistics of an Azure LLM trace (see :func:`~..requests.request_stats`)."""
    return request_stats(read(path))
