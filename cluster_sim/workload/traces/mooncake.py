"""Mooncake FAST'25 request traces (``conversation_trace.jsonl``, ``synthetic_trace.jsonl``).

One JSON object per line: ``timestamp`` (ms from the start of the trace), ``input_length``,
``output_length`` (tokens) and ``hash_ids`` (one remapped prefix-block hash per 512-token
block; ``len(hash_ids) == ceil(input_length / 512)``). Qin et al., FAST 2025; Apache-2.0.

:func:`read` returns a :class:`~cluster_sim.workload.requests.RequestTable` with block hashes
(``block_tokens = 512``), arrival times in seconds relative to the first (earliest) row,
sorted by arrival. :func:`stats` adds the repeated-block fraction (blocks whose id appeared
earlier: the prefix-cache hit ratio of an infinite cache). A bad line raises
:class:`~cluster_sim.errors.TraceError` naming file, line and field.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from typing import Any

import numpy as np

from ...errors import TraceError
from ..requests import RequestTable, request_stats
from .common import PathLike, check_file, iter_lines, parse_json_line

__all__ = ["BLOCK_TOKENS", "FIELDS", "read", "stats"]

BLOCK_TOKENS = 512
FIELDS = ("timestamp", "input_length", "output_length", "hash_ids")
_I32 = np.iinfo(np.int32).max
_I64_MIN, _I64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fast(path: Any) -> Columns | None:
    """Typed read with pyarrow; ``None`` if anything is off (the careful path then explains)."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if str(path).endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):  # the careful path reports it with the file name
        return None
    # A valid row is one object holding one flat list. More brackets than that means nesting,
    # which pyarrow's JSON reader recurses into natively (a deep enough line crashes the
    # process); leave such files to the careful path, which refuses them line by line.
    if data.count(b"[") + data.count(b"{") > 2 * (data.count(b"\n") + 1):
        return None
    try:
        tb = pj.read_json(io.BytesIO(data))
    except Exception:  # any parse problem is diagnosed by the careful path
        return None
    if not set(FIELDS) <= set(tb.column_names) or any(tb.column(f).null_count for f in FIELDS):
        return None
    h: Any = tb.column("hash_ids").combine_chunks()  # a ListArray once the type check below passes
    if not pa.types.is_list(h.type) or not pa.types.is_integer(h.type.value_type) or h.values.null_count:
        return None
    cols = []
    for f in FIELDS[:3]:
        c = tb.column(f)
        if not (pa.types.is_integer(c.type) or pa.types.is_floating(c.type)):
            return None
        cols.append(c.to_numpy().astype(np.float64))
    ts, inp, out = cols
    if not (np.isfinite(ts).all() and (ts >= 0).all() and (inp >= 0).all() and (out >= 0).all()):
        return None
    if (inp != np.round(inp)).any() or (out != np.round(out)).any() or max(inp.max(), out.max()) > _I32:
        return None
    offsets = h.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    hashes = h.values.to_numpy().astype(np.int64)[: offsets[-1]] if len(h) else np.zeros(0, np.int64)
    if (np.diff(offsets) != np.ceil(inp / BLOCK_TOKENS)).any():
        return None
    return ts, inp.astype(np.int32), out.astype(np.int32), hashes, offsets


def _careful(path: Any) -> Columns:
    """Line-by-line parse raising a TraceError for the first bad line."""
    name = path.name
    ts, inp, out, counts = [], [], [], []
    hashes: list[int] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        row = parse_json_line(line, f"{name}:{lineno}")
        if not isinstance(row, dict):
            raise TraceError(f"{name}:{lineno}: expected a JSON object")
        vals = []
        for key in FIELDS[:3]:
            if key not in row or row[key] is None:
                raise TraceError(f"{name}:{lineno}: {key}: missing value")
            v = row[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TraceError(f"{name}:{lineno}: {key}: not a number ({v!r})")
            if not math.isfinite(v) or v < 0:
                raise TraceError(f"{name}:{lineno}: {key}: must be a finite number >= 0, got {v!r}")
            if key != "timestamp" and (v != int(v) or v > _I32):
                raise TraceError(f"{name}:{lineno}: {key}: not an int32 token count ({v!r})")
            vals.append(v)
        ids = row.get("hash_ids")
        if not isinstance(ids, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in ids):
            raise TraceError(f"{name}:{lineno}: hash_ids: expected a list of integers, got {ids!r:.60}")
        if any(not _I64_MIN <= x <= _I64_MAX for x in ids):
            raise TraceError(f"{name}:{lineno}: hash_ids: a block hash does not fit 64 bits")
        want = math.ceil(vals[1] / BLOCK_TOKENS)
        if len(ids) != want:
            raise TraceError(f"{name}:{lineno}: hash_ids: {len(ids)} blocks for input_length "
                             f"{int(vals[1])} (expected ceil({int(vals[1])}/{BLOCK_TOKENS}) = {want})")
        ts.append(vals[0])
        inp.append(vals[1])
        out.append(vals[2])
        counts.append(len(ids))
        hashes.extend(ids)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return (np.asarray(ts, np.float64), np.asarray(inp, np.int32), np.asarray(out, np.int32),
            np.asarray(hashes, np.int64), offsets)


def read(path: PathLike) -> RequestTable:
    """Read a Mooncake JSONL trace into a :class:`RequestTable` with prefix-block hashes."""
    p = check_file(path)
    cols = _fast(p)
    if cols is None:
        cols = _careful(p)
    ts, inp, out, hashes, offsets = cols
    if len(ts) == 0:
        raise TraceError(f"{p.name}: no requests")
    table = RequestTable((ts - ts.min()) * 1e-3, inp, out, None, hashes, offsets, BLOCK_TOKENS, p.name)
    return table.sorted()


def stats(path: PathLike) -> dict[str, float]:
    """Request statistics (see :func:`~..requests.request_stats`) plus prefix-block reuse.

    Extra keys: ``blocks_total``, ``blocks_repeated`` (blocks whose hash id appeared in an
    earlier block), ``repeated_block_fraction``.
    """
    table = read(path)
    out = request_stats(table)
    hashes = table.block_hashes if table.block_hashes is not None else np.zeros(0, np.int64)
    total = len(hashes)
    repeated = total - len(np.unique(hashes))
    out.update(blocks_total=float(total), blocks_repeated=float(repeated),
               repeated_block_fraction=repeated / total if total else 0.0)
    return out
