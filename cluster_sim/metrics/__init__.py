"""Training and cluster metrics: DataFrames and the summary from an engine run, plus the
one-call entry points :func:`run_training` and :func:`compare`.

>>> from cluster_sim.metrics import run_training
>>> from cluster_sim.workload.generators import uniform_jobs
>>> jobs = uniform_jobs(200, rate_per_s=0.5, mean_duration_s=10.0, rng=1)
>>> res = run_training(cluster=[("h100-sxm", 8, 2)], jobs=jobs, seed=1)
>>> res.summary["training.jobs.finished"], res.summary["utilization.allocated"] < 1
(200, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from ..config import ExperimentConfig, load_config
from ..engine.cluster.failures import FailureModel
from ..engine.cluster.state import ClusterLayout, layout_from_node_groups, layout_from_topology
from ..engine.simulation import RunRecord, Simulation, build_layout, build_simulation
from ..policies import registry
from .costs import DEFAULT_PUE
from .recorder import jobs_frame, segments_frame, timeline_frame
from .summary import jain, percentiles, summarize_training
from .trace_export import chrome_trace, write_chrome_trace

__all__ = ["DEFAULT_PUE", "TrainingResult", "chrome_trace", "compare", "jain", "jobs_frame", "percentiles", "result_from_record",
           "run_training", "segments_frame", "summarize_training", "timeline_frame", "write_chrome_trace"]


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """A training/cluster run: ``summary`` (flat dict), ``jobs``, ``timeline``, ``segments``
    (DataFrames), the raw ``record``, and ``trace`` (Perfetto/Chrome JSON document, built on use)."""

    summary: dict[str, Any]
    jobs: pd.DataFrame
    timeline: pd.DataFrame
    segments: pd.DataFrame
    record: RunRecord = field(repr=False)

    @property
    def notes(self) -> tuple[str, ...]:
        """Warnings about the run's inputs (card types the catalog lacks, missing prices)."""
        return tuple(self.record.meta.get("type_notes", ()))

    @cached_property
    def trace(self) -> dict[str, Any]:
        """Chrome/Perfetto trace events of the job spans (capped, see :mod:`.trace_export`)."""
        return chrome_trace(self.segments, self.timeline)


def result_from_record(rec: RunRecord, pue: float = DEFAULT_PUE) -> TrainingResult:
    """Frames and summary of a finished run's record (``pue``: facility / IT power for energy)."""
    jobs, timeline = jobs_frame(rec), timeline_frame(rec)
    ctx = {"card_types": rec.card_types, "capacity_by_type": rec.capacity_by_type,
           "type_peak_flops": rec.type_peak_flops, "t_end_s": rec.t_end_s, "events": rec.events,
           "wall_s": rec.wall_s, "pue": pue,
           **{k: v for k, v in rec.meta.items() if k.startswith(("type_", "cycles"))}}
    return TrainingResult(summarize_training(jobs, timeline, ctx), jobs, timeline, segments_frame(rec), rec)


def _layout(cluster: Any, base_dir: str) -> ClusterLayout:
    if isinstance(cluster, ClusterLayout):
        return cluster
    if hasattr(cluster, "card_type_idx"):
        return layout_from_topology(cluster)
    if isinstance(cluster, (list, tuple)):
        return layout_from_node_groups([tuple(g) for g in cluster])
    return build_layout(cluster, base_dir)


def _policy(family: str, ref: Any) -> Any:
    if isinstance(ref, str) or hasattr(ref, "params"):
        return registry.make(family, ref)
    return ref


def run_training(cfg: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str] | None = None, *,
                 overrides: Mapping[str, Any] | None = None, until: float | None = None,
                 simulation: Simulation | None = None, cluster: Any = None, jobs: Any = None,
                 admission: Any = "accept_all", ordering: Any = "fifo", placement: Any = "packed",
                 preemption: Any = "none", backfill: bool = False, failures: FailureModel | None = None,
                 seed: int = 0, horizon_s: float | None = None, base_dir: str = ".",
                 pue: float | None = None, **kwargs: Any) -> TrainingResult:
    """Run the cluster engine on training jobs and collect frames and the summary.

    Give either an experiment (``cfg``: path, mapping or ExperimentConfig, plus ``overrides``),
    a built :class:`~cluster_sim.engine.simulation.Simulation`, or the pieces: ``cluster`` (a
    ClusterLayout, a Topology, a topology path / builder dict, or node groups
    ``[(card_type, cards_per_node, nodes), ...]``), ``jobs`` (a JobTable), the four policies (registry
    names, PolicyRefs or objects), ``backfill``, ``failures``, ``seed`` and ``horizon_s``. Extra
    keyword arguments go to :class:`Simulation` (``timeline_step_s``, ``throughput``...) or, for
    ``backfill_depth``, ``preempt_overhead_s``, ``max_segments``, to the training engine.
    ``pue`` (facility / IT power) scales the energy; default: the experiment's ``inference.pue``,
    else :data:`~cluster_sim.metrics.costs.DEFAULT_PUE` (1.2).
    """
    if simulation is not None:
        sim = simulation
    elif cfg is not None:
        if not isinstance(cfg, ExperimentConfig) or overrides:
            # only the fields the user set: defaults stay defaults, so scheduler presets still apply
            src = cfg.model_dump(exclude_unset=True) if isinstance(cfg, ExperimentConfig) else cfg
            cfg = load_config(src, overrides)
        sim = build_simulation(cfg)
        if pue is None and cfg.inference is not None:
            pue = cfg.inference.pue
    else:
        if cluster is None or jobs is None:
            raise TypeError("run_training: give cfg, simulation, or cluster and jobs")
        eng_keys = ("backfill_depth", "preempt_overhead_s", "max_segments", "job_speed")
        eng_kw = {k: kwargs.pop(k) for k in eng_keys if k in kwargs}
        sim = Simulation(_layout(cluster, base_dir), seed=seed, horizon_s=horizon_s, **kwargs)
        sim.add_training(jobs, admission=_policy("admission", admission), ordering=_policy("ordering", ordering),
                         placement=_policy("placement", placement), preemption=_policy("preemption", preemption),
                         backfill=backfill, failures=failures, **eng_kw)
    sim.run(until)
    return result_from_record(sim.collect(), DEFAULT_PUE if pue is None else pue)


def compare(cfg: ExperimentConfig | Mapping[str, Any] | str | os.PathLike[str], factor: str,
            values: Sequence[Any], *, seeds: Sequence[int] | None = None,
            overrides: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Run ``cfg`` once per value of the dotted ``factor`` (and per seed); one summary row each.

    >>> compare("workloads/placement_oversubscribed.yaml", "policy.training.placement",
    ...         ["spread", "topology_aware"])   # doctest: +SKIP
    """
    base = cfg if isinstance(cfg, ExperimentConfig) else load_config(cfg, overrides)
    rows = []
    for v in values:
        for sd in (seeds if seeds is not None else [base.seed]):
            res = run_training(base, overrides={factor: v, "seed": sd})
            rows.append({factor: v if isinstance(v, str) else repr(v), "seed": sd, **res.summary})
    return pd.DataFrame(rows)
