"""Training and cluster metrics: DataFrames and the summary from an engine run's record.

:func:`result_from_record` turns a :class:`~cluster_sim.engine.simulation.RunRecord` into a
:class:`TrainingResult`; the run drivers that build and run the engine (``run_training``,
``run_serving``, ``compare``) are in :mod:`cluster_sim.experiment.drivers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from ..engine.simulation import RunRecord
from .costs import DEFAULT_PUE
from .failures import failure_summary
from .offline import summarize_offline
from .recorder import jobs_frame, segments_frame, timeline_frame
from .reliability import reliability_summary
from .stragglers import add_slowed_column, summarize_stragglers
from .summary import jain, percentiles, summarize_training
from .trace_export import chrome_trace, write_chrome_trace

__all__ = ["DEFAULT_PUE", "TrainingResult", "chrome_trace", "jain", "jobs_frame", "percentiles", "result_from_record",
           "segments_frame", "summarize_training", "timeline_frame", "write_chrome_trace"]


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
        """Warnings about the run's inputs (card types the catalog lacks, missing prices, job speeds
        from the assumed fallback or a smaller model of a size class)."""
        meta = self.record.meta
        return tuple(meta.get("type_notes", ())) + tuple(meta.get("speed_notes", ())) + tuple(meta.get("pool_notes", ()))

    @cached_property
    def trace(self) -> dict[str, Any]:
        """Chrome/Perfetto trace events of the job spans, named by job (capped, see :mod:`.trace_export`)."""
        return chrome_trace(self.segments, self.timeline, jobs=self.jobs)


def result_from_record(rec: RunRecord, pue: float = DEFAULT_PUE) -> TrainingResult:
    """Frames and summary of a finished run's record (``pue``: facility / IT power for energy)."""
    jobs, timeline = jobs_frame(rec), timeline_frame(rec)
    ctx = {"card_types": rec.card_types, "capacity_by_type": rec.capacity_by_type,
           "type_peak_flops": rec.type_peak_flops, "t_end_s": rec.t_end_s, "events": rec.events,
           "wall_s": rec.wall_s, "pue": pue,
           **{k: v for k, v in rec.meta.items() if k.startswith(("type_", "cycles"))}}
    summary = summarize_training(jobs, timeline, ctx)
    if rec.meta.get("offline_jobs"):
        summary.update(summarize_offline(jobs, rec.meta["offline_jobs"], rec.t_end_s))
    if rec.meta.get("reliability"):
        summary.update(reliability_summary(jobs, rec.t_end_s))
    if rec.meta.get("stragglers"):
        summary.update(summarize_stragglers(rec.meta["stragglers"]))
        add_slowed_column(jobs, rec.meta["stragglers"])
    if rec.meta.get("failures"):   # failure classes (docs/faults.md)
        summary.update(failure_summary(rec.meta["failures"]))
    return TrainingResult(summary, jobs, timeline, segments_frame(rec), rec)
