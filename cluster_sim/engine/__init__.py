"""The discrete-event engines: the cluster (training) engine and the serving engine.

Cluster engine (docs/engine.md): :class:`Simulation` owns a run (SimPy environment, RNG streams,
cluster state, time-weighted levels, subsystems); :func:`build_simulation` builds one from an
experiment config; ``cluster_sim.metrics.run_training`` runs it and returns DataFrames and the
summary.
"""

from .cluster.failures import FailureModel
from .cluster.speed import LeafContention, SpeedModel, throughput_matrix
from .cluster.state import (
           ClusterLayout,
           ClusterState,
           layout_from_node_groups,
           layout_from_topology,
)
from .cluster.training import TrainingEngine
from .simulation import Levels, RunRecord, Simulation, build_jobs, build_layout, build_simulation

__all__ = ["ClusterLayout", "ClusterState", "FailureModel", "LeafContention", "Levels", "RunRecord",
           "Simulation", "SpeedModel", "TrainingEngine", "build_jobs", "build_layout", "build_simulation",
           "layout_from_node_groups", "layout_from_topology", "throughput_matrix"]
