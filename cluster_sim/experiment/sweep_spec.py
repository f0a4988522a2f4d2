"""The sweep file (``cluster-sim sweep SWEEP.yaml``): which experiment, which factors, how many seeds.

::

    experiment: schedulers.yaml        # the experiment file, relative to this file
    set: {duration: 12h}               # optional: --set overrides for every run
    factors:                           # dotted config path -> list of values (the grid)
      policy.training.scheduler: [fifo, sjf]
      policy.training.placement: [packed, topology_aware]
    seeds: 3                           # a count N (seeds 0..N-1) or a list
    metrics: [training.jobs.mfu, training.jct_s.p99]   # optional
    ci_target: 0.05                    # optional adaptive replication (±5% of the mean)
    max_seeds: 12                      # optional cap of ci_target

Every field is checked here (one ``ConfigError`` naming the file and the field) and every run's
config by :func:`~cluster_sim.experiment.sweep.sweep` before any run starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import read_mapping
from ..errors import ConfigError

__all__ = ["SWEEP_FIELDS", "SweepSpec", "is_sweep_file", "load_sweep_file", "spec_experiment"]

SWEEP_FIELDS = ("experiment", "set", "factors", "seeds", "metrics", "ci_target", "max_seeds")


@dataclass
class SweepSpec:
    """A sweep file's content, ``experiment`` resolved against the file's folder."""

    experiment: str
    factors: dict[str, list[Any]]
    overrides: dict[str, Any] = field(default_factory=dict)
    seeds: int | list[int] = 1
    metrics: list[str] = field(default_factory=list)
    ci_target: float | None = None
    max_seeds: int | None = None


def is_sweep_file(data: Mapping[str, Any]) -> bool:
    """A mapping is a sweep file when it has an ``experiment:`` key (no experiment field has that name)."""
    return "experiment" in data


def spec_experiment(src: Path, data: Mapping[str, Any], fields: Sequence[str]) -> Path:
    """The experiment file a sweep or plan file names (relative to the file), after checking the
    file has only ``fields``: one :class:`ConfigError` naming the file and the field otherwise."""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{src}: {unknown[0]}: unknown field; known: {', '.join(fields)}")
    exp = data.get("experiment")
    if not isinstance(exp, str) or not exp.strip():
        raise ConfigError(f"{src}: experiment: expected the experiment file's path, got {exp!r}")
    exp_path = Path(exp) if Path(exp).is_absolute() else src.parent / exp
    if not exp_path.is_file():
        raise ConfigError(f"{src}: experiment: no file {exp_path}")
    return exp_path


def load_sweep_file(path: str | os.PathLike[str], data: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read and check a sweep file (``data``: its already parsed mapping)."""
    src = Path(path)
    data = read_mapping(src) if data is None else data
    exp_path = spec_experiment(src, data, SWEEP_FIELDS)
    factors = data.get("factors", {})
    if not isinstance(factors, Mapping):
        raise ConfigError(f"{src}: factors: expected a mapping path -> [values], got {factors!r}")
    for k, v in factors.items():
        if not isinstance(v, list):
            raise ConfigError(f"{src}: factors.{k}: expected a list of values, got {v!r}")
    overrides = data.get("set", {})
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{src}: set: expected a mapping path -> value, got {overrides!r}")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ConfigError(f"{src}: seeds: expected a count N >= 1 or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int) and seeds <= 0:
        raise ConfigError(f"{src}: seeds: {seeds}; give a count >= 1 (seeds 0..N-1) or a list")
    metrics = data.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{src}: metrics: expected a list of summary keys, got {metrics!r}")
    ci = data.get("ci_target")
    if ci is not None and (isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1):
        raise ConfigError(f"{src}: ci_target: expected a fraction in (0, 1), e.g. 0.05, got {ci!r}")
    cap = data.get("max_seeds")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ConfigError(f"{src}: max_seeds: expected an integer >= 1, got {cap!r}")
    return SweepSpec(experiment=str(exp_path), factors={str(k): list(v) for k, v in factors.items()},
                     overrides={str(k): v for k, v in overrides.items()}, seeds=seeds,
                     metrics=list(metrics), ci_target=None if ci is None else float(ci), max_seeds=cap)
