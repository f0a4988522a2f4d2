"""The serving (inference) engine: continuous-batching replicas, routing, autoscaling, PD separation.

``engine`` (:class:`ServingEngine`, the event loop), ``specs`` (what it runs: services, pools,
options), ``replica`` (one replica's batch and KV cache), ``admission`` (rejections before the
run, placed communication levels), ``pd`` (replica placement and the KV-transfer network),
``scaling`` (autoscaler views and targets) and ``results`` (:class:`ServingRun`, the frames).
"""

from .engine import ServingEngine
from .results import ServingRun
from .specs import PoolSpec, ServiceSpec, ServingOptions

__all__ = ["PoolSpec", "ServiceSpec", "ServingEngine", "ServingOptions", "ServingRun"]
