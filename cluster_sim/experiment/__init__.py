"""Experiments: ``simulate(cfg) -> Result``, ``compare``, ``check``, run directories, training estimates.

Sweeps: :mod:`.sweep` (the function is ``cluster_sim.sweep``; it is not re-exported here, so
``cluster_sim.experiment.sweep`` stays the module).
"""

from .checks import check
from .cluster import Cluster, load_cluster
from .comparison import compare
from .outdir import check_out_dir
from .run import HEADLINE_KEYS, PlotAccessor, Result, scaling_curves, simulate
from .store import save_run
from .sweep import SweepResult
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
    "Cluster",
    "JobEstimate",
    "PlotAccessor",
    "Result",
    "ScalingSpec",
    "SweepResult",
    "check",
    "check_out_dir",
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
