"""Experiments: ``simulate(cfg) -> Result``, ``compare``, ``check``, the run directory, training estimates."""

from .run import (
    HEADLINE_KEYS,
    PlotAccessor,
    Result,
    check,
    compare,
    load_cluster,
    scaling_curves,
    simulate,
)
from .store import save_run
from .training_jobs import (
    JobEstimate,
    ScalingSpec,
    estimate_job,
    estimate_jobs,
    job_plan,
    scaling_for_job,
)

__all__ = [
    "HEADLINE_KEYS",
    "JobEstimate",
    "PlotAccessor",
    "Result",
    "ScalingSpec",
    "check",
    "compare",
    "estimate_job",
    "estimate_jobs",
    "job_plan",
    "load_cluster",
    "save_run",
    "scaling_curves",
    "scaling_for_job",
    "simulate",
]
