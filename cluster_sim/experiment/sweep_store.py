"""The sweep results store: one Parquet file per finished run, written atomically.

Layout of a store directory::

    STORE/
      runs/<key>.parquet     one row per finished run (ok or failed), named by its run key
      runs/.<key>.tmp-<pid>  a run being written (ignored by the reader, removed on the next sweep)

A run is written to a temporary name in ``runs/``, flushed to disk (``fsync``) and renamed to
``<key>.parquet`` with :func:`os.replace`, which is atomic on POSIX file systems: a reader sees
the whole file or no file, whatever happens to the writer (SIGINT, SIGKILL, a full disk). Only
the sweep's client process writes, one file per run, so two writers never race on one name.
:func:`read_store` concatenates the files.

The row (:data:`COLUMNS`): ``key``, ``seed``, ``factors`` (the cell, JSON ``{path: value}``),
``status`` (``"ok"`` or ``"error"``), ``error`` (the failure's text, ``""`` when ok),
``summary`` (the run's summary, JSON with Python's ``NaN``/``Infinity`` tokens so it reads back exactly), ``notes`` (JSON list) and ``wall_s`` (the
run's wall clock). The summary is a JSON column rather than one column per key so a store holds
runs whose summaries have different keys (a serving cell and a training cell) and reads back
exactly what was written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ClusterSimError
from .store import to_jsonable

__all__ = ["COLUMNS", "RunRecord", "ResultStore", "read_store"]

COLUMNS = ("key", "seed", "factors", "status", "error", "summary", "notes", "wall_s")

RunRecord = dict[str, Any]
"""One run as the sweep keeps it: :data:`COLUMNS`, with ``factors``, ``summary`` and ``notes``
decoded (a dict, a dict and a list)."""


def _plain(x: Any) -> Any:
    """JSON-ready data that keeps NaN and inf (Python's ``json`` writes and reads them), so a
    summary reads back exactly: numpy scalars to Python, tuples to lists, keys to str."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _encode(rec: Mapping[str, Any]) -> pd.DataFrame:
    row = {"key": str(rec["key"]), "seed": int(rec["seed"]),
           "factors": json.dumps(to_jsonable(rec["factors"]), sort_keys=True),
           "status": str(rec["status"]), "error": str(rec.get("error", "")),
           "summary": json.dumps(_plain(rec.get("summary", {})), default=str),
           "notes": json.dumps(list(rec.get("notes", []))), "wall_s": float(rec.get("wall_s", 0.0))}
    return pd.DataFrame([row], columns=list(COLUMNS))


def _decode(row: Mapping[str, Any]) -> RunRecord:
    return {"key": row["key"], "seed": int(row["seed"]), "factors": json.loads(row["factors"]),
            "status": row["status"], "error": row["error"], "summary": json.loads(row["summary"]),
            "notes": json.loads(row["notes"]), "wall_s": float(row["wall_s"])}


class ResultStore:
    """A results store directory (created on first use).

    Parameters
    ----------
    path : path
        The store directory; an existing directory must be a store (have ``runs/`` or be empty).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.runs = self.path / "runs"
        if self.path.exists() and not self.path.is_dir():
            raise ClusterSimError(f"--store {self.path}: not a directory")
        if self.path.is_dir() and not self.runs.is_dir() and any(self.path.iterdir()):
            raise ClusterSimError(f"--store {self.path}: not a sweep store (no runs/ folder) and not empty; "
                                  "give a new or empty directory")

    def open(self) -> ResultStore:
        """Create ``runs/`` and remove temporary files a killed writer left behind."""
        self.runs.mkdir(parents=True, exist_ok=True)
        for tmp in self.runs.glob(".*.tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self

    def keys(self) -> set[str]:
        """The keys of the stored runs."""
        if not self.runs.is_dir():
            return set()
        return {p.stem for p in self.runs.glob("*.parquet") if not p.name.startswith(".")}

    def write(self, rec: Mapping[str, Any]) -> Path:
        """Store one run atomically (temp file, fsync, rename); replaces a stored run of that key."""
        final = self.runs / f"{rec['key']}.parquet"
        tmp = self.runs / f".{rec['key']}.tmp-{os.getpid()}"
        try:
            _encode(rec).to_parquet(tmp, index=False)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return final

    def read(self, keys: set[str] | None = None) -> dict[str, RunRecord]:
        """The stored runs (all, or those of ``keys``) by key."""
        out: dict[str, RunRecord] = {}
        for key in sorted(self.keys() if keys is None else self.keys() & set(keys)):
            path = self.runs / f"{key}.parquet"
            try:
                df = pd.read_parquet(path)
            except Exception as exc:  # not a silent fallback: a file we cannot read is an error
                raise ClusterSimError(f"{path}: unreadable store entry ({type(exc).__name__}: {exc}); "
                                      "delete it to re-run that run") from exc
            if list(df.columns) != list(COLUMNS) or len(df) != 1 or df["key"].iloc[0] != key:
                raise ClusterSimError(f"{path}: not a sweep store entry (columns {list(df.columns)})")
            out[key] = _decode({str(k): v for k, v in df.iloc[0].to_dict().items()})
        return out


def read_store(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Every run of a store as one table (:data:`COLUMNS`, JSON columns as text), sorted by key.

    >>> read_store("runs/sweep-store")  # doctest: +SKIP
    """
    store = ResultStore(path)
    if not store.runs.is_dir():
        raise ClusterSimError(f"{path}: not a sweep store (no runs/ folder)")
    frames = [pd.read_parquet(store.runs / f"{k}.parquet") for k in sorted(store.keys())]
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)
