"""cluster_sim: a discrete-event simulator of heterogeneous GPU/NPU AI clusters and their schedulers.

The curated public API (DESIGN.md 4)::

    import cluster_sim as cs
    cfg = cs.load_config("workloads/demo.yaml", overrides={"seed": 3})
    res = cs.simulate(cfg)                 # -> cs.Result
    res.summary["training.mfu"]; res.plot.breakdown(); res.save("runs/x")

    est = cs.estimate_step(cs.model("llama3-70b"), cs.ParallelPlan(tp=8, pp=4, dp=32, microbatches=64),
                           cs.load_topology("topologies/h100-rail-1024.yaml"), seq_len=8192)

Names are loaded on first use, so ``import cluster_sim.units`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ClusterSimError",
    "ConfigError",
    "ExperimentConfig",
    "ParallelPlan",
    "Result",
    "ScalingSpec",
    "Topology",
    "__version__",
    "catalog",
    "check",
    "compare",
    "estimate_step",
    "load_config",
    "load_topology",
    "model",
    "models",
    "registries",
    "scaling_curve",
    "simulate",
    "sweep",
]

# public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "ClusterSimError": ("cluster_sim.errors", "ClusterSimError"),
    "ConfigError": ("cluster_sim.errors", "ConfigError"),
    "ExperimentConfig": ("cluster_sim.config", "ExperimentConfig"),
    "ParallelPlan": ("cluster_sim.workload.parallelism", "ParallelPlan"),
    "Result": ("cluster_sim.experiment", "Result"),
    "ScalingSpec": ("cluster_sim.experiment", "ScalingSpec"),
    "Topology": ("cluster_sim.topology", "Topology"),
    "catalog": ("cluster_sim.catalog", None),
    "check": ("cluster_sim.experiment", "check"),
    "compare": ("cluster_sim.experiment", "compare"),
    "estimate_step": ("cluster_sim.perf.training", "estimate_step"),
    "load_config": ("cluster_sim.config", "load_config"),
    "load_topology": ("cluster_sim.topology", "load_topology"),
    "model": ("cluster_sim.workload.models", "model"),
    "models": ("cluster_sim.workload.models", "models"),
    "registries": ("cluster_sim.policies.registry", None),
    "scaling_curve": ("cluster_sim.perf.training", "scaling_curve"),
    "simulate": ("cluster_sim.experiment", "simulate"),
    "sweep": ("cluster_sim.experiment.sweep", "sweep"),
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from . import catalog
    from .config import ExperimentConfig, load_config
    from .errors import ClusterSimError, ConfigError
    from .experiment import Result, ScalingSpec, check, compare, simulate
    from .experiment.sweep import sweep
    from .perf.training import estimate_step, scaling_curve
    from .policies import registry as registries
    from .topology import Topology, load_topology
    from .workload.models import model, models
    from .workload.parallelism import ParallelPlan


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'cluster_sim' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
