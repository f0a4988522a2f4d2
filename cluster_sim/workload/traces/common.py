"""Shared helpers for trace readers: locating traces, reading CSVs, typed columns, statistics.

Every problem becomes one :class:`~cluster_sim.errors.TraceError` naming the file, and for a bad
value also the line (1-based, the header is line 1) and the column, e.g.
``openb_pod_list_default.csv:123: gpu_milli: not an integer ('x')``.

>>> describe([1.0, 2.0, 3.0, 4.0])["p50"]
2.5
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import TraceError

__all__ = [
    "TRACES_ENV",
    "CsvTable",
    "check_file",
    "count_values",
    "describe",
    "first_line",
    "iter_lines",
    "open_text",
    "parse_json_line",
    "read_csv",
    "traces_dir",
]

PathLike = str | os.PathLike[str]


TRACES_ENV = "CLUSTER_SIM_TRACES"
"""The environment variable naming the public-traces folder (``cluster-sim --traces DIR`` sets it)."""


def traces_dir() -> Path:
    """The public-traces folder: ``$CLUSTER_SIM_TRACES``, else the first ``shared/traces`` beside
    a folder above this package (``<repo>/../shared/traces`` in a checkout), else that path."""
    env = os.environ.get(TRACES_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "traces"
        if cand.is_dir():
            return cand
    return here.parents[3].parent / "shared" / "traces"


def check_file(path: PathLike) -> Path:
    """``path`` as a :class:`Path`; :class:`TraceError` unless it is a readable regular file."""
    p = Path(path)
    if not p.exists():
        tdir = traces_dir()
        if "traces" in p.parts or tdir in p.parents:  # a public trace: say where they are looked for
            raise TraceError(f"{p}: no such file (the public traces are looked for in {tdir}: point "
                             f"${TRACES_ENV} or --traces DIR at the folder holding them)")
        raise TraceError(f"{p}: no such file")
    if not p.is_file():
        raise TraceError(f"{p}: not a regular file")
    if not os.access(p, os.R_OK):
        raise TraceError(f"{p}: not readable (permission denied)")
    return p


def open_text(path: PathLike) -> io.TextIOBase:
    """Open a text trace for reading, transparently decompressing ``*.gz``."""
    p = check_file(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8-sig", newline="")
    return open(p, encoding="utf-8-sig", newline="")  # noqa: SIM115 - returned to the caller


def first_line(path: PathLike, limit: int = 65536) -> str:
    """The first line of a (possibly gzipped) text file, without line ending or BOM."""
    try:
        with open_text(path) as f:
            line = f.readline(limit)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise TraceError(f"{Path(path).name}: cannot read as text ({exc})") from None
    return line.rstrip("\r\n")


def iter_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a (possibly gzipped) text file; a read or decoding error
    (truncated gzip, not UTF-8) becomes a :class:`TraceError` naming the file."""
    p = Path(path)
    lineno = 0
    try:
        with open_text(p) as f:
            for lineno, line in enumerate(f, 1):
                yield lineno, line
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        after = f" after line {lineno}" if lineno else ""  # reads are buffered: the line is approximate
        raise TraceError(f"{p.name}: cannot read as text{after} ({exc})") from None


MAX_JSON_INT_DIGITS = 30
MAX_JSON_DEPTH = 32


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"integer with more than {MAX_JSON_INT_DIGITS} digits")
    return int(text)


def _depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json_line(line: str, where: str) -> Any:
    """One JSON value (a JSON-lines row) with bounded integers and nesting.

    Raises
    ------
    TraceError
        ``<where>: not valid JSON (...)``, naming the file and line given in ``where``.
    """
    if ("[[" in line or "{" in line[1:]) and _depth(line) > MAX_JSON_DEPTH:
        raise TraceError(f"{where}: not valid JSON (nested deeper than {MAX_JSON_DEPTH} levels)")
    try:
        return json.loads(line, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not valid JSON ({exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # _bounded_int, or nesting past the recursion limit
        raise TraceError(f"{where}: not valid JSON ({exc})") from None


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A CSV file read as text columns, with typed, line-checked accessors.

    Use :func:`read_csv` to build one. Row ``i`` (0-based) is line ``i + 2`` of the file.
    """

    path: Path
    header: tuple[str, ...]
    frame: Any  # pandas.DataFrame of str

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def name(self) -> str:
        """The file name used in messages."""
        return self.path.name

    def has(self, col: str) -> bool:
        """Whether the file has column ``col``."""
        return col in self.frame.columns

    @staticmethod
    def line(row: int) -> int:
        """1-based line number of 0-based data row ``row``."""
        return int(row) + 2

    def error(self, row: int, col: str, msg: str) -> TraceError:
        """A :class:`TraceError` for one bad value."""
        return TraceError(f"{self.name}:{self.line(row)}: {col}: {msg}")

    def text(self, col: str) -> np.ndarray:
        """Column ``col`` as an object array of stripped strings ('' when empty)."""
        return self.frame[col].to_numpy(dtype=object)

    def is_empty(self, col: str) -> np.ndarray:
        """Boolean array: is the cell empty?"""
        return (self.frame[col] == "").to_numpy()

    def floats(self, col: str, *, allow_empty: bool = False, min_value: float | None = None,
               _what: str = "a number") -> np.ndarray:
        """Column ``col`` parsed as finite float64 (NaN for empty cells when ``allow_empty``)."""
        import pandas as pd

        raw = self.frame[col]
        empty = (raw == "").to_numpy()
        vals = np.array(pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
        bad = ~np.isfinite(vals) & (~empty if allow_empty else True)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "empty" if empty[i] else f"not {_what} ({raw.iat[i]!r})"
            raise self.error(i, col, what)
        if allow_empty:
            vals[empty] = np.nan
        if min_value is not None:
            low = vals < min_value
            if low.any():
                i = int(np.flatnonzero(low)[0])
                raise self.error(i, col, f"must be >= {min_value:g}, got {raw.iat[i]!r}")
        return vals

    def ints(self, col: str, *, min_value: int | None = None, max_value: int | None = None) -> np.ndarray:
        """Column ``col`` parsed as int64 (no empty cells; ``3.0`` is accepted as 3)."""
        raw = self.frame[col]
        vals = self.floats(col, _what="an integer")
        frac = (vals != np.round(vals)) | (np.abs(vals) > 2.0**53)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise self.error(i, col, f"not an integer ({raw.iat[i]!r})")
        out = vals.astype(np.int64)
        low = out < min_value if min_value is not None else None
        high = out > max_value if max_value is not None else None
        for bad, word, limit in ((low, ">=", min_value), (high, "<=", max_value)):
            if bad is not None and bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise self.error(i, col, f"must be {word} {limit}, got {raw.iat[i]!r}")
        return out

    def choices(self, col: str, allowed: Sequence[str], *, allow_empty: bool = False) -> np.ndarray:
        """Column ``col`` as strings, each checked against ``allowed``."""
        vals = self.text(col)
        ok = np.isin(vals, list(allowed) + ([""] if allow_empty else []))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise self.error(i, col, f"unknown value {vals[i]!r} (expected one of {', '.join(allowed)})")
        return vals


def read_csv(path: PathLike, required: Sequence[str], optional: Sequence[str] = ()) -> CsvTable:
    """Read a (possibly gzipped) CSV with a header row as text columns.

    Parameters
    ----------
    path : path-like
    required : sequence of str
        Columns that must be present (else ``"<file>: missing column(s) a, b; found: ..."``).
    optional : sequence of str
        Columns read when present.

    Blank lines count as (empty) rows so that line numbers stay exact; trailing blank lines
    are dropped. Extra columns are ignored.
    """
    import pandas as pd

    p = check_file(path)
    try:
        frame = pd.read_csv(p, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                            compression="infer", encoding="utf-8-sig", skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise TraceError(f"{p.name}: empty file (no header row)") from None
    except pd.errors.ParserError as exc:
        raise TraceError(f"{p.name}: not a well-formed CSV ({str(exc).strip()})") from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise TraceError(f"{p.name}: cannot read as text ({exc})") from None
    header = tuple(str(c).strip() for c in frame.columns)
    frame.columns = list(header)
    missing = [c for c in required if c not in header]
    if missing:
        raise TraceError(f"{p.name}: missing column(s) {', '.join(missing)}; found: {', '.join(header)}")
    keep = [c for c in (*required, *optional) if c in header]
    frame = frame[keep].fillna("")
    for c in keep:
        frame[c] = frame[c].astype(str).str.strip()
    nonblank = (frame != "").any(axis=1).to_numpy()
    if len(frame) and not nonblank[-1]:  # drop trailing blank rows only
        last = int(np.flatnonzero(nonblank)[-1]) + 1 if nonblank.any() else 0
        frame = frame.iloc[:last]
    return CsvTable(path=p, header=header, frame=frame.reset_index(drop=True))


def describe(values: Iterable[float] | np.ndarray, digits: int | None = None) -> dict[str, float | int]:
    """``count, mean, p50, p90, p99, min, max`` of ``values`` (NumPy linear percentiles).

    With ``digits`` the floats are rounded. An empty input gives ``{"count": 0}``.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    out: dict[str, float | int] = {"count": int(v.size), "mean": float(v.mean()), "p50": float(p50),
                                   "p90": float(p90), "p99": float(p99), "min": float(v.min()),
                                   "max": float(v.max())}
    if digits is not None:
        out = {k: (round(x, digits) if isinstance(x, float) else x) for k, x in out.items()}
    return out


def count_values(values: Iterable[Any] | np.ndarray, top: int | None = None) -> dict[str, int]:
    """Counts per distinct value as ``{str(value): count}``, most common first (ties by value)."""
    import pandas as pd

    counts = pd.Series(np.asarray(values, dtype=object)).value_counts(sort=False)
    items = sorted(((str(k), int(c)) for k, c in counts.items()), key=lambda kc: (-kc[1], kc[0]))
    return dict(items[:top] if top is not None else items)
