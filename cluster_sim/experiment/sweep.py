"""``sweep``: the full grid of several factors x seeds, on Dask, with a resumable results store.

A cell is one combination of factor values (the grid in the order the factors are given, the
first factor slowest, like nested loops); a run is a cell with a seed. Each run's config is the
variant exactly as :func:`~cluster_sim.experiment.comparison.compare` builds it (and
``cluster-sim run FILE --set seed=S --set A=x --set B=1`` loads it), and its key is
:func:`run_key`: a hash of that resolved config (which holds the seed) and the seed. A run whose
key is in the store is not run again.

Runs go to a ``distributed`` cluster: a ``LocalCluster`` of ``workers`` processes with one
thread each (default: one per core) on the loopback interface, or an existing cluster at
``scheduler="tcp://HOST:PORT"`` (its workers need ``cluster_sim`` and the experiment's files).
``workers=0`` runs them one after another in this process, without Dask. Each finished run is
written to the store as it completes (:mod:`~cluster_sim.experiment.sweep_store`); a failing run
is stored with its error text and the others go on. The table is in grid order x seed whatever
order the runs finished in.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..config import ExperimentConfig
from ..errors import ClusterSimError, ConfigError
from .comparison import Source, _load_variant, variant_source
from .run import HEADLINE_KEYS, simulate
from .store import to_jsonable
from .sweep_stats import cell_stats, within_target
from .sweep_store import ResultStore, RunRecord

__all__ = ["CONNECT_TIMEOUT_S", "SweepResult", "cell_label", "expand_grid", "run_key", "sweep"]

CONNECT_TIMEOUT_S = 5.0
"""How long to try an existing scheduler (``scheduler=``) before giving up (a documented knob:
``sweep(..., connect_timeout=...)``)."""

Progress = Callable[[int, int, int], None]
"""``progress(done, total, failed)``, called after each finished run (and once at the start)."""


def expand_grid(factors: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The cells of ``factors`` in nested-loop order (first factor slowest).

    >>> expand_grid({"a": ["x", "y"], "b": [1, 2]})
    [{'a': 'x', 'b': 1}, {'a': 'x', 'b': 2}, {'a': 'y', 'b': 1}, {'a': 'y', 'b': 2}]
    """
    if not factors:
        raise ConfigError("factors: give at least one factor (an empty grid has no run)")
    for path, values in factors.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ConfigError(f"factors.{path}: expected a list of values, got {values!r}")
        if len(values) == 0:
            raise ConfigError(f"factors.{path}: no value (an empty grid has no run)")
        again = next((v for i, v in enumerate(values) if v in list(values)[:i]), None)
        if again is not None:
            raise ConfigError(f"factors.{path}: value {again!r} is given twice")
    names = list(factors)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*factors.values())]


def cell_label(cell: Mapping[str, Any]) -> str:
    """``{"a": "x", "b": 1}`` -> ``"a=x, b=1"``."""
    return ", ".join(f"{k}={v}" for k, v in cell.items())


def run_key(cfg: ExperimentConfig, seed: int) -> str:
    """16 hex digits of SHA-256 over the resolved config (as ``config.resolved.yaml`` has it: every
    field, the machine-specific ``base_dir`` left out) and the seed."""
    body = to_jsonable(cfg.model_dump(mode="json", exclude={"base_dir"}))
    text = json.dumps({"config": body, "seed": int(seed)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_seeds(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ConfigError(f"seeds: {seeds!r} is not a seed count or list")
    if isinstance(seeds, int):
        if seeds <= 0:
            raise ConfigError(f"seeds: {seeds} runs per cell; give a count >= 1 (seeds 0..N-1) or a list")
        return list(range(seeds))
    out = list(seeds)
    if not out:
        raise ConfigError("seeds: give at least one seed")
    for s in out:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds: {s!r} is not a seed (an integer >= 0)")
    dup = next((s for i, s in enumerate(out) if s in out[:i]), None)
    if dup is not None:
        raise ConfigError(f"seeds: seed {dup} is given twice")
    return out


def run_one(cfg: ExperimentConfig) -> dict[str, Any]:
    """One run, as a worker does it: ``simulate(cfg)``; a failure becomes its error text.

    Catching every exception is deliberate and not a fallback: the failure is stored with its
    type and message, counted, and reported in the table and the output, and the other runs go on.
    """
    t0 = time.perf_counter()
    try:
        res = simulate(cfg)
    except Exception as exc:  # stored with its text (see above), never hidden
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "summary": {}, "notes": [],
                "wall_s": time.perf_counter() - t0}
    return {"status": "ok", "error": "", "summary": dict(res.summary), "notes": list(res.notes),
            "wall_s": time.perf_counter() - t0}


@dataclass
class _Run:
    cell: int
    seed: int
    cfg: ExperimentConfig
    key: str
    factors: dict[str, Any]


@dataclass
class SweepResult:
    """What :func:`sweep` returns.

    Attributes
    ----------
    runs : DataFrame
        One row per run in grid order x seed: the factor columns, ``cell``, ``seed``, ``key``,
        ``status``, ``error``, then the numeric summary keys (headline keys first).
    cells : DataFrame
        :func:`~cluster_sim.experiment.sweep_stats.cell_stats` of ``metrics`` per cell.
    factors, metrics : list of str
    executed, skipped, failed : int
        Runs run by this call, runs found in the store, failed runs in the table.
    capped : list of str
        With ``ci_target``: the cells that reached ``max_seeds`` without meeting the target.
    notes : dict
        Each run's notes, ``{"<cell>, seed s": [...]}``.
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    factors: list[str]
    metrics: list[str]
    executed: int = 0
    skipped: int = 0
    failed: int = 0
    capped: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)


def sweep(cfg: Source, factors: Mapping[str, Sequence[Any]], seeds: int | Sequence[int] = 1, *,
          overrides: Mapping[str, Any] | None = None, metrics: Sequence[str] | None = None,
          scheduler: str | None = None, workers: int | None = None,
          store: str | os.PathLike[str] | None = None, ci_target: float | None = None,
          max_seeds: int | None = None, connect_timeout: float = CONNECT_TIMEOUT_S,
          progress: Progress | None = None) -> SweepResult:
    """Run every cell of the ``factors`` grid once per seed and summarise the cells.

    Parameters
    ----------
    cfg : ExperimentConfig, path or mapping
        The experiment, re-read per run exactly as ``run --set`` reads it.
    factors : mapping
        Dotted config path -> list of values (strings parsed as ``--set`` values are).
    seeds : int or sequence of int
        A count N (seeds 0..N-1) or the seeds; with ``ci_target``, the first batch.
    overrides : mapping, optional
        ``--set`` overrides applied to every run (before the seed and the factors).
    metrics : sequence of str, optional
        Summary keys of the per-cell statistics (default: the headline keys, ``sim.*`` aside).
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running Dask scheduler; default a ``LocalCluster``.
    workers : int, optional
        Worker processes of the ``LocalCluster`` (default one per core); 0 runs in this process.
    store : path, optional
        The results store directory: every finished run is written there as it completes, and
        runs already there are not run again. Without it nothing is kept between calls.
    ci_target : float, optional
        Adaptive replication: add a batch of ``len(seeds)`` seeds to every cell whose interval
        half-width of some metric exceeds ``ci_target * |mean|``, until none does or the cell has
        ``max_seeds`` seeds.
    max_seeds : int, optional
        The cap of ``ci_target`` (default 4 batches).
    connect_timeout : float
        Seconds to reach ``scheduler`` before a ``ClusterSimError``.
    progress : callable, optional
        ``progress(done, total, failed)``.

    Raises
    ------
    ConfigError
        Before any run: no factor, an empty value list, a path or value that does not validate
        (the run named), a bad seed list, a bad ``ci_target``/``max_seeds``, or a metric that no
        run has (after the first batch; those runs stay in the store).
    ClusterSimError
        The scheduler cannot be reached within ``connect_timeout``.

    >>> res = sweep("workloads/schedulers.yaml", {"policy.training.scheduler": ["fifo", "sjf"]},
    ...             seeds=3, overrides={"duration": "12h"}, store="runs/sched")  # doctest: +SKIP
    >>> res.cells[["cell", "metric", "mean", "ci95"]]  # doctest: +SKIP
    """
    cells = expand_grid(factors)
    seed_list = _check_seeds(seeds)
    overrides = dict(overrides or {})
    if "seed" in factors or "seed" in overrides:
        raise ConfigError("seeds: the seed is set by seeds=; do not give it as a factor or an override")
    if ci_target is not None and not (isinstance(ci_target, (int, float)) and 0 < ci_target < 1):
        raise ConfigError(f"--ci-target {ci_target!r}: expected a fraction in (0, 1), e.g. 0.05 for ±5%")
    cap = max_seeds if max_seeds is not None else 4 * len(seed_list)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < len(seed_list):
        raise ConfigError(f"--max-seeds {max_seeds!r}: expected an integer >= the first batch ({len(seed_list)})")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"--workers {workers!r}: expected an integer >= 0")
    source = variant_source(cfg)
    names = list(factors)
    res_store = ResultStore(store).open() if store is not None else None

    def build(cell: int, seed: int) -> _Run:
        c = _load_cell(source, overrides, cells[cell], seed)
        return _Run(cell, seed, c, run_key(c, seed), dict(cells[cell]))

    batch = [build(i, s) for i in range(len(cells)) for s in seed_list]  # all validated before any run
    if ci_target is not None and not metrics:
        raise ConfigError("--ci-target: name the metrics it applies to (--metric KEY, or metrics: in the sweep file)")
    records: dict[str, RunRecord] = {}
    counts = {"executed": 0, "skipped": 0}
    all_runs: list[_Run] = []
    with _Executor(scheduler, workers, connect_timeout) as ex:
        while batch:
            all_runs.extend(batch)
            _run_batch(batch, ex, res_store, records, counts, progress)
            table = _table(all_runs, records, cells, names)
            chosen = _metrics(table, metrics)
            batch = []
            if ci_target is not None:
                stats = cell_stats(table, names, chosen)
                for i in _unmet(stats, cells, ci_target):
                    have = [r.seed for r in all_runs if r.cell == i]
                    extra = [max(have) + 1 + k for k in range(min(len(seed_list), cap - len(have)))]
                    batch.extend(build(i, s) for s in extra)
    stats = cell_stats(table, names, chosen)
    capped = [cell_label(cells[i]) for i in (_unmet(stats, cells, ci_target) if ci_target is not None else [])]
    notes = {f"{cell_label(cells[r.cell])}, seed {r.seed}": records[r.key]["notes"] for r in all_runs}
    return SweepResult(runs=table, cells=stats, factors=names, metrics=chosen, executed=counts["executed"],
                       skipped=counts["skipped"], failed=int((table["status"] != "ok").sum()), capped=capped,
                       notes=notes)


def _load_cell(source: Any, overrides: Mapping[str, Any], cell: Mapping[str, Any], seed: int) -> ExperimentConfig:
    """The variant of one run: ``--set`` overrides, then the seed, then the factors in order."""
    *rest, (last, value) = list(cell.items())
    where = cell_label(cell)
    try:
        return _load_variant(source, {**overrides, **dict(rest)}, last, value, seed)
    except ClusterSimError as exc:  # name the whole cell, not only the last factor
        msg = str(exc).split(": ", 1)[1] if str(exc).startswith("--factor ") else str(exc)
        raise type(exc)(f"cell {where}, seed {seed}: {msg}") from None


def _unmet(stats: pd.DataFrame, cells: list[dict[str, Any]], target: float | None) -> list[int]:
    if target is None:
        return []
    labels = [cell_label(c) for c in cells]
    bad = {c for c, mean, half in zip(stats["cell"], stats["mean"].to_numpy(dtype=float),
                                      stats["ci95"].to_numpy(dtype=float), strict=True)
           if not within_target(float(mean), float(half), target)}
    return [i for i, lab in enumerate(labels) if lab in bad]


def _metrics(table: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    have = [c for c in table.columns if c not in ("cell", "seed", "key", "status", "error")
            and pd.api.types.is_numeric_dtype(table[c])]
    if not metrics:
        return [k for k in HEADLINE_KEYS if k in have and not k.startswith("sim.")]
    for m in metrics:
        if m not in have:
            near = difflib.get_close_matches(m, have, n=3)
            hint = f"; nearest: {', '.join(near)}" if near else f"; known keys include: {', '.join(have[:8])}"
            raise ConfigError(f"--metric {m}: no run's summary has this key{hint}")
    return list(metrics)


def _run_batch(batch: list[_Run], ex: _Executor, res_store: ResultStore | None, records: dict[str, RunRecord],
               counts: dict[str, int], progress: Progress | None) -> None:
    stored = res_store.read({r.key for r in batch}) if res_store is not None else {}
    todo: dict[str, _Run] = {}
    for r in batch:
        if r.key in stored:
            records[r.key] = stored[r.key]
            counts["skipped"] += 1
        elif r.key not in records:
            todo[r.key] = r
    done = sum(1 for r in batch if r.key in records)
    failed = sum(1 for r in batch if r.key in records and records[r.key]["status"] != "ok")
    if progress is not None:
        progress(done, len(batch), failed)
    for key, out in ex.map({k: r.cfg for k, r in todo.items()}):
        r = todo[key]
        rec = {"key": key, "seed": r.seed, "factors": r.factors, **out}
        if res_store is not None:
            res_store.write(rec)
        records[key] = rec
        counts["executed"] += 1
        done += 1
        failed += rec["status"] != "ok"
        if progress is not None:
            progress(done, len(batch), failed)


def _table(runs: list[_Run], records: dict[str, RunRecord], cells: list[dict[str, Any]],
           names: list[str]) -> pd.DataFrame:
    order = sorted(runs, key=lambda r: (r.cell, r.seed))
    rows = []
    for r in order:
        rec = records[r.key]
        rows.append({**cells[r.cell], "cell": cell_label(cells[r.cell]), "seed": r.seed, "key": r.key,
                     "status": rec["status"], "error": rec["error"], **rec["summary"]})
    df = pd.DataFrame(rows)
    lead = [*names, "cell", "seed", "key", "status", "error"]
    numeric = [c for c in df.columns if c not in lead and pd.api.types.is_numeric_dtype(df[c])]
    head = [k for k in HEADLINE_KEYS if k in numeric]
    return df[[*lead, *head, *[c for c in numeric if c not in head]]].reset_index(drop=True)


class _Executor:
    """Runs configs: on Dask (a LocalCluster, or an existing scheduler) or, ``workers=0``, here."""

    def __init__(self, scheduler: str | None, workers: int | None, timeout: float) -> None:
        self.scheduler, self.workers, self.timeout = scheduler, workers, timeout
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self) -> _Executor:
        if self.scheduler is not None:
            self._start()  # an unreachable scheduler fails now, before any run
        return self

    def _start(self) -> None:
        """Connect, or start the LocalCluster: on first use, so a sweep read from the store starts none."""
        if self.client is not None or (self.scheduler is None and self.workers == 0):
            return
        from distributed import Client, LocalCluster

        if self.scheduler is not None:
            if not self.scheduler.startswith(("tcp://", "tls://", "inproc://")):
                raise ConfigError(f"--scheduler {self.scheduler!r}: expected tcp://HOST:PORT")
            try:
                self.client = Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise ClusterSimError(f"--scheduler {self.scheduler}: no Dask scheduler answered within "
                                      f"{self.timeout:g} s ({type(exc).__name__}); start one with "
                                      "`dask scheduler` or leave --scheduler out for local workers") from None
            return
        n = self.workers or os.cpu_count() or 1
        self.cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                    dashboard_address=None, silence_logs=logging.ERROR)
        try:
            self.client = Client(self.cluster)
        except BaseException:
            self.cluster.close()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self.client is not None:
                self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def map(self, cfgs: Mapping[str, ExperimentConfig]) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(key, run_one(cfg))`` per config, in completion order."""
        if cfgs:
            self._start()
        if self.client is None:
            for key, c in cfgs.items():
                yield key, run_one(c)
            return
        from distributed import as_completed

        futures = {self.client.submit(run_one, c, key=f"cluster-sim-run-{key}", pure=False): key
                   for key, c in cfgs.items()}
        for fut in as_completed(list(futures)):
            key = futures[fut]
            try:
                out = fut.result()
            except Exception as exc:  # the worker died (KilledWorker) or could not unpickle: stored as the run's error
                out = {"status": "error", "error": f"{type(exc).__name__}: {exc}", "summary": {}, "notes": [],
                       "wall_s": 0.0}
            fut.release()
            yield key, out
