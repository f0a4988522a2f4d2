"""The discrete-event engines: the cluster (training) engine and the serving engine.

Cluster engine (docs/engine.md): :class:`Simulation` owns a run (SimPy environment, RNG streams,
cluster state, time-weighted levels, subsystems), hosting the training engine
(:mod:`.cluster`) and any other subsystem; :mod:`.serving` is the serving engine. The engines
never see the experiment config: ``cluster_sim.experiment.build`` turns it into their inputs and
``cluster_sim.experiment.drivers`` runs them (``run_training``, ``run_serving``).
"""

from .cluster.failures import FailureModel
from .cluster.speed import LeafContention, SpeedModel
from .cluster.state import (
           ClusterLayout,
           ClusterState,
           layout_from_node_groups,
           layout_from_topology,
)
from .cluster.terms import assumed_throughput
from .cluster.training import TrainingEngine
from .simulation import Levels, RunRecord, Simulation

__all__ = ["ClusterLayout", "ClusterState", "FailureModel", "LeafContention", "Levels", "RunRecord",
           "Simulation", "SpeedModel", "TrainingEngine", "assumed_throughput", "layout_from_node_groups",
           "layout_from_topology"]
